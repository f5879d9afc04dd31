import t from 'tap'
import type { Calendar } from '../src/config/catalog-schema.js'
import { businessHoursRelease } from '../src/enrich/sla.js'
import { renderIncidentDelivery } from '../src/incidents/render.js'
import type { Incident, IncidentWithTimeline } from '../src/incidents/types.js'
import { formatExplanation } from '../src/notify/explain-text.js'
import { incidentStateLine } from '../src/incidents/render.js'
import { createAcknowledger } from '../src/incidents/acknowledge.js'
import type { SendResult } from '../src/notify/result.js'
import { createDispatcher } from '../src/outbox/dispatcher.js'
import { createRateLimiter } from '../src/outbox/rate-limit.js'
import { validatePagerDutyEvent } from './helpers/fake-pagerduty.js'
import { validateSlackMessage } from './helpers/fake-slack.js'
import { buildTestApp, fixture } from './helpers/app.js'

// Incidents through the real app (bundled catalog, real SQLite, injected clock): deferral,
// acknowledgement over the API, escalation bodies that the fakes' contracts accept.

const json = { 'content-type': 'application/json' }
const ADMIN = 'admin-token-for-tests'
const auth = { authorization: `Bearer ${ADMIN}` }
const ms = (iso: string): number => Date.parse(iso)

const UTC_CAL: Calendar = { timezone: 'UTC', businessDays: ['mon', 'tue', 'wed', 'thu', 'fri'], businessHours: { start: '09:00', end: '17:00' }, holidays: ['2026-12-07'] }

t.test('business-hours release: weekend, holiday, DST', async (t) => {
  const at = (iso: string, cal: Calendar = UTC_CAL): string => new Date(businessHoursRelease(cal, ms(iso))).toISOString()
  t.equal(at('2026-11-27T18:00:00Z'), '2026-11-30T09:00:00.000Z', 'Friday 18:00 → Monday 09:00')
  t.equal(at('2026-11-28T12:00:00Z'), '2026-11-30T09:00:00.000Z', 'Saturday → Monday 09:00')
  t.equal(at('2026-11-30T07:59:00Z'), '2026-11-30T09:00:00.000Z', 'before opening → opening')
  t.equal(at('2026-11-30T10:00:00Z'), '2026-11-30T10:00:00.000Z', 'inside business hours: at once')
  t.equal(at('2026-12-04T17:00:00Z'), '2026-12-08T09:00:00.000Z', 'Friday close, Monday a holiday → Tuesday 09:00')
  const berlin = { ...UTC_CAL, timezone: 'Europe/Berlin', holidays: [] }
  t.equal(at('2026-03-27T18:00:00+01:00', berlin), '2026-03-30T07:00:00.000Z', 'across the spring DST change: Monday 09:00 CEST')
  t.equal(at('2026-10-23T18:00:00+02:00', berlin), '2026-10-26T08:00:00.000Z', 'across the autumn DST change: Monday 09:00 CET')
})

