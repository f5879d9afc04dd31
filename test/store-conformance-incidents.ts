import type { Test } from 'tap'
import { Value } from '@sinclair/typebox/value'
import { Incident, IncidentWithTimeline, type AcknowledgementRequest } from '../src/incidents/types.js'
import type { EnqueueItem, IncidentChange, Store } from '../src/store/types.js'
import type { StoreFactory, StoreHarness } from './store-conformance.js'

// The incident half of the store contract, run by storeConformance for every engine.

const T0 = 1_700_000_000_000
const MIN = 60_000
const WINDOW = 60_000
const ESCALATE = [{ destination: 'pagerduty-escalation', type: 'pagerduty' as const }, { destination: 'slack-incident-response', type: 'slack' as const }]

function raised (respondBy: number): IncidentChange {
  const { dedupKey: _d, title: _t, kind: _k, ...lead } = opened()
  return { ...lead, kind: 'raise', respondBy }
}

function opened (over: Partial<Extract<IncidentChange, { kind: 'open' }>> = {}): Extract<IncidentChange, { kind: 'open' }> {
  return {
    kind: 'open', dedupKey: 'dk-g', title: 'HighErrorRate: errors', priority: 'P0', respondBy: T0 + 5 * MIN,
    alertname: 'HighErrorRate', team: 'platform', escalation: { escalateTo: ESCALATE, repeatEveryMs: 15 * MIN }, ...over
  }
}

interface Ctx extends StoreHarness {
  clock: { now: number }
  webhook: (group: string, change: IncidentChange | null, opts?: { items?: EnqueueItem[], resolved?: boolean }) => Promise<number | undefined>
  fire: (isConfigured?: (d: string) => boolean) => ReturnType<Store['fireDueEscalations']>
  ack: (req: Partial<AcknowledgementRequest>) => ReturnType<Store['applyAcknowledgement']>
}

async function open (t: Test, factory: StoreFactory): Promise<Ctx> {
  const clock = { now: T0 }
  const h = await factory(t, { idempotencyWindowMs: WINDOW, now: () => clock.now })
  const ctx: Ctx = {
    ...h,
    clock,
    webhook: async (groupKey, change, opts = {}) => (await ctx.store.enqueue({
      groupKey, receivedAt: clock.now, resolved: opts.resolved ?? false, plan: () => opts.items ?? [],
      incident: { receiver: 'team', decide: () => change }
    })).incident?.id,
    fire: async (isConfigured = () => true) => await ctx.store.fireDueEscalations({ now: clock.now, limit: 100, isConfigured }),
    ack: async (req) => await ctx.store.applyAcknowledgement({ action: 'acknowledge', by: 'ana', via: 'api', at: clock.now, ...req }, {
      restartClock: (_i, at) => at + 5 * MIN, isConfigured: () => true, eventKeyWindowMs: 24 * 60 * MIN
    })
  }
  return ctx
}

