import type { Test } from 'tap'
import { Value } from '@sinclair/typebox/value'
import type { PriorityName } from '../src/config/catalog-schema.js'
import { incidentConformance } from './store-conformance-incidents.js'
import { longKeyConformance } from './store-conformance-long-keys.js'
import { slackConformance } from './store-conformance-slack.js'
import {
  Delivery, NotifiedDestination,
  type ClaimRequest, type EnqueueItem, type EnqueueResult, type Store, type StoreFailure
} from '../src/store/types.js'

// What every Store engine owes its callers, written against the Store interface alone: each
// engine's test file runs this suite through a factory that opens that engine on fresh data
// (test/store-sqlite.test.ts; a PostgreSQL engine runs the same suite).

export interface StoreHarnessOptions {
  idempotencyWindowMs: number
  now: () => number
}

export interface StoreHarness {
  store: Store
  // Closes the store opened last and opens the engine again on the same data (a restart).
  reopen: () => Promise<Store>
  // Every failure the engine reported through its onFailure dependency.
  failures: StoreFailure[]
}

// Opens a store on empty data and registers its own teardown (close, remove the data) on `t`.
export type StoreFactory = (t: Test, opts: StoreHarnessOptions) => Promise<StoreHarness>

const T0 = 1_700_000_000_000
const WINDOW = 60_000
const LEASE = 30_000

export function item (key: string, over: Partial<EnqueueItem> = {}): EnqueueItem {
  return {
    destination: 'pagerduty', type: 'pagerduty', priority: 'P2', status: 'firing',
    idempotencyKey: key, body: JSON.stringify({ summary: key }), ...over
  }
}
const SLACK = { destination: 'slack-alerts', type: 'slack' } as const

interface Ctx extends StoreHarness {
  clock: { now: number }
  put: (groupKey: string, items: EnqueueItem[], opts?: { receivedAt?: number, resolved?: boolean }) => Promise<EnqueueResult>
  claim: (opts?: Partial<ClaimRequest>) => Promise<Delivery[]>
}

async function open (t: Test, factory: StoreFactory, idempotencyWindowMs = WINDOW): Promise<Ctx> {
  const clock = { now: T0 }
  const h = await factory(t, { idempotencyWindowMs, now: () => clock.now })
  const ctx: Ctx = {
    ...h,
    clock,
    put: async (groupKey, items, opts = {}) => await ctx.store.enqueue({
      groupKey, receivedAt: opts.receivedAt ?? clock.now, resolved: opts.resolved ?? false, plan: () => items
    }),
    claim: async (opts = {}) => await ctx.store.claim({
      now: clock.now, limit: 100, leaseMs: LEASE, excludeDestinations: [], admit: () => true, ...opts
    })
  }
  return ctx
}

const keys = (ds: ReadonlyArray<{ idempotencyKey: string }>): string[] => ds.map((d) => d.idempotencyKey)