t.test('deferral: a P3 firing Friday 18:00 is held until Monday 09:00; resolved on Saturday it is never sent', async (t) => {
  const clock = { now: ms('2026-11-27T18:00:00Z') }
  const h = await buildTestApp({ now: () => new Date(clock.now), adminToken: ADMIN })
  t.teardown(h.close)
  const p3 = fixture('firing-single-warning.json') as { alerts: Array<{ labels: Record<string, string>, startsAt: string, status: string, endsAt: string }>, status: string, groupKey: string }
  for (const a of p3.alerts) { a.labels.severity = 'low'; a.startsAt = '2026-11-27T17:59:00Z' }
  t.equal((await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: p3 })).statusCode, 200)
  const [held] = await h.store.list({ limit: 10 })
  t.match(held, { destination: 'slack-alerts', state: 'pending', nextAttemptAt: ms('2026-11-30T09:00:00Z') })
  t.equal((await h.store.claim({ now: ms('2026-11-30T08:59:59Z'), limit: 10, leaseMs: 1000, excludeDestinations: [], admit: () => true })).length, 0, 'held until Monday 09:00')
  const [opened] = await h.store.listIncidents({ limit: 1 })
  t.match(opened, { priority: 'P3', respondBy: '2026-11-30T17:00:00.000Z' }, 'P3: by the end of the next business day (Monday)')
  t.match((await h.store.getIncident(opened?.id ?? 0))?.timeline, [{ event: 'opened' }, { event: 'deferred', detail: 'held for business hours: slack-alerts at 2026-11-30 09:00 UTC' }])

  clock.now = ms('2026-11-28T10:00:00Z')
  const resolved = { ...p3, status: 'resolved', alerts: p3.alerts.map((a) => ({ ...a, status: 'resolved', endsAt: '2026-11-28T09:59:00Z' })) }
  t.equal((await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: resolved })).statusCode, 200)
  const rows = await h.store.list({ limit: 10 })
  t.same(rows.map((d) => [d.state, d.lastReason]), [['skipped', 'resolved_while_deferred'], ['skipped', 'resolved_while_deferred']], 'neither the trigger nor the resolve goes out')
  t.equal((await h.store.claim({ now: ms('2026-11-30T09:00:00Z'), limit: 10, leaseMs: 1000, excludeDestinations: [], admit: () => true })).length, 0, 'nothing sent on Monday')
  const metrics = await h.metrics.registry.getSingleMetricAsString('alert_enricher_notifications_total')
  t.match(metrics, /destination="slack-alerts",type="slack",outcome="skipped",reason="resolved_while_deferred"} 2/)

  // P2 is not deferred.
  clock.now = ms('2026-11-28T11:00:00Z')
  const p2 = fixture('firing-single-warning.json') as { groupKey: string }
  t.equal((await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: { ...p2, groupKey: 'p2-group' } })).statusCode, 200)
  const p2row = (await h.store.list({ limit: 10 })).find((d) => d.groupKey === 'p2-group')
  t.equal(p2row?.nextAttemptAt, clock.now, 'P2 goes out at once, weekend or not')
})