export function incidentConformance (t: Test, factory: StoreFactory): void {
  t.test('incidents: one open per group; opened, raised and resolved by the webhook transaction', async (t) => {
    const s = await open(t, factory)
    const id = await s.webhook('g', opened({ priority: 'P1', respondBy: T0 + 30 * MIN }))
    t.ok(id !== undefined)
    const again = s.store.enqueue({ groupKey: 'g', receivedAt: T0, resolved: false, plan: () => [], incident: { receiver: 'team', decide: (o) => { t.equal(o?.id, id, 'decide sees the open incident'); return null } } })
    await again
    s.clock.now += MIN
    t.equal(await s.webhook('g', raised(s.clock.now + 5 * MIN)), id, 'a raise changes the same incident')
    const [afterRaise] = await s.store.listIncidents({ limit: 10 })
    t.ok(Value.Check(Incident, afterRaise), 'rows round-trip through the Incident schema')
    t.match(afterRaise, { id, priority: 'P0', state: 'triggered', respondBy: new Date(T0 + 6 * MIN).toISOString(), nextEscalationAt: new Date(T0 + 6 * MIN).toISOString() })
    t.equal(await s.webhook('g', raised(T0 + 60 * MIN)), id)
    t.equal((await s.store.getIncident(id ?? 0))?.respondBy, new Date(T0 + 6 * MIN).toISOString(), 'the sooner deadline stays')
    t.equal(await s.webhook('g', { kind: 'resolve' }, { resolved: true }), id)
    const other = await s.webhook('g', opened())
    t.not(other, id, 'a firing after the resolve opens a new incident')
    t.same((await s.store.listIncidents({ state: 'resolved', limit: 10 })).map((i) => i.id), [id])
    t.same((await s.store.listIncidents({ priority: 'P0', state: 'triggered', limit: 10 })).map((i) => i.id), [other])
    const full = await s.store.getIncident(id ?? 0)
    t.ok(Value.Check(IncidentWithTimeline, full))
    t.same(full?.timeline.map((e) => e.event), ['opened', 'priority_raised', 'priority_raised', 'resolved'])
    t.equal(await s.store.getIncident(9999), null)
  })

  t.test('escalation: exactly one at respondBy, then repeats up to the bound, each an outbox delivery', async (t) => {
    const s = await open(t, factory)
    const id = await s.webhook('g', opened(), { items: [{ destination: 'pagerduty', type: 'pagerduty', priority: 'P0', status: 'firing', idempotencyKey: 'trigger', body: JSON.stringify({ alerts: [0], payload: { note: 'a queued webhook' } }) }] })
    s.clock.now = T0 + 5 * MIN - 1
    t.same((await s.fire()).fired, [], 'nothing before the deadline')
    t.equal((await s.fire()).nextDueAt, T0 + 5 * MIN, 'the next timer is reported')
    s.clock.now = T0 + 5 * MIN
    const first = await s.fire()
    t.match(first.fired, [{ incidentId: id, priority: 'P0', number: 1, breach: true, lateMs: 0 }])
    t.same(first.fired[0]?.deliveries.map((d) => [d.destination, d.state]), [['pagerduty-escalation', 'pending'], ['slack-incident-response', 'pending']])
    t.equal(first.nextDueAt, T0 + 20 * MIN)
    t.same((await s.fire()).fired, [], 'fired once')
    const claimed = (await s.store.claim({ now: s.clock.now, limit: 10, leaseMs: 30_000, excludeDestinations: [], admit: () => true })).filter((d) => d.idempotencyKey !== 'trigger')
    t.same(claimed.map((d) => [d.destination, d.idempotencyKey]), [
      ['pagerduty-escalation', `incident:${id}:escalation:1:pagerduty-escalation`],
      ['slack-incident-response', `incident:${id}:escalation:1:slack-incident-response`]
    ])
    t.match(claimed[0]?.body, { escalation: { incidentId: id, number: 1, priority: 'P0', respondBy: T0 + 5 * MIN, title: 'HighErrorRate: errors' }, webhook: { alerts: null, payload: { note: 'a queued webhook' } } }, 'the group\'s latest queued webhook, whole')
    const numbers: number[] = []
    for (let i = 0; i < 6; i++) {
      s.clock.now += 15 * MIN
      for (const f of (await s.fire()).fired) numbers.push(f.number)
    }
    t.same(numbers, [2, 3, 4], 'three repeats, then the timer is cleared')
    const incident = await s.store.getIncident(id ?? 0)
    t.match(incident, { escalations: 4, breached: true, breachedAt: new Date(T0 + 5 * MIN).toISOString(), nextEscalationAt: null })
    t.same(incident?.timeline.map((e) => e.event).filter((e) => e !== 'notified'), ['opened', 'breached', 'escalated', 'escalated', 'escalated', 'escalated'])
  })

  t.test('escalation: an unconfigured destination is stored skipped; the escalation destinations hear the resolve', async (t) => {
    const s = await open(t, factory)
    await s.webhook('g', opened({ escalation: { escalateTo: ESCALATE, repeatEveryMs: null } }))
    s.clock.now = T0 + 10 * MIN
    const r = await s.fire((d) => d !== 'pagerduty-escalation')
    t.same(r.fired[0]?.deliveries.map((d) => [d.destination, d.state]), [['pagerduty-escalation', 'skipped'], ['slack-incident-response', 'pending']])
    t.equal(r.fired[0]?.lateMs, 5 * MIN)
    t.equal(r.nextDueAt, null, 'no repeat configured')
    const seen: string[] = []
    await s.store.enqueue({ groupKey: 'g', receivedAt: s.clock.now, resolved: true, plan: (notified) => { seen.push(...notified.map((n) => n.destination)); return [] } })
    t.same(seen, ['slack-incident-response'], 'a configured escalation destination counts as notified of the group')
  })

  t.test('acknowledge before the deadline: no escalation; unacknowledge runs the clock again; resolve stops it', async (t) => {
    const s = await open(t, factory)
    await s.webhook('g', opened({ priority: 'P0' }))
    // A PagerDuty destination told of the group gets the API acknowledgement.
    await s.store.enqueue({ groupKey: 'g', receivedAt: T0, resolved: false, plan: () => [{ destination: 'pagerduty', type: 'pagerduty', priority: 'P0', status: 'firing', idempotencyKey: 'trig', body: '{}' }] })
    s.clock.now = T0 + 2 * MIN
    const acked = await s.ack({ dedupKey: 'dk-g' })
    t.match(acked, { outcome: 'applied', incident: { state: 'acknowledged', acknowledgedBy: 'ana', acknowledgedVia: 'api', acknowledgedAt: new Date(T0 + 2 * MIN).toISOString(), nextEscalationAt: null } })
    t.match(await s.ack({ dedupKey: 'dk-g', by: 'bob' }), { outcome: 'no_change', incident: { acknowledgedBy: 'ana' } }, 'idempotent')
    const sent = await s.store.claim({ now: s.clock.now, limit: 10, leaseMs: 30_000, excludeDestinations: [], admit: () => true })
    t.same(sent.map((d) => [d.destination, d.body]), [['pagerduty', {}], ['pagerduty', { acknowledge: { incidentId: acked.incident?.id, dedupKey: 'dk-g', by: 'ana', via: 'api' } }]])
    s.clock.now = T0 + 30 * MIN
    t.same((await s.fire()).fired, [], 'acknowledged: no escalation at the deadline')

    const unacked = await s.ack({ dedupKey: 'dk-g', action: 'unacknowledge', via: 'pagerduty', eventId: 'e1' })
    t.match(unacked, { outcome: 'applied', incident: { state: 'triggered', respondBy: new Date(T0 + 35 * MIN).toISOString(), acknowledgedBy: null } })
    t.match(await s.ack({ dedupKey: 'dk-g', action: 'unacknowledge', via: 'pagerduty', eventId: 'e1' }), { outcome: 'duplicate' }, 'a redelivered event.id')
    s.clock.now = T0 + 35 * MIN
    t.match((await s.fire()).fired, [{ number: 1, breach: true }], 'the clock ran again from the unacknowledge')
    t.match(await s.ack({ dedupKey: 'dk-g', action: 'resolve', via: 'pagerduty', eventId: 'e2' }), { outcome: 'applied', incident: { state: 'resolved', nextEscalationAt: null } })
    s.clock.now = T0 + 120 * MIN
    t.same((await s.fire()).fired, [], 'resolved: nothing more')
    t.match(await s.ack({ dedupKey: 'dk-g' }), { outcome: 'no_change', incident: { state: 'resolved' } })
    t.same(await s.ack({ dedupKey: 'unknown' }), { outcome: 'unknown_incident' })
    t.same(await s.ack({ incidentId: 424242 }), { outcome: 'unknown_incident' })
    const acks = (await s.store.list({ limit: 100 })).filter((d) => JSON.stringify(d.body).startsWith('{"acknowledge"'))
    t.equal(acks.length, 1, 'only the API acknowledgement went to PagerDuty; those from PagerDuty are not sent back')
  })

  t.test('a restart with an escalation due while down: fired once after it', async (t) => {
    const s = await open(t, factory)
    await s.webhook('g', opened({ escalation: { escalateTo: ESCALATE, repeatEveryMs: null } }))
    const store = await s.reopen()
    s.clock.now = T0 + 60 * MIN
    const r = await store.fireDueEscalations({ now: s.clock.now, limit: 100, isConfigured: () => true })
    t.equal(r.fired.length, 1)
    t.equal((await store.fireDueEscalations({ now: s.clock.now, limit: 100, isConfigured: () => true })).fired.length, 0)
    const again = await s.reopen()
    t.equal((await again.fireDueEscalations({ now: s.clock.now + MIN, limit: 100, isConfigured: () => true })).fired.length, 0, 'nor after another restart')
    t.equal((await again.list({ limit: 10 })).length, 2, 'two deliveries, one per destination')
  })

  t.test('deferral: held until notBefore; a resolve meanwhile skips it and the resolve (resolved_while_deferred)', async (t) => {
    const s = await open(t, factory)
    const held = (key: string, status: 'firing' | 'resolved', notBefore?: number): EnqueueItem => ({
      destination: 'slack-alerts', type: 'slack', priority: 'P3', status, idempotencyKey: key, body: '{}', ...(notBefore !== undefined ? { notBefore } : {})
    })
    const monday = T0 + 63 * 60 * MIN
    await s.store.enqueue({ groupKey: 'g', receivedAt: T0, resolved: false, plan: () => [held('fire', 'firing', monday)] })
    const claim = async (): Promise<string[]> => (await s.store.claim({ now: s.clock.now, limit: 10, leaseMs: 30_000, excludeDestinations: [], admit: () => true })).map((d) => d.idempotencyKey)
    t.same(await claim(), [], 'held')
    t.same((await s.store.incidentStats(s.clock.now)).deferred, { P0: 0, P1: 0, P2: 0, P3: 1 })
    s.clock.now = T0 + 15 * 60 * MIN
    const r = await s.store.enqueue({ groupKey: 'g', receivedAt: s.clock.now, resolved: true, plan: (notified) => { t.same(notified, [], 'a held notification told nobody'); return [held('resolve', 'resolved')] } })
    t.same(r.inserted, [])
    t.same(r.resolvedWhileDeferred.map((d) => d.destination), ['slack-alerts', 'slack-alerts'])
    s.clock.now = monday
    t.same(await claim(), [], 'never sent')
    const rows = await s.store.list({ limit: 10 })
    t.same(rows.map((d) => [d.idempotencyKey, d.state, d.lastReason]).sort(), [['fire', 'skipped', 'resolved_while_deferred'], ['resolve', 'skipped', 'resolved_while_deferred']])

    await s.store.enqueue({ groupKey: 'g2', receivedAt: s.clock.now, resolved: false, plan: () => [held('fire2', 'firing', s.clock.now + 60 * MIN)] })
    s.clock.now += 60 * MIN
    t.same(await claim(), ['fire2'], 'sent at the business-hours start when still firing')
  })

  t.test('incident stats count by priority and state', async (t) => {
    const s = await open(t, factory)
    await s.webhook('a', opened())
    await s.webhook('b', opened({ priority: 'P2' }))
    await s.ack({ incidentId: 2 })
    const stats = await s.store.incidentStats(s.clock.now)
    t.same(stats.incidents.P0, { triggered: 1, acknowledged: 0, resolved: 0 })
    t.same(stats.incidents.P2, { triggered: 0, acknowledged: 1, resolved: 0 })
    await s.webhook('b', raised(s.clock.now + MIN))
    await s.webhook('a', { kind: 'resolve' }, { resolved: true })
    const moved = await s.store.incidentStats(s.clock.now)
    t.same(moved.incidents.P0, { triggered: 0, acknowledged: 1, resolved: 1 }, 'a raise and a resolve move the counts')
    t.same(moved.incidents.P2, { triggered: 0, acknowledged: 0, resolved: 0 })
    s.clock.now += 10 * MIN
    await s.store.housekeeping(s.clock.now, s.clock.now - MIN)
    t.same((await s.store.incidentStats(s.clock.now)).incidents.P0, { triggered: 0, acknowledged: 1, resolved: 0 }, 'housekeeping removed the resolved one')
    t.same(await s.store.listIncidents({ state: 'resolved', limit: 10 }), [])
  })
}
