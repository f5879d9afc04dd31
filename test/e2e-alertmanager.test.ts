import t, { type TAP } from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PAGERDUTY_ROUTING_KEY, parseExposition, sampleSum, startServiceProcess, type ServiceProcess } from './helpers/alert-enricher-process.js'
import { exampleConfigFor, startAlertmanager, type PostableAlert, type RunningAlertmanager } from './helpers/alertmanager.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'
import { startFakeSlack } from './helpers/fake-slack.js'
import { waitUntil } from './helpers/prometheus.js'

// The whole path with a real Alertmanager: alerts posted to its API → examples/alertmanager.yml
// (timers shortened) → the service as a process (bearer token from a credentials_file) → the
// contract-enforcing fake PagerDuty and Slack. Then the same with a 503-answering hop in front
// of the service, to show Alertmanager's own retry delivers.

// Each wait normally ends in 1–3 s; 30 s keeps even a failing run (three waits) inside tap's 120 s timeout.
const WAIT_MS = 30_000
const TOKEN = randomBytes(16).toString('hex')
const RUNBOOK = 'incident_response_playbook.md#critical-alerts-p0'

const tmp = mkdtempSync(join(tmpdir(), 'ae-e2e-'))
const tokenFile = join(tmp, 'alert-enricher-token')
writeFileSync(tokenFile, `${TOKEN}\n`)
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

const pagerduty = await startFakePagerDuty()
const slack = await startFakeSlack()
const slackIncidentPath = new URL(slack.webhookUrl('incidentresponse')).pathname
const service = await startServiceProcess({
  WEBHOOK_BEARER_TOKEN: TOKEN,
  PAGERDUTY_EVENTS_URL: pagerduty.url,
  PAGERDUTY_ROUTING_KEY,
  SLACK_WEBHOOK_URL_INCIDENT_RESPONSE: slack.webhookUrl('incidentresponse'),
  SLACK_WEBHOOK_URL_ALERTS: slack.webhookUrl('alerts'),
  SLACK_WEBHOOK_URL_DEPLOYMENTS: slack.webhookUrl('deployments')
})
// Teardowns run in reverse: Alertmanagers (registered by the subtests) stop first, then the service, then the fakes.
t.teardown(async () => { await Promise.all([pagerduty.close(), slack.close()]) })
t.teardown(service.stop)

interface PdEvent {
  routing_key: string
  event_action: 'trigger' | 'resolve'
  dedup_key: string
  payload: { summary: string, severity: string, custom_details: { priority: string, respond_by: string | null, runbook: string | null, escalation: unknown, firing: Array<{ respond_by: string, labels: Record<string, string> }>, resolved: Array<{ labels: Record<string, string> }> } }
  links: Array<{ href: string }>
}
interface SlackMessage { text: string }

const eventsFor = (service: string): PdEvent[] => (pagerduty.accepted as PdEvent[])
  .filter((e) => [...(e.payload?.custom_details?.firing ?? []), ...(e.payload?.custom_details?.resolved ?? [])].some((a) => a.labels.service === service))
const slackFor = (service: string): Array<{ body: string, message: SlackMessage }> => slack.received
  .filter((r) => r.accepted && r.path === slackIncidentPath && r.body.includes(service))
  .map((r) => ({ body: r.body, message: JSON.parse(r.body) as SlackMessage }))

async function alertmanagerTo (t: Pick<TAP, 'teardown'>, webhookUrl: string): Promise<RunningAlertmanager> {
  const am = await startAlertmanager({ configYaml: exampleConfigFor({ webhookUrl, credentialsFile: tokenFile, groupWait: '1s', groupInterval: '1s' }) })
  t.teardown(am.stop)
  return am
}

function highErrorRate (service: string, startsAt: Date): PostableAlert {
  return {
    labels: { alertname: 'HighErrorRate', severity: 'critical', service, namespace: 'production', job: service, instance: '10.0.1.15:8000' },
    annotations: { summary: `Error rate above 5% for ${service}`, description: '5xx ratio is 7.3% over the last 5 minutes' },
    startsAt: startsAt.toISOString(),
    generatorURL: 'http://prometheus.example:9090/graph?g0.expr=up'
  }
}