export function storeConformance (t: Test, factory: StoreFactory): void {
  incidentConformance(t, factory)
  slackConformance(t, factory)
  longKeyConformance(t, factory)
  t.test('enqueue stores what plan returns; rows round-trip through the Delivery schema', async (t) => {
    const s = await open(t, factory)
    const big = JSON.stringify({ alerts: Array.from({ length: 40 }, (_, i) => ({ i, text: `alert ${i} ünïcödé `.repeat(40) })) })
    const r = await s.put('g1', [
      item('a', { priority: 'P0', body: big }),
      item('b', { ...SLACK, priority: 'P3', skip: true })
    ], { receivedAt: T0 - 500 })
    t.same(r.duplicates, [])
    t.same(r.superseded, [])
    t.strictSame(r.inserted.map(({ id: _id, ...rest }) => rest), [
      { destination: 'pagerduty', type: 'pagerduty', priority: 'P0', state: 'pending' },
      { destination: 'slack-alerts', type: 'slack', priority: 'P3', state: 'skipped' }
    ])
    const [a, b] = await Promise.all(r.inserted.map(async (ref) => await s.store.get(ref.id)))
    t.ok(Value.Check(Delivery, a) && Value.Check(Delivery, b), 'both rows are valid Delivery values')
    t.strictSame(a, {
      id: r.inserted[0]?.id, destination: 'pagerduty', type: 'pagerduty', priority: 'P0', idempotencyKey: 'a', groupKey: 'g1',
      body: JSON.parse(big) as unknown, state: 'pending', attempts: 0, nextAttemptAt: T0, claimedUntil: null,
      receivedAt: T0 - 500, createdAt: T0, updatedAt: T0, lastError: null, lastReason: null, sentAt: null, deferredUntil: null
    })
    t.match(b, { idempotencyKey: 'b', state: 'skipped', lastReason: 'not_configured', body: { summary: 'b' } })
    t.same(keys(await s.claim()), ['a'], 'a skipped row is never claimed')
    t.equal(await s.store.get(r.inserted[1]!.id + 1_000), null, 'get of an unknown id is null')
  })

  t.test('idempotency: a key is taken for the window, then free again', async (t) => {
    const s = await open(t, factory)
    t.equal((await s.put('g', [item('same'), item('other', SLACK)])).inserted.length, 2)
    s.clock.now += WINDOW - 1
    t.strictSame(await s.put('g', [item('same')]), { inserted: [], duplicates: ['same'], superseded: [], resolvedWhileDeferred: [] }, 'a retry inside the window')
    const pair = await s.put('g2', [item('pair'), item('pair')])
    t.equal(pair.inserted.length, 1, 'twice in one plan: stored once')
    t.same(pair.duplicates, ['pair'])
    s.clock.now += 2
    t.equal((await s.put('g', [item('same')])).inserted.length, 1, 'after the window a reminder goes out')
    t.equal((await s.store.list({ limit: 100 })).filter((d) => d.idempotencyKey === 'same').length, 2)
  })

  t.test('idempotency: HA peers delivering the same notification at once store one row', async (t) => {
    const s = await open(t, factory)
    const results = await Promise.all([1, 2, 3].map(async () => await s.put('g', [item('ha')])))
    t.equal(results.reduce((n, r) => n + r.inserted.length, 0), 1)
    t.equal(results.reduce((n, r) => n + r.duplicates.length, 0), 2)
    t.equal((await s.store.list({ limit: 100 })).length, 1)
  })

  t.test('idempotency: keys survive a restart within the window', async (t) => {
    const s = await open(t, factory)
    const [kept] = (await s.put('g', [item('k')])).inserted
    const store = await s.reopen()
    s.clock.now += WINDOW / 2
    t.match(await store.get(kept!.id), { idempotencyKey: 'k', state: 'pending' }, 'the row is still there')
    const again = await store.enqueue({ groupKey: 'g', receivedAt: s.clock.now, resolved: false, plan: () => [item('k')] })
    t.same(again.duplicates, ['k'])
    t.same(again.inserted, [])
  })

  t.test('idempotency: a rolled-back enqueue does not keep its keys', async (t) => {
    const s = await open(t, factory)
    await t.rejects(s.store.enqueue({ groupKey: 'g', receivedAt: T0, resolved: false, plan: () => { throw new Error('plan broke') } }), /plan broke/)
    // The second item violates NOT NULL: the whole enqueue rolls back, the first item's key too.
    await t.rejects(s.put('g', [item('retry-me'), item('broken', { destination: null as unknown as string })]))
    t.same(await s.store.list({ limit: 100 }), [], 'nothing stored')
    const retry = await s.put('g', [item('retry-me'), item('broken')])
    t.same(retry.duplicates, [])
    t.equal(retry.inserted.length, 2, 'the retry is stored')
    t.same(keys(await s.store.list({ limit: 100 })).sort(), ['broken', 'retry-me'])
  })

  t.test('notified destinations: remembered per group while firing, forgotten when it resolves', async (t) => {
    const s = await open(t, factory)
    const seen: NotifiedDestination[][] = []
    const enqueue = async (groupKey: string, items: EnqueueItem[], resolved = false): Promise<void> => {
      await s.store.enqueue({ groupKey, receivedAt: s.clock.now, resolved, plan: (notified) => { seen.push([...notified]); return items } })
    }
    const pd = (priority: PriorityName): NotifiedDestination => ({ destination: 'pagerduty', type: 'pagerduty', priority })

    await enqueue('g', [item('f1', { priority: 'P2' }), item('f1-slack', { ...SLACK, skip: true })])
    t.strictSame(seen.pop(), [], 'a new group: nobody notified yet')
    await enqueue('g', [item('f2', { priority: 'P1' })])
    t.strictSame(seen.pop(), [pd('P2')], 'the firing destination; not the unconfigured one')
    await enqueue('g', [item('f3', { priority: 'P3' })])
    t.strictSame(seen.pop(), [pd('P1')], 'the most urgent priority seen')
    await enqueue('g', [item('f4', { ...SLACK, priority: 'P3' })])
    t.strictSame(seen.pop(), [pd('P1')], 'a lower priority later does not lower it')
    await enqueue('other', [item('o1', { ...SLACK, status: 'resolved' })])
    t.strictSame(seen.pop(), [], 'per group')
    await enqueue('other', [])
    t.strictSame(seen.pop(), [], 'a destination told only of resolved alerts is not remembered')
    await enqueue('g', [item('r1', { status: 'resolved' })], true)
    t.strictSame(seen.pop()?.sort((x, y) => x.destination.localeCompare(y.destination)),
      [pd('P1'), { destination: 'slack-alerts', type: 'slack', priority: 'P3' }], 'the resolve is planned with both')
    await enqueue('g', [])
    t.strictSame(seen.pop(), [], 'after the group resolved nobody counts as notified')
    t.ok(seen.every((n) => n.every((d) => Value.Check(NotifiedDestination, d))))
  })

  t.test('per destination and group: a newer delivery supersedes older pending ones and waits for one in flight', async (t) => {
    const s = await open(t, factory)
    const [t1] = (await s.put('flapping', [item('t1')])).inserted
    const second = await s.put('flapping', [item('t2'), item('other-dest', SLACK)])
    t.strictSame(second.superseded, [{ id: t1!.id, destination: 'pagerduty', type: 'pagerduty', priority: 'P2' }], 'only the same destination')
    t.match(await s.store.get(t1!.id), { state: 'skipped', lastReason: 'superseded' })

    const claimed = await s.claim()
    t.same(keys(claimed).sort(), ['other-dest', 't2'])
    const resolve = await s.put('flapping', [item('resolve', { status: 'resolved' })], { resolved: true })
    t.same(resolve.superseded, [], 'one being sent is not superseded')
    t.same(keys(await s.claim()), [], 'the resolve waits while t2 is sending')
    const t2 = claimed.find((d) => d.idempotencyKey === 't2')!
    t.equal(await s.store.markRetry(t2, s.clock.now + 1_000, 'server_error', 'HTTP 500'), 'superseded', 'not retried: the resolve carries the newer state')
    t.match(await s.store.get(t2.id), { state: 'skipped', lastReason: 'superseded' })
    t.same((await s.claim()).map((d) => d.id), [resolve.inserted[0]?.id], 'now the resolve goes')

    const other = claimed.find((d) => d.idempotencyKey === 'other-dest')!
    t.equal(await s.store.markRetry(other, s.clock.now + 1_000, 'server_error', 'HTTP 500'), 'done', 'without a newer one a retry is a retry')
    t.match(await s.store.get(other.id), { state: 'pending', nextAttemptAt: s.clock.now + 1_000 })
  })

  t.test('per destination and group: the newer one goes once the older is sent', async (t) => {
    const s = await open(t, factory)
    await s.put('g', [item('first')])
    const [first] = await s.claim()
    await s.put('g', [item('second')])
    await s.put('h', [item('other-group')])
    t.same(keys(await s.claim()), ['other-group'], 'other groups are not held back')
    t.equal(await s.store.markSent(first!, s.clock.now), 'done')
    t.same(keys(await s.claim()), ['second'])
  })

  t.test('claim: priority first, then due time; only due rows; claimed rows are sending under a lease', async (t) => {
    const s = await open(t, factory)
    const order: Array<[string, PriorityName, boolean]> = [
      ['p3-slack', 'P3', true], ['p1-pd', 'P1', false], ['p0-slack', 'P0', true], ['p2-pd', 'P2', false], ['p0-pd', 'P0', false]
    ]
    for (const [key, priority, slack] of order) {
      await s.put(`g-${key}`, [item(key, { priority, ...(slack ? SLACK : {}) })])
      s.clock.now += 10
    }
    const claimed = await s.claim({ limit: 3 })
    t.same(keys(claimed), ['p0-slack', 'p0-pd', 'p1-pd'])
    for (const d of claimed) {
      t.ok(Value.Check(Delivery, d), 'a valid Delivery')
      t.match(d, { state: 'sending', attempts: 1, claimedUntil: s.clock.now + LEASE })
      t.match(await s.store.get(d.id), { state: 'sending', attempts: 1, claimedUntil: s.clock.now + LEASE })
    }
    t.same(keys(await s.claim()), ['p2-pd', 'p3-slack'])
    t.same(await s.claim(), [], 'nothing left pending')

    // Same priority: the one due first goes first, whatever the insertion order.
    const p1 = claimed[2]!
    t.equal(await s.store.markRetry(p1, s.clock.now + 5_000, 'server_error', 'HTTP 503'), 'done')
    await s.put('g-late', [item('late', { priority: 'P1' })])
    s.clock.now += 4_999
    t.same(keys(await s.claim()), ['late'], 'not yet due rows wait')
    await s.put('g-later', [item('later', { priority: 'P1' })])
    s.clock.now += 1
    t.same(keys(await s.claim()), ['later', 'p1-pd'], 'due earlier, though inserted later')
  })

  t.test('claim: excluded destinations and refused admissions stay pending', async (t) => {
    const s = await open(t, factory)
    for (let i = 0; i < 5; i++) {
      await s.put(`s${i}`, [item(`slack-${i}`, { ...SLACK, priority: 'P0' })])
      s.clock.now += 1
    }
    await s.put('p', [item('pd-p3', { priority: 'P3' })])
    const asked: string[] = []
    const claimed = await s.claim({ admit: (destination, type) => { asked.push(`${destination}:${type}`); return destination !== 'slack-alerts' } })
    t.same(keys(claimed), ['pd-p3'])
    t.ok(asked.includes('slack-alerts:slack') && asked.includes('pagerduty:pagerduty'), 'admit asked with destination and type')
    t.equal((await s.store.list({ state: 'pending', limit: 100 })).length, 5, 'refused ones stay pending')
    await s.put('p2', [item('pd-p1', { priority: 'P1' })])
    t.same(keys(await s.claim({ excludeDestinations: ['slack-alerts'] })), ['pd-p1'])
    t.same(keys(await s.claim({ limit: 2 })), ['slack-0', 'slack-1'], 'then they go, in order')
  })

  t.test('leases: a lapsed claim is taken again; the old holder has lost it', async (t) => {
    const s = await open(t, factory)
    await s.put('g', [item('k')])
    const [held] = await s.claim({ leaseMs: 1_000 })
    s.clock.now += 999
    t.same(await s.claim({ leaseMs: 1_000 }), [], 'still held')
    s.clock.now += 2
    const [again] = await s.claim({ leaseMs: 1_000 })
    t.match(again, { id: held!.id, state: 'sending', attempts: 2, claimedUntil: s.clock.now + 1_000 })
    t.equal(await s.store.markSent(held!, s.clock.now), 'lost_claim')
    t.equal(await s.store.markRetry(held!, s.clock.now + 1, 'timeout', 'slow'), 'lost_claim')
    t.equal(await s.store.markDead(held!, 'client_error', 'HTTP 400'), 'lost_claim')
    t.strictSame(await s.store.get(held!.id), again, 'the row is as the new claim left it')
    t.equal(await s.store.markSent(again!, s.clock.now), 'done')
  })

  t.test('marks: sent, retry, dead; retryDead', async (t) => {
    const s = await open(t, factory)
    for (const [key, over] of [['a', {}], ['b', SLACK], ['c', {}]] as const) {
      await s.put(`g-${key}`, [item(key, over)])
      s.clock.now += 1
    }
    const [a, b, c] = await s.claim()
    t.same(keys([a!, b!, c!]), ['a', 'b', 'c'])
    s.clock.now += 7
    t.equal(await s.store.markSent(a!, s.clock.now - 2), 'done')
    t.match(await s.store.get(a!.id), { state: 'sent', sentAt: s.clock.now - 2, claimedUntil: null, updatedAt: s.clock.now, attempts: 1 })
    t.equal(await s.store.markSent(a!, s.clock.now), 'lost_claim', 'a second outcome for one claim')
    t.equal(await s.store.markRetry(b!, s.clock.now + 500, 'rate_limited', 'HTTP 429'), 'done')
    t.match(await s.store.get(b!.id), { state: 'pending', nextAttemptAt: s.clock.now + 500, claimedUntil: null, lastReason: 'rate_limited', lastError: 'HTTP 429', attempts: 1 })
    t.equal(await s.store.markDead(c!, 'client_error', 'HTTP 400: invalid routing key'), 'done')
    t.match(await s.store.get(c!.id), { state: 'dead', claimedUntil: null, lastReason: 'client_error', lastError: 'HTTP 400: invalid routing key' })

    s.clock.now += 100
    t.match(await s.store.retryDead(c!.id, s.clock.now), { outcome: 'retried', delivery: { id: c!.id, state: 'pending', attempts: 1, nextAttemptAt: s.clock.now } }, 'attempts kept: it is the claim token')
    t.strictSame(await s.store.retryDead(a!.id, s.clock.now), { outcome: 'not_dead', state: 'sent' })
    t.strictSame(await s.store.retryDead(c!.id, s.clock.now), { outcome: 'not_dead', state: 'pending' })
    t.strictSame(await s.store.retryDead(c!.id + 1_000, s.clock.now), { outcome: 'not_found' })
    t.same(keys(await s.claim()), ['c'], 'the replayed one is due at once (b is not due yet)')
  })

  t.test('stats, list and get', async (t) => {
    const s = await open(t, factory)
    const puts: Array<[string, EnqueueItem, number]> = [
      ['g0', item('p0', { priority: 'P0' }), T0 - 30_000],
      ['g3a', item('p3a', { priority: 'P3' }), T0 - 5_000],
      ['g3b', item('p3b', { ...SLACK, priority: 'P3' }), T0 - 4_000],
      ['g1', item('x', { priority: 'P1' }), T0]
    ]
    for (const [group, it, receivedAt] of puts) {
      await s.put(group, [it], { receivedAt })
      s.clock.now += 10
    }
    const [p0, x] = await s.claim({ limit: 2 })
    t.same(keys([p0!, x!]), ['p0', 'x'])
    s.clock.now += 10
    await s.store.markDead(x!, 'client_error', 'bad')
    t.strictSame(await s.store.stats(T0 + 50), {
      pending: { P0: 1, P1: 0, P2: 0, P3: 2 },
      oldestPendingAgeMs: { P0: 30_050, P1: 0, P2: 0, P3: 5_050 },
      dead: 1
    }, 'sending counts as pending')
    s.clock.now += 1_000
    await s.store.markSent(p0!, s.clock.now)
    t.strictSame(await s.store.stats(s.clock.now), {
      pending: { P0: 0, P1: 0, P2: 0, P3: 2 },
      oldestPendingAgeMs: { P0: 0, P1: 0, P2: 0, P3: 6_050 },
      dead: 1
    })

    t.same(keys(await s.store.list({ state: 'dead', limit: 10 })), ['x'])
    t.same(keys(await s.store.list({ state: 'pending', limit: 10 })), ['p3b', 'p3a'], 'newest first')
    t.same(keys(await s.store.list({ limit: 10 })), ['p0', 'x', 'p3b', 'p3a'], 'all states, last changed first')
    t.same(keys(await s.store.list({ limit: 2, offset: 1 })), ['x', 'p3b'])
    t.same(await s.store.list({ state: 'sending', limit: 10 }), [])
  })

  t.test('housekeeping deletes only old settled rows and expired keys', async (t) => {
    const s = await open(t, factory)
    // Each row has its own destination, so a claim can pick exactly it.
    const settle = async (key: string, how: 'sent' | 'dead' | 'sending' | 'pending' | 'skipped'): Promise<number> => {
      const [ref] = (await s.put(`g-${key}`, [item(key, { destination: key, skip: how === 'skipped' })])).inserted
      if (how === 'sent' || how === 'dead' || how === 'sending') {
        const [d] = await s.claim({ leaseMs: 10 * WINDOW, admit: (destination) => destination === key })
        if (how === 'sent') await s.store.markSent(d!, s.clock.now)
        if (how === 'dead') await s.store.markDead(d!, 'client_error', 'HTTP 400')
      }
      return ref!.id
    }
    const old = {
      sent: await settle('old-sent', 'sent'),
      skipped: await settle('old-skipped', 'skipped'),
      dead: await settle('old-dead', 'dead'),
      sending: await settle('old-sending', 'sending'),
      pending: await settle('old-pending', 'pending')
    }
    s.clock.now += 1_000
    const recentSent = await settle('recent-sent', 'sent')
    const sentBefore = s.clock.now - 500
    s.clock.now += 10

    t.strictSame(await s.store.housekeeping(s.clock.now, sentBefore), { deliveries: 2, keys: 0 })
    t.equal(await s.store.get(old.sent), null)
    t.equal(await s.store.get(old.skipped), null)
    for (const [name, id] of Object.entries({ dead: old.dead, sending: old.sending, pending: old.pending, recentSent })) {
      t.not(await s.store.get(id), null, `${name} kept`)
    }
    t.same((await s.put('g', [item('old-sent')])).duplicates, ['old-sent'], 'a key inside its window survives its row')

    s.clock.now = T0 + WINDOW + 1
    t.strictSame(await s.store.housekeeping(s.clock.now, T0 - 1), { deliveries: 0, keys: 5 }, 'the keys taken at T0 expired')
    t.equal((await s.put('g', [item('old-sent')])).inserted.length, 1, 'and are free again')
    t.same((await s.put('g', [item('recent-sent')])).duplicates, ['recent-sent'], 'a later key is still taken')
  })

  t.test('housekeeping forgets notified destinations of groups untouched since sentBefore', async (t) => {
    const s = await open(t, factory)
    let notified: readonly NotifiedDestination[] = []
    const enqueue = async (groupKey: string, items: EnqueueItem[]): Promise<void> => {
      await s.store.enqueue({ groupKey, receivedAt: s.clock.now, resolved: false, plan: (n) => { notified = n; return items } })
    }
    await enqueue('stale', [item('s1')])
    s.clock.now += 1_000
    await enqueue('live', [item('l1')])
    await s.store.housekeeping(s.clock.now, s.clock.now - 500)
    await enqueue('stale', [])
    t.same(notified, [])
    await enqueue('live', [])
    t.same(notified.map((d) => d.destination), ['pagerduty'])
  })

  t.test('failures are visible until a later write succeeds; closed is unavailable', async (t) => {
    const s = await open(t, factory)
    t.equal(s.store.unavailable(), null)
    const broken = item('broken', { destination: null as unknown as string })
    await t.rejects(s.put('g', [broken]))
    t.equal(s.failures.length, 1)
    t.match(s.failures[0], { operation: 'enqueue', error: Error })
    t.match(s.store.unavailable(), /enqueue/)
    await s.put('g', [item('fine')])
    t.equal(s.store.unavailable(), null, 'a successful enqueue clears it')

    await t.rejects(s.put('g', [broken]))
    t.match(s.store.unavailable(), /enqueue/)
    await s.store.housekeeping(s.clock.now, s.clock.now - WINDOW)
    t.equal(s.store.unavailable(), null, 'so does housekeeping')

    await s.store.close()
    t.match(s.store.unavailable(), /closed/)
    await t.rejects(s.put('g', [item('late')]))
  })
}