t.test('API: list, get with timeline, acknowledge (sent on to PagerDuty), errors', async (t) => {
  const clock = { now: ms('2026-11-26T20:12:00Z') }
  const h = await buildTestApp({ now: () => new Date(clock.now), adminToken: ADMIN })
  t.teardown(h.close)
  t.equal((await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: fixture('firing-two-critical.json') })).statusCode, 200)

  t.equal((await h.app.inject({ method: 'GET', url: '/api/v1/incidents' })).statusCode, 401, 'admin token required')
  const list = await h.app.inject({ method: 'GET', url: '/api/v1/incidents?state=triggered&priority=P0', headers: auth })
  t.equal(list.statusCode, 200)
  const [incident] = (list.json() as { incidents: Incident[] }).incidents
  t.match(incident, { id: 1, priority: 'P0', state: 'triggered', alertname: 'HighErrorRate', team: 'platform', respondBy: '2026-11-26T20:15:55.000Z', breached: false })
  t.same((await h.app.inject({ method: 'GET', url: '/api/v1/incidents?state=acknowledged', headers: auth })).json().incidents, [])
  const bad = await h.app.inject({ method: 'GET', url: '/api/v1/incidents?state=open', headers: auth })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().message, /triggered\|acknowledged\|resolved/)

  clock.now = ms('2026-11-26T20:14:00Z')
  t.equal((await h.app.inject({ method: 'POST', url: '/api/v1/incidents/1/ack', headers: { ...json, ...auth }, payload: {} })).statusCode, 400, 'by is required')
  const nul = await h.app.inject({ method: 'POST', url: '/api/v1/incidents/1/ack', headers: { ...json, ...auth }, payload: { by: 'a\u0000b' } })
  t.match({ status: nul.statusCode, body: nul.json() }, { status: 400, body: { error: 'bad_request', message: 'by: contains a NUL character (U+0000)' } }, 'a NUL in by: 400 (PostgreSQL cannot store it)')
  t.equal((await h.app.inject({ method: 'POST', url: '/api/v1/incidents/99/ack', headers: { ...json, ...auth }, payload: { by: 'ana' } })).statusCode, 404)
  const ack = await h.app.inject({ method: 'POST', url: '/api/v1/incidents/1/ack', headers: { ...json, ...auth }, payload: { by: 'ana' } })
  t.equal(ack.statusCode, 200)
  t.match(ack.json(), { state: 'acknowledged', acknowledgedBy: 'ana', acknowledgedVia: 'api', acknowledgedAt: '2026-11-26T20:14:00.000Z' })
  t.equal((await h.app.inject({ method: 'POST', url: '/api/v1/incidents/1/ack', headers: { ...json, ...auth }, payload: { by: 'bob' } })).json().acknowledgedBy, 'ana', 'idempotent')
  t.match(await h.metrics.registry.getSingleMetricAsString('alert_enricher_time_to_acknowledge_seconds'), /alert_enricher_time_to_acknowledge_seconds_count\{priority="P0"\} 1/)

  // The acknowledgement goes to the PagerDuty destination told of the group, as Events v2.
  const sends = await h.store.claim({ now: clock.now, limit: 10, leaseMs: 1000, excludeDestinations: [], admit: () => true })
  const toPagerDuty = sends.find((d) => d.groupKey === 'incident:1')
  t.equal(toPagerDuty?.destination, 'pagerduty')
  const catalog = h.catalog.current()
  const rendered = renderIncidentDelivery(toPagerDuty?.body, { name: 'pagerduty', config: catalog.doc.destinations.pagerduty as never }, catalog, new Date(clock.now))
  t.match(rendered, { kind: 'rendered', body: { event_action: 'acknowledge', dedup_key: incident?.dedupKey } })
  t.same(validatePagerDutyEvent({ ...(rendered.kind === 'rendered' ? rendered.body : {}), routing_key: 'x'.repeat(32) }), [], 'PagerDuty accepts it')

  // Messages, the preview and explain's text say it.
  const preview = await h.app.inject({ method: 'POST', url: '/api/v1/preview', headers: json, payload: fixture('firing-two-critical.json') })
  const line = 'Acknowledged by ana via the API at 20:14 UTC — 2 min, within SLA'
  t.equal(preview.json().incident, line)
  for (const n of preview.json().notifications as Array<{ type: string, body: unknown }>) {
    t.match(JSON.stringify(n.body), line, `the ${n.type} body carries the state line`)
    if (n.type === 'slack') t.equal(validateSlackMessage(n.body), null)
    else t.same(validatePagerDutyEvent({ ...(n.body as object), routing_key: 'x'.repeat(32) }), [])
  }
  t.match(formatExplanation(preview.json(), new Date(clock.now)), `incident: ${line}`)

  clock.now = ms('2026-11-26T21:00:00Z')
  t.same((await h.store.fireDueEscalations({ now: clock.now, limit: 10, isConfigured: () => true })).fired, [], 'acknowledged in time: no escalation')
  const resolved = { ...fixture('firing-two-critical.json'), status: 'resolved' } as Record<string, unknown>
  resolved.alerts = (resolved.alerts as Array<Record<string, unknown>>).map((a) => ({ ...a, status: 'resolved', endsAt: '2026-11-26T20:59:00Z' }))
  t.equal((await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: resolved })).statusCode, 200)
  const late = await h.app.inject({ method: 'POST', url: '/api/v1/incidents/1/ack', headers: { ...json, ...auth }, payload: { by: 'ana' } })
  t.equal(late.statusCode, 409)
  const one = (await h.app.inject({ method: 'GET', url: '/api/v1/incidents/1', headers: auth })).json() as IncidentWithTimeline
  t.same(one.timeline.map((e) => e.event), ['opened', 'acknowledged', 'resolved'])
  t.match(one.timeline[1], { detail: 'acknowledged by ana via the API' })
  t.equal((await h.app.inject({ method: 'GET', url: '/api/v1/incidents/7', headers: auth })).statusCode, 404)
})

t.test('escalation bodies: what breached, how late, who was primary, the runbook; accepted by the fakes', async (t) => {
  const clock = { now: ms('2026-11-26T20:12:00Z') }
  const h = await buildTestApp({ now: () => new Date(clock.now) })
  t.teardown(h.close)
  await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: fixture('firing-two-critical.json') })
  clock.now = ms('2026-11-26T20:18:00Z')
  const { fired } = await h.store.fireDueEscalations({ now: clock.now, limit: 10, isConfigured: () => true })
  t.same(fired[0]?.deliveries.map((d) => d.destination), ['pagerduty-escalation', 'slack-incident-response'])
  const catalog = h.catalog.current()
  const rows = (await h.store.list({ limit: 20 })).filter((d) => d.groupKey === 'incident:1')
  for (const row of rows) {
    const config = catalog.doc.destinations[row.destination]
    if (config === undefined) throw new Error(`no destination ${row.destination}`)
    const r = renderIncidentDelivery(row.body, { name: row.destination, config }, catalog, new Date(clock.now))
    if (r.kind !== 'rendered') throw new Error(`not rendered: ${JSON.stringify(r)}`)
    const text = JSON.stringify(r.body)
    t.match(text, /HighErrorRate \(P0\) not acknowledged by the deadline 2026-11-26 20:15 UTC, 2 min late/, `${row.destination}: what and how late`)
    t.match(text, /primary On-call engineer; escalated to Engineering manager/)
    t.match(text, /runbook http/)
    if (config.type === 'pagerduty') {
      t.same(validatePagerDutyEvent({ ...r.body, routing_key: 'x'.repeat(32) }), [])
      t.match(r.body, { event_action: 'trigger', payload: { severity: 'critical' } })
    } else {
      t.equal(validateSlackMessage(r.body), null)
    }
  }
})