// Whole seconds: the deadline the catalog promises is startsAt + PT5M (P0, clock "always").
const startedSecondsAgo = (s: number): Date => new Date(Math.floor(Date.now() / 1000) * 1000 - s * 1000)
const utcMinute = (d: Date): string => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`

t.test('a real Alertmanager pages through the service: enriched trigger and message, then the resolve', async (t) => {
  const am = await alertmanagerTo(t, `${service.url}/webhook`)
  const startsAt = startedSecondsAgo(60)
  const deadline = new Date(startsAt.getTime() + 5 * 60_000)
  const alert = highErrorRate('pynomaly-api', startsAt)
  await am.postAlerts([alert])

  await waitUntil('the PagerDuty trigger and the Slack message', WAIT_MS, async () =>
    eventsFor('pynomaly-api').length >= 1 && slackFor('pynomaly-api').length >= 1, () => explain(service, am))
  const [trigger] = eventsFor('pynomaly-api')
  t.match(trigger, {
    routing_key: PAGERDUTY_ROUTING_KEY,
    event_action: 'trigger',
    payload: {
      summary: /^\[P0\] HighErrorRate: Error rate above 5% for pynomaly-api/,
      severity: 'critical',
      custom_details: {
        priority: 'P0',
        respond_by: new RegExp(`^${utcMinute(deadline)} \\(in \\d min\\)$`),
        escalation: { primary: 'On-call engineer', escalation: 'Engineering manager' },
        runbook: new RegExp(`/runbooks/${RUNBOOK}$`),
        firing: [{ respond_by: deadline.toISOString() }]
      }
    }
  })
  t.ok(trigger?.links.some((l) => l.href.endsWith(RUNBOOK)), 'runbook link on the incident')

  const [message] = slackFor('pynomaly-api')
  t.match(message?.message.text, /\[P0\] FIRING: HighErrorRate/)
  t.match(message?.message.text, `respond by ${utcMinute(deadline)}`)
  t.ok(message?.body.includes(`/runbooks/${RUNBOOK}`), 'runbook button')
  t.match(message?.body, /Escalation\*\\nOn-call engineer → Engineering manager/)
  t.match(message?.body, `Respond by*\\n${utcMinute(deadline)}`)

  await am.postAlerts([{ ...alert, endsAt: new Date(Date.now() - 1000).toISOString() }])
  await waitUntil('the PagerDuty resolve and the resolved Slack message', WAIT_MS, async () =>
    eventsFor('pynomaly-api').some((e) => e.event_action === 'resolve') && slackFor('pynomaly-api').length >= 2, () => explain(service, am))
  const events = eventsFor('pynomaly-api')
  t.same(events.map((e) => e.event_action), ['trigger', 'resolve'], 'one trigger, one resolve')
  t.equal(events[1]?.dedup_key, trigger?.dedup_key, 'the resolve closes the same incident')
  const resolved = slackFor('pynomaly-api')[1]
  t.match(resolved?.message.text, /RESOLVED: HighErrorRate/)
  t.notMatch(resolved?.message.text, /respond by/, 'no deadline once resolved')

  const samples = parseExposition(await (await fetch(`${service.url}/metrics`)).text())
  t.equal(sampleSum(samples, 'alert_enricher_webhooks_received_total', { outcome: 'unauthorized' }), 0, 'Alertmanager authenticated with the credentials_file token')
})

/** Answers 503 like the service does when it cannot persist, for the first `failFirst` requests; then forwards. */
async function startUnavailableFor (target: string, failFirst: number): Promise<{ url: string, statuses: number[], close: () => Promise<void> }> {
  const statuses: number[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      void (async () => {
        if (statuses.length < failFirst) {
          statuses.push(503)
          res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' })
            .end(JSON.stringify({ error: 'unavailable', message: 'cannot persist the notification right now; retry' }))
          return
        }
        const headers: Record<string, string> = {}
        for (const h of ['content-type', 'authorization', 'user-agent']) {
          const v = req.headers[h]
          if (typeof v === 'string') headers[h] = v
        }
        const upstream = await fetch(`${target}${req.url ?? '/'}`, { method: req.method ?? 'POST', headers, body: Buffer.concat(chunks) })
        statuses.push(upstream.status)
        res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'text/plain' }).end(Buffer.from(await upstream.arrayBuffer()))
      })().catch(() => { res.writeHead(502).end() })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    statuses,
    close: async () => await new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }
}

t.test('while the service answers 503, Alertmanager retries until the page is delivered', async (t) => {
  const gate = await startUnavailableFor(service.url, 3)
  t.teardown(gate.close)
  const am = await alertmanagerTo(t, `${gate.url}/webhook`)
  await am.postAlerts([highErrorRate('checkout-api', startedSecondsAgo(30))])

  // The page can reach PagerDuty before the gate has read the service's 200 (it is sent once
  // committed, while the answer waits for the sync): wait for both.
  await waitUntil('the page after Alertmanager retried', WAIT_MS, async () => eventsFor('checkout-api').length >= 1 && gate.statuses.includes(200),
    () => `statuses ${JSON.stringify(gate.statuses)}\n${explain(service, am)}`)
  t.same(gate.statuses.slice(0, 4), [503, 503, 503, 200], 'three 503s, then accepted')
  t.match(eventsFor('checkout-api')[0], { event_action: 'trigger', payload: { severity: 'critical', custom_details: { priority: 'P0' } } })
  const failed = sampleSum(parseExposition(await am.metrics()), 'alertmanager_notification_requests_failed_total', { integration: 'webhook' })
  t.ok((failed ?? 0) >= 3, `Alertmanager counted its failed attempts (${failed})`)
})

function explain (svc: ServiceProcess, am: RunningAlertmanager): string {
  const pd = pagerduty.received.map((r) => `${r.status ?? '-'} ${r.detail ?? ''}`).join(', ')
  const sl = slack.received.map((r) => `${r.path.split('/').pop() ?? ''} ${r.status ?? '-'} ${r.detail ?? ''}`).join(', ')
  return `pagerduty: [${pd}]\nslack: [${sl}]\nservice:\n${svc.output()}\nalertmanager:\n${am.output()}`
}
