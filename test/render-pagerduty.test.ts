import t from 'tap'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { eventBytes, renderPagerDutyEvent } from '../src/notify/pagerduty/render.js'
import { createPagerDutyNotifier } from '../src/notify/pagerduty/notifier.js'
import { startFakePagerDuty, validatePagerDutyEvent } from './helpers/fake-pagerduty.js'
import { makeAlert, makeGroup, manyAlerts } from './helpers/groups.js'

const now = new Date('2026-11-26T20:12:00Z')
const dest = { name: 'pagerduty' }
const routingKey = 'R0UT1NGKEY0123456789abcdefABCDEF'
const withKey = (e: object): object => ({ ...e, routing_key: routingKey })

t.test('trigger event: dedup key, severity, summary, source, details, links, client', async (t) => {
  const g = makeGroup([makeAlert(), makeAlert({ fingerprint: '06cc6459ad559d0c' })])
  const e = renderPagerDutyEvent(g, dest, { now })
  t.same(validatePagerDutyEvent(withKey(e)), [])
  t.notOk('routing_key' in e, 'the key is added at send time only')
  t.equal(e.event_action, 'trigger')
  t.equal(e.dedup_key, createHash('sha256').update(g.groupKey).digest('hex'))
  t.equal(e.payload.severity, 'critical')
  t.equal(e.payload.summary, '[P0] HighErrorRate: Error rate above 5% for pynomaly-api (2 firing, 0 resolved)')
  t.equal(e.payload.source, 'pynomaly-api')
  t.equal(e.payload.timestamp, '2026-11-26T20:11:00.000Z')
  t.equal(e.payload.component, 'pynomaly-api')
  t.equal(e.payload.group, 'production')
  t.equal(e.payload.class, 'HighErrorRate')
  t.match(e.payload.custom_details, {
    priority: 'P0',
    respond_by: '2026-11-26 20:16 UTC (in 4 min)',
    escalation: { primary: 'On-call engineer', escalation: 'Engineering manager' },
    team: 'platform',
    runbook: 'http://localhost:9095/runbooks/incident_response_playbook.md#critical-alerts-p0',
    num_firing: 2
  })
  t.equal((e.payload.custom_details.firing as unknown[]).length, 2)
  t.same(e.links.map((l) => l.text), ['Runbook', 'API overview', 'Silence', 'Source'])
  t.equal(e.client, 'alert-enricher')
  t.equal(e.client_url, 'http://alertmanager.example:9093')
  t.equal(renderPagerDutyEvent(g, dest, { now, clientUrl: 'https://enricher.example' }).client_url, 'https://enricher.example')
})

t.test('severity follows priority', async (t) => {
  const expected = { P0: 'critical', P1: 'error', P2: 'warning', P3: 'info' } as const
  for (const p of ['P0', 'P1', 'P2', 'P3'] as const) {
    t.equal(renderPagerDutyEvent(makeGroup([makeAlert({ priority: p })]), dest, { now }).payload.severity, expected[p], p)
  }
})

t.test('resolve uses the same dedup key as the trigger', async (t) => {
  const firing = makeGroup([makeAlert()])
  const resolved = makeGroup([makeAlert({ status: 'resolved', endsAt: '2026-11-26T20:40:00Z' })])
  const trig = renderPagerDutyEvent(firing, dest, { now })
  const res = renderPagerDutyEvent(resolved, dest, { now })
  t.equal(res.event_action, 'resolve')
  t.equal(res.dedup_key, trig.dedup_key)
  t.equal(res.payload.timestamp, '2026-11-26T20:40:00.000Z')
  t.equal(res.payload.custom_details.respond_by, null)
  t.same(validatePagerDutyEvent(withKey(res)), [])
  const mixed = makeGroup([makeAlert(), makeAlert({ fingerprint: '06cc6459ad559d0c', status: 'resolved', endsAt: '2026-11-26T20:40:00Z' })])
  t.equal(renderPagerDutyEvent(mixed, dest, { now }).event_action, 'trigger', 'any firing alert keeps it triggered')
})

t.test('source never empty, summary within 1024', async (t) => {
  const bare = makeGroup([makeAlert({ labels: { alertname: 'X' } })], { receiver: 'team-x' })
  t.equal(renderPagerDutyEvent(bare, dest, { now }).payload.source, 'team-x')
  const nothing = makeGroup([makeAlert({ labels: { alertname: 'X' } })], { receiver: '' })
  t.equal(renderPagerDutyEvent(nothing, dest, { now }).payload.source, 'alert-enricher')
  const long = makeGroup([makeAlert({ summary: '👍🏽'.repeat(2000), annotations: {} })])
  const e = renderPagerDutyEvent(long, dest, { now })
  t.ok(e.payload.summary.length <= 1024)
  t.match(e.payload.summary, /👍🏽…$/)
})

