import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Incident } from '../src/incidents/types.js'
import { PAGERDUTY_ROUTING_KEY, REPO_ROOT, startServiceProcess } from './helpers/alert-enricher-process.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'
import { waitUntil } from './helpers/prometheus.js'

// A restart with an escalation due while the service was down: the timer is in the store, so
// it fires once after the restart (not zero times, not twice).

const RESPONSE_SECONDS = 3
const ESCALATION_KEY = 'ESCALAT10NKEYESCALAT10NKEY000001' // 32 chars, fake

t.test('an escalation due while down is sent once after the restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-esc-restart-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const catalogPath = join(dir, 'catalog.yaml')
  const bundled = readFileSync(join(REPO_ROOT, 'rules/catalog.yaml'), 'utf8')
  writeFileSync(catalogPath, bundled.replace(/(P0:\n\s+responseTime: )PT5M/, `$1PT${RESPONSE_SECONDS}S`))
  const dataDir = join(dir, 'data')
  const pagerduty = await startFakePagerDuty()
  t.teardown(pagerduty.close)
  const env = { CATALOG_PATH: catalogPath, PAGERDUTY_EVENTS_URL: pagerduty.url, PAGERDUTY_ROUTING_KEY, PAGERDUTY_ESCALATION_ROUTING_KEY: ESCALATION_KEY }
  const escalations = (): unknown[] => (pagerduty.accepted as Array<{ routing_key: string }>).filter((e) => e.routing_key === ESCALATION_KEY)

  const first = await startServiceProcess(env, { dataDir })
  const payload = JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/alertmanager/firing-two-critical.json'), 'utf8')) as { alerts: Array<{ startsAt: string }> }
  const startsAt = new Date()
  for (const a of payload.alerts) a.startsAt = startsAt.toISOString()
  const res = await fetch(`${first.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) })
  t.equal(res.status, 200)
  const [incident] = (await (await fetch(`${first.url}/api/v1/incidents`)).json() as { incidents: Incident[] }).incidents
  t.match(incident, { state: 'triggered', escalations: 0 })
  await first.kill()
  t.same(escalations(), [], 'nothing escalated before the crash')

  // Down past the deadline.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, startsAt.getTime() + RESPONSE_SECONDS * 1000 + 1000 - Date.now())))
  const second = await startServiceProcess(env, { dataDir })
  t.teardown(second.stop)
  await waitUntil('the escalation after the restart', 20_000, async () => escalations().length > 0, () => second.output())
  await new Promise((resolve) => setTimeout(resolve, 3000))
  t.equal(escalations().length, 1, 'sent once')
  const after = (await (await fetch(`${second.url}/api/v1/incidents/${incident?.id ?? 0}`)).json()) as Incident
  t.match(after, { breached: true, escalations: 1 })
})