t.test('the incident state line: acknowledged within or after the SLA, escalated, nothing to say', async (t) => {
  const base: Incident = {
    id: 1, receiver: 'r', groupKey: 'g', alertname: 'A', team: 't', title: 'A', dedupKey: 'd', priority: 'P0', state: 'triggered',
    startedAt: '2026-11-26T14:00:00.000Z', triggeredAt: '2026-11-26T14:00:00.000Z', respondBy: '2026-11-26T14:05:00.000Z',
    acknowledgedAt: null, acknowledgedBy: null, acknowledgedVia: null, resolvedAt: null, breached: false, breachedAt: null,
    escalations: 0, escalateTo: [], nextEscalationAt: '2026-11-26T14:05:00.000Z'
  }
  t.equal(incidentStateLine(base, 'Engineering manager'), null, 'triggered within the deadline: nothing to say')
  t.equal(incidentStateLine({ ...base, state: 'acknowledged', acknowledgedAt: '2026-11-26T14:02:00.000Z', acknowledgedBy: 'X', acknowledgedVia: 'pagerduty' }, 'Engineering manager'),
    'Acknowledged by X via PagerDuty at 14:02 UTC — 2 min, within SLA')
  t.equal(incidentStateLine({ ...base, state: 'acknowledged', acknowledgedAt: '2026-11-26T14:09:00.000Z', acknowledgedBy: 'X', acknowledgedVia: 'slack', breached: true, breachedAt: '2026-11-26T14:05:00.000Z' }, 'Engineering manager'),
    'Acknowledged by X via Slack at 14:09 UTC — 9 min, SLA breached (deadline 14:05)')
  t.equal(incidentStateLine({ ...base, breached: true, breachedAt: '2026-11-26T14:05:00.000Z', escalations: 1 }, 'Engineering manager'),
    'Not acknowledged: escalated to Engineering manager at 14:05 UTC (deadline 14:05)')
})

t.test('a held notification ages from its release: a failure on Monday is retried, not expired', async (t) => {
  const friday = ms('2026-11-27T18:00:00Z')
  const monday = ms('2026-11-30T09:00:00Z')
  const clock = { now: friday }
  const h = await buildTestApp({ now: () => new Date(clock.now) })
  t.teardown(h.close)
  await h.store.enqueue({
    groupKey: 'g', receivedAt: friday, resolved: false,
    plan: () => [{ destination: 'slack-alerts', type: 'slack', priority: 'P3', status: 'firing', idempotencyKey: 'held', body: '{}', notBefore: monday }]
  })
  const results: SendResult[] = [{ ok: false, retryable: true, reason: 'server_error', error: 'HTTP 503' }, { ok: true, status: 200 }]
  const dispatcher = createDispatcher({ maxAgeMs: 24 * 3_600_000 }, {
    store: h.store, limiter: createRateLimiter(() => null), send: async () => results.shift() ?? { ok: true, status: 200 },
    now: () => clock.now, metrics: h.metrics, logger: { debug () {}, info () {}, warn () {}, error () {} }, random: () => 0
  })
  t.equal(await dispatcher.runOnce(), 0, 'held on Friday evening')
  clock.now = monday
  t.equal(await dispatcher.runOnce(), 1)
  t.match(await h.store.get(1), { state: 'pending', lastReason: 'server_error', deferredUntil: monday }, 'retried, not expired after 63 h')
  clock.now = monday + 60_000
  t.equal(await dispatcher.runOnce(), 1)
  t.match(await h.store.get(1), { state: 'sent' })
  t.match(await h.metrics.registry.getSingleMetricAsString('alert_enricher_delivery_latency_seconds'), /delivery_latency_seconds_sum\{priority="P3"\} 60\n/, 'latency counted from the release')
})