t.test('source is the affected system: common instance, else cluster, job, service', async (t) => {
  const source = (alerts: Array<Record<string, string>>): string =>
    renderPagerDutyEvent(makeGroup(alerts.map((labels, i) => makeAlert({ fingerprint: `000000000000000${i}`, labels: { alertname: 'X', ...labels } }))), dest, { now }).payload.source
  const kube = { cluster: 'prod-eu-1', job: 'kubelet', service: 'kubelet-svc' }
  t.equal(source([{ ...kube, instance: '10.1.2.3:10250' }]), '10.1.2.3:10250', 'one alert: its instance')
  t.equal(source([{ ...kube, instance: 'a:1' }, { ...kube, instance: 'b:1' }]), 'prod-eu-1', 'several hosts: their cluster')
  t.equal(source([{ job: 'kubelet', service: 's', instance: 'a:1' }, { job: 'kubelet', service: 's', instance: 'b:1' }]), 'kubelet')
  t.equal(source([{ service: 's', instance: 'a:1' }, { service: 's', instance: 'b:1' }]), 's')
  t.equal(source([{ instance: 'a:1' }, { instance: 'b:1' }, { instance: 'c:1' }, { instance: 'd:1' }]), 'a:1, b:1, c:1 +1', 'nothing coarser shared: the hosts')
})

t.test('huge annotations: trimmed under 512 KB with a "+N more" note, accepted by the fake', async (t) => {
  const g = makeGroup(manyAlerts(300, (i) => ({
    summary: `s${i}`,
    annotations: { description: 'd'.repeat(100_000), runbook_url: 'u'.repeat(50_000), [`note${i}`]: '✓'.repeat(20_000) },
    labels: { alertname: 'Huge', instance: `host-${i}`, blob: 'l'.repeat(30_000) }
  })))
  const e = renderPagerDutyEvent(g, dest, { now })
  const bytes = eventBytes(e)
  t.ok(bytes <= 512_000, `${bytes} bytes`)
  t.ok(bytes > 400_000, 'uses the room it has')
  const shown = (e.payload.custom_details.firing as unknown[]).length
  t.ok(shown > 0 && shown < 300)
  t.equal(e.payload.custom_details.more, `+${300 - shown} more alerts not shown (event size limit)`)
  t.same(validatePagerDutyEvent(withKey(e)), [])

  const pd = await startFakePagerDuty()
  t.teardown(() => pd.close())
  const result = await createPagerDutyNotifier({ routingKey, eventsUrl: pd.url }, { fetch, timeoutMs: 10_000 }).send(e)
  t.same(result, { ok: true, status: 202 })
  t.equal(pd.accepted.length, 1)
})

t.test('a single alert bigger than the limit is trimmed field by field', async (t) => {
  const g = makeGroup([makeAlert({ description: 'x'.repeat(2_000_000), annotations: { a: 'y'.repeat(2_000_000) } })])
  const e = renderPagerDutyEvent(g, dest, { now })
  t.ok(eventBytes(e) <= 512_000)
  t.equal((e.payload.custom_details.firing as unknown[]).length, 1)
})

t.test('any content renders an event PagerDuty accepts', async (t) => {
  const text = fc.string({ unit: 'grapheme', maxLength: 200 })
  fc.assert(fc.property(
    fc.array(fc.record({ name: text, summary: text, instance: text, status: fc.constantFrom('firing' as const, 'resolved' as const), priority: fc.constantFrom('P0' as const, 'P1' as const, 'P2' as const, 'P3' as const) }), { minLength: 1, maxLength: 30 }),
    text,
    (rows, receiver) => {
      const alerts = rows.map((r, i) => makeAlert({ fingerprint: i.toString(16).padStart(16, '0'), status: r.status, priority: r.priority, alertname: r.name, summary: r.summary, labels: { alertname: r.name, instance: r.instance } }))
      const e = renderPagerDutyEvent(makeGroup(alerts, { receiver }), dest, { now })
      return validatePagerDutyEvent(withKey(e)).length === 0 && eventBytes(e) <= 512_000
    }
  ), { numRuns: 150, seed: 20261126 })
  t.pass('fast-check found no counterexample')
})
