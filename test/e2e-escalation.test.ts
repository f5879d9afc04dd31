import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Incident } from '../src/incidents/types.js'
import { PAGERDUTY_ROUTING_KEY, REPO_ROOT, startServiceProcess } from './helpers/alert-enricher-process.js'
import { exampleConfigFor, startAlertmanager, type PostableAlert } from './helpers/alertmanager.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'
import { startFakeSlack } from './helpers/fake-slack.js'
import { pagerDutyEventBody, signPagerDuty } from './helpers/pagerduty-webhook.js'
import { waitUntil } from './helpers/prometheus.js'

// Escalation end to end: a real Alertmanager → the service (as a process) with a catalog whose
// P0 must be answered within seconds → the contract-enforcing fake PagerDuty. An unacknowledged
// P0 reaches the escalation routing key after its deadline; one acknowledged over the API
// before its deadline does not, and PagerDuty is told of the acknowledgement; one acknowledged
// in PagerDuty (a signed webhooks v3 event) does not either.

const WAIT_MS = 30_000
const RESPONSE_SECONDS = 8
const TOKEN = randomBytes(16).toString('hex')
const ADMIN = randomBytes(16).toString('hex')
const ESCALATION_KEY = 'ESCALAT10NKEYESCALAT10NKEY000000' // 32 chars, fake
const PD_WEBHOOK_SECRET = randomBytes(16).toString('hex')

const tmp = mkdtempSync(join(tmpdir(), 'ae-e2e-esc-'))
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
const tokenFile = join(tmp, 'token')
writeFileSync(tokenFile, `${TOKEN}\n`)
const catalogPath = join(tmp, 'catalog.yaml')
const bundled = readFileSync(join(REPO_ROOT, 'rules/catalog.yaml'), 'utf8')
const fast = bundled.replace(/(P0:\n\s+responseTime: )PT5M/, `$1PT${RESPONSE_SECONDS}S`)
if (fast === bundled) throw new Error('could not shorten P0 in the bundled catalog')
writeFileSync(catalogPath, fast)

const pagerduty = await startFakePagerDuty()
const slack = await startFakeSlack()
const service = await startServiceProcess({
  CATALOG_PATH: catalogPath,
  WEBHOOK_BEARER_TOKEN: TOKEN,
  ADMIN_BEARER_TOKEN: ADMIN,
  PAGERDUTY_EVENTS_URL: pagerduty.url,
  PAGERDUTY_ROUTING_KEY,
  PAGERDUTY_ESCALATION_ROUTING_KEY: ESCALATION_KEY,
  PAGERDUTY_WEBHOOK_SECRET: PD_WEBHOOK_SECRET,
  SLACK_WEBHOOK_URL_INCIDENT_RESPONSE: slack.webhookUrl('incidentresponse'),
  SLACK_WEBHOOK_URL_ALERTS: slack.webhookUrl('alerts')
})
t.teardown(async () => { await Promise.all([pagerduty.close(), slack.close()]) })
t.teardown(service.stop)

interface PdEvent { routing_key: string, event_action: string, dedup_key: string, payload?: { summary: string } }
const events = (): PdEvent[] => pagerduty.accepted as PdEvent[]

function alert (service: string, startsAt: Date): PostableAlert {
  return {
    labels: { alertname: 'HighErrorRate', severity: 'critical', service, namespace: 'production', job: service, instance: '10.0.1.15:8000' },
    annotations: { summary: `Error rate above 5% for ${service}` },
    startsAt: startsAt.toISOString()
  }
}

async function incidentOf (name: string): Promise<Incident | undefined> {
  const res = await fetch(`${service.url}/api/v1/incidents`, { headers: { authorization: `Bearer ${ADMIN}` } })
  const { incidents } = await res.json() as { incidents: Incident[] }
  return incidents.find((i) => i.groupKey.includes(name))
}

t.test('an unacknowledged P0 escalates to the escalation routing key; an acknowledged one does not', async (t) => {
  const am = await startAlertmanager({ configYaml: exampleConfigFor({ webhookUrl: `${service.url}/webhook`, credentialsFile: tokenFile, groupWait: '1s', groupInterval: '1s' }) })
  t.teardown(am.stop)
  const startsAt = new Date(Math.floor(Date.now() / 1000) * 1000)
  const deadline = startsAt.getTime() + RESPONSE_SECONDS * 1000
  await am.postAlerts([alert('orders-api', startsAt), alert('billing-api', startsAt), alert('payments-api', startsAt)])

  let acked: Incident | undefined
  await waitUntil('the billing-api incident', WAIT_MS, async () => (acked = await incidentOf('billing-api')) !== undefined, () => service.output())
  const ack = await fetch(`${service.url}/api/v1/incidents/${acked?.id ?? 0}/ack`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ by: 'ana' })
  })
  t.equal(ack.status, 200)
  let inPagerDuty: Incident | undefined
  await waitUntil('the payments-api incident', WAIT_MS, async () => (inPagerDuty = await incidentOf('payments-api')) !== undefined, () => service.output())
  const event = pagerDutyEventBody('incident.acknowledged', { id: 'e2e-ack-1', incidentKey: inPagerDuty?.dedupKey ?? '', agent: { id: 'PXPGF42', summary: 'Bea' } })
  const webhook = await fetch(`${service.url}/integrations/pagerduty`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-pagerduty-signature': signPagerDuty(event, PD_WEBHOOK_SECRET) }, body: event
  })
  t.match({ status: webhook.status, body: await webhook.json() }, { status: 200, body: { outcome: 'applied' } }, 'the signed PagerDuty event acknowledged it')
  t.ok(Date.now() < deadline, 'both acknowledged before the deadline')

  await waitUntil('the escalation page', WAIT_MS, async () => events().some((e) => e.routing_key === ESCALATION_KEY), () => service.output())
  const escalations = events().filter((e) => e.routing_key === ESCALATION_KEY)
  t.equal(escalations.length, 1, 'one escalation page')
  t.match(escalations[0], { event_action: 'trigger', payload: { summary: /^\[P0\] ESCALATION: HighErrorRate \(P0\) not acknowledged by the deadline/ } })
  const orders = await incidentOf('orders-api')
  t.equal(escalations[0]?.dedup_key, orders?.dedupKey, 'the escalation is about the unacknowledged incident')
  t.match(orders, { state: 'triggered', breached: true, escalations: 1 })

  // Past the acknowledged one's deadline too: it stays quiet, and PagerDuty heard the acknowledgement.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline + 2000 - Date.now())))
  t.same(events().filter((e) => e.routing_key === ESCALATION_KEY && e.dedup_key === acked?.dedupKey), [], 'no escalation for the acknowledged incident')
  t.ok(events().some((e) => e.event_action === 'acknowledge' && e.dedup_key === acked?.dedupKey && e.routing_key === PAGERDUTY_ROUTING_KEY), 'the acknowledgement reached PagerDuty')
  t.match(await incidentOf('billing-api'), { state: 'acknowledged', breached: false, escalations: 0, acknowledgedBy: 'ana', acknowledgedVia: 'api' })
  t.same(events().filter((e) => e.routing_key === ESCALATION_KEY && e.dedup_key === inPagerDuty?.dedupKey), [], 'no escalation for the one acknowledged in PagerDuty')
  t.notOk(events().some((e) => e.event_action === 'acknowledge' && e.dedup_key === inPagerDuty?.dedupKey), 'PagerDuty is not told what it told us')
  t.match(await incidentOf('payments-api'), { state: 'acknowledged', breached: false, escalations: 0, acknowledgedBy: 'Bea', acknowledgedVia: 'pagerduty' })
})