t.test('an escalation whose group webhook is gone still says what breached, and the fakes accept it', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  const catalog = h.catalog.current()
  const body = { escalation: { incidentId: 3, number: 2, priority: 'P0', respondBy: ms('2026-11-26T20:15:00Z'), firedAt: ms('2026-11-26T20:30:00Z'), title: 'HighErrorRate: errors', receiver: 'enricher', groupKey: 'g' }, webhook: null }
  for (const name of ['pagerduty-escalation', 'slack-incident-response']) {
    const config = catalog.doc.destinations[name]
    if (config === undefined) throw new Error(name)
    const r = renderIncidentDelivery(body, { name, config }, catalog, new Date(ms('2026-11-26T20:30:00Z')))
    if (r.kind !== 'rendered') throw new Error(JSON.stringify(r))
    t.match(JSON.stringify(r.body), /HighErrorRate: errors \(P0\) not acknowledged by the deadline 2026-11-26 20:15 UTC, 15 min late; primary On-call engineer; escalated to Engineering manager/)
    if (config.type === 'pagerduty') t.same(validatePagerDutyEvent({ ...r.body, routing_key: 'x'.repeat(32) }), [])
    else t.equal(validateSlackMessage(r.body), null)
  }
})

t.test('unacknowledged on a Friday afternoon: the P2 clock runs again on business hours, over the weekend', async (t) => {
  const clock = { now: ms('2026-11-27T16:00:00Z') }
  const h = await buildTestApp({ now: () => new Date(clock.now), adminToken: ADMIN })
  t.teardown(h.close)
  const p2 = fixture('firing-single-warning.json') as { alerts: Array<{ startsAt: string }> }
  for (const a of p2.alerts) a.startsAt = '2026-11-27T15:59:00Z'
  await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: p2 })
  const [incident] = await h.store.listIncidents({ limit: 1 })
  t.match(incident, { priority: 'P2', respondBy: '2026-11-30T09:59:00.000Z' }, '2 business hours from Friday 15:59: Monday 09:59')
  const acknowledge = createAcknowledger({ store: h.store, metrics: h.metrics, catalog: () => h.catalog.current(), isConfigured: () => true })
  await acknowledge({ incidentId: incident?.id ?? 0, action: 'acknowledge', by: 'ana', via: 'pagerduty', at: clock.now, eventId: 'e1' })
  clock.now = ms('2026-11-27T16:30:00Z')
  const r = await acknowledge({ incidentId: incident?.id ?? 0, action: 'unacknowledge', by: 'ana', via: 'pagerduty', at: clock.now, eventId: 'e2' })
  t.match(r, { outcome: 'applied', incident: { state: 'triggered', triggeredAt: '2026-11-27T16:30:00.000Z', respondBy: '2026-11-30T10:30:00.000Z' } }, 'Friday 16:30 + 2 business hours = Monday 10:30')
  t.match(await acknowledge({ incidentId: incident?.id ?? 0, action: 'unacknowledge', by: 'ana', via: 'pagerduty', at: clock.now, eventId: 'e2' }), { outcome: 'duplicate' })
})

t.test('a failing escalation step does not hold up the deliveries', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  await h.store.enqueue({ groupKey: 'g', receivedAt: Date.now(), resolved: false, plan: () => [{ destination: 'slack-alerts', type: 'slack', priority: 'P2', status: 'firing', idempotencyKey: 'k', body: '{}' }] })
  const errors: string[] = []
  const failing = { ...h.store, fireDueEscalations: async () => { throw new Error('disk I/O error') } }
  const sent: number[] = []
  let timer: (() => void) | undefined
  const dispatcher = createDispatcher({}, {
    store: failing, limiter: createRateLimiter(() => null), send: async (d) => { sent.push(d.id); return { ok: true, status: 200 } },
    now: Date.now, metrics: h.metrics, logger: { debug () {}, info () {}, warn () {}, error (_o: object, msg?: string) { errors.push(msg ?? '') } },
    setTimer: (fn) => { timer = fn; return { clear () {} } }
  })
  await dispatcher.start()
  for (let i = 0; i < 50 && sent.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  await dispatcher.stop()
  t.same(sent, [1], 'the delivery went out')
  t.ok(errors.includes('firing escalation timers failed'), 'the failure is logged')
  t.ok(timer !== undefined)
})
