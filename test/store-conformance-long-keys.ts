import { createHash, randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import type { ClaimRequest, Delivery, EnqueueItem, EnqueueRequest, IncidentChange, NotifiedDestination } from '../src/store/types.js'
import type { StoreFactory } from './store-conformance.js'

// Alertmanager bounds neither a groupKey nor a receiver: a label value in the group can make
// the key many kilobytes of text that does not compress. Every engine stores, orders, remembers
// and pages such a group like any other (PostgreSQL caps a B-tree entry at a fraction of a
// page, so it must never index the raw text). Run by storeConformance for every engine.

const T0 = 1_700_000_000_000
const MIN = 60_000
const SLACK = { destination: 'slack-alerts', type: 'slack' } as const

// About `chars` characters of random base64 inside a label, as Alertmanager would render it.
const longText = (chars: number): string => randomBytes(Math.ceil(chars * 3 / 4)).toString('base64').slice(0, chars)

function item (key: string, over: Partial<EnqueueItem> = {}): EnqueueItem {
  return { destination: 'pagerduty', type: 'pagerduty', priority: 'P0', status: 'firing', idempotencyKey: key, body: JSON.stringify({ payload: { note: key } }), ...over }
}

// As the webhook path opens one: the dedup key is the group key's sha256.
function opened (groupKey: string, respondBy: number): IncidentChange {
  return {
    kind: 'open', dedupKey: createHash('sha256').update(groupKey).digest('hex'), title: 'LongLabel', priority: 'P0', respondBy, alertname: 'LongLabel', team: 'platform',
    escalation: { escalateTo: [{ destination: 'pagerduty-escalation', type: 'pagerduty' }], repeatEveryMs: null }
  }
}

export function longKeyConformance (t: Test, factory: StoreFactory): void {
  // Over a B-tree entry's maximum (about a third of a page), and over a whole page.
  for (const chars of [3_000, 9_000]) longGroup(t, factory, chars)
  heldLongGroup(t, factory)
}

function longGroup (t: Test, factory: StoreFactory, chars: number): void {
  t.test(`a group key of ~${chars.toLocaleString('en')} incompressible characters: stored, superseded, ordered, remembered; its incident opened, escalated and resolved`, async (t) => {
    const clock = { now: T0 }
    const { store } = await factory(t, { idempotencyWindowMs: MIN, now: () => clock.now })
    const group = `{}:{alertname="LongLabel", detail="${longText(chars)}"}`
    // Differs from `group` in its last characters only: a group of its own.
    const sibling = `${group.slice(0, -3)}x"}`
    const receiver = `receiver-${longText(3_000)}`
    const seen: NotifiedDestination[][] = []
    const webhook = async (groupKey: string, items: EnqueueItem[], change: IncidentChange | null, resolved = false): ReturnType<typeof store.enqueue> => {
      const req: EnqueueRequest = {
        groupKey, receivedAt: clock.now, resolved, plan: (n) => { seen.push([...n]); return items },
        incident: { receiver, decide: () => change }
      }
      return await store.enqueue(req)
    }
    const claim = async (over: Partial<ClaimRequest> = {}): Promise<Delivery[]> =>
      // A lease longer than the test: a claim stays in flight until marked.
      await store.claim({ now: clock.now, limit: 100, leaseMs: 24 * 60 * MIN, excludeDestinations: [], admit: () => true, ...over })
    const keys = (ds: Delivery[]): string[] => ds.map((d) => d.idempotencyKey).sort()

    const first = await webhook(group, [item('early')], opened(group, T0 + 5 * MIN))
    t.equal(first.inserted.length, 1, 'the first webhook is stored')
    const incidentId = first.incident?.id
    t.match(first.incident, { change: 'open' }, 'and opens the group\'s incident')
    const second = await webhook(group, [item('trigger'), item('trigger-slack', SLACK)], null)
    t.same(second.superseded.map((d) => d.id), [first.inserted[0]?.id], 'a newer webhook of the group supersedes its pending one')
    const other = await webhook(sibling, [item('sibling')], opened(sibling, T0 + 60 * MIN))
    t.match(other.incident, { change: 'open' }, 'the sibling group opens an incident of its own')
    t.not(other.incident?.id, incidentId)
    t.same(other.superseded, [], 'and supersedes nothing of the other group')

    const claimed = await claim()
    t.same(keys(claimed), ['sibling', 'trigger', 'trigger-slack'])
    const byKey = (k: string): Delivery => claimed.find((d) => d.idempotencyKey === k)!
    t.equal(byKey('trigger').groupKey, group, 'the raw group key round-trips')
    t.equal(await store.markSent(byKey('trigger'), clock.now), 'done')
    t.equal(await store.markSent(byKey('sibling'), clock.now), 'done')

    clock.now = T0 + 5 * MIN
    const fired = await store.fireDueEscalations({ now: clock.now, limit: 10, isConfigured: () => true })
    t.match(fired.fired, [{ incidentId, number: 1 }], 'the unacknowledged incident escalates at its deadline')
    const [escalation] = await claim({ admit: (d) => d === 'pagerduty-escalation' })
    t.match(escalation?.body, { escalation: { incidentId, groupKey: group, receiver }, webhook: { alerts: null, payload: { note: 'trigger-slack' } } }, 'with the group\'s latest webhook')
    t.equal(await store.markSent(escalation!, clock.now), 'done')

    // The resolve: planned with every destination told of the group, ordered after the trigger
    // still in flight to Slack.
    const resolve = await webhook(group, [item('resolve', { status: 'resolved' }), item('resolve-slack', { ...SLACK, status: 'resolved' }),
      item('resolve-esc', { destination: 'pagerduty-escalation', status: 'resolved' })], { kind: 'resolve' }, true)
    t.same(seen.at(-1)?.map((n) => n.destination).sort(), ['pagerduty', 'pagerduty-escalation', 'slack-alerts'], 'the resolve goes to the destinations told (escalation included)')
    t.match(resolve.incident, { id: incidentId, change: 'resolve' })
    t.same(keys(await claim()), ['resolve', 'resolve-esc'], 'the Slack resolve waits for its trigger in flight')
    t.equal(await store.markRetry(byKey('trigger-slack'), clock.now + 1_000, 'server_error', 'HTTP 500'), 'superseded', 'the failed trigger is not retried after the resolve')
    const [resolveSlack] = await claim()
    t.equal(resolveSlack?.idempotencyKey, 'resolve-slack', 'then the Slack resolve goes')

    t.match(await store.getIncident(incidentId ?? 0), { state: 'resolved', groupKey: group, receiver }, 'the incident resolved')
    t.match(await store.findIncident(receiver, group), { id: incidentId })
    t.match(await store.findIncident(receiver, sibling), { id: other.incident?.id, state: 'triggered' }, 'the sibling\'s incident is still open')
    await webhook(sibling, [], null)
    t.same(seen.at(-1)?.map((n) => n.destination), ['pagerduty'], 'the sibling group still counts its notified destination')
    await webhook(group, [], null)
    t.same(seen.at(-1), [], 'the resolved group has no notified destination left')
    const again = await webhook(group, [item('refire')], opened(group, T0 + 30 * MIN))
    t.match(again.incident, { change: 'open' }, 'a firing after the resolve opens a new incident')
    t.not(again.incident?.id, incidentId)
  })
}

function heldLongGroup (t: Test, factory: StoreFactory): void {
  t.test('a group key of ~9,000 incompressible characters: its notification held for business hours is skipped when it resolves', async (t) => {
    const clock = { now: T0 }
    const { store } = await factory(t, { idempotencyWindowMs: MIN, now: () => clock.now })
    const group = `{}:{alertname="LongLabel", detail="${longText(9_000)}"}`
    const held = item('held', { ...SLACK, priority: 'P3', notBefore: T0 + 60 * MIN })
    await store.enqueue({ groupKey: group, receivedAt: clock.now, resolved: false, plan: () => [held] })
    clock.now += MIN
    const r = await store.enqueue({ groupKey: group, receivedAt: clock.now, resolved: true, plan: () => [item('resolve', { ...SLACK, status: 'resolved', priority: 'P3' })] })
    t.equal(r.resolvedWhileDeferred.length, 2, 'the held one and its resolve are skipped')
    t.same((await store.list({ limit: 10 })).map((d) => [d.idempotencyKey, d.state, d.lastReason]).sort(),
      [['held', 'skipped', 'resolved_while_deferred'], ['resolve', 'skipped', 'resolved_while_deferred']])
  })
}
