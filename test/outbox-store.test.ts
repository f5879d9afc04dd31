import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import { createSqliteStore } from '../src/outbox/sqlite-store.js'
import { Delivery, type EnqueueItem, type SupersededDelivery } from '../src/outbox/store.js'
import type { PriorityName } from '../src/config/catalog-schema.js'

function item (key: string, over: Partial<EnqueueItem> = {}): EnqueueItem {
  return { destination: 'pagerduty', type: 'pagerduty', priority: 'P2', idempotencyKey: key, groupKey: `g-${key}`, body: { summary: key }, ...over }
}

// Folds are left to reads and claims here (no timer within a test), so commits are countable.
function setup (t: { teardown: (fn: () => unknown) => void }, opts: { window?: number, foldDelayMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ae-outbox-'))
  const clock = { now: 1_000_000 }
  const commits: number[] = []
  const durability: boolean[] = []
  const superseded: SupersededDelivery[] = []
  const claimable: number[] = []
  const store = createSqliteStore(
    { dataDir: dir, foldDelayMs: opts.foldDelayMs ?? 3_600_000, ...(opts.window !== undefined ? { idempotencyWindowMs: opts.window } : {}) },
    {
      now: () => clock.now,
      onCommit: ({ operations, durable }) => { commits.push(operations); durability.push(durable) },
      onSuperseded: (d) => { superseded.push(...d) },
      onClaimable: () => { claimable.push(commits.length) }
    }
  )
  t.teardown(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { store, clock, commits, durability, dir, superseded, claimable }
}

t.test('concurrent enqueue calls share one transaction and all resolve after it', async (t) => {
  const { store, commits } = setup(t)
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.enqueue([item(`k${i}`), item(`k${i}-slack`, { destination: 'slack-alerts', type: 'slack' })], { receivedAt: 999_000 })))
  t.same(commits, [50], 'one commit holding all 50 calls')
  t.equal(results.every((r) => r.inserted.length === 2 && r.duplicates.length === 0), true)
  t.equal((await store.list({ state: 'pending', limit: 1000 })).length, 100)
})

t.test('enqueues and replays commit durably (FULL); claims and marks as bookkeeping', async (t) => {
  const { store, clock, durability } = setup(t)
  await store.enqueue([item('a'), item('b')], { receivedAt: clock.now })
  const [a, b] = await store.claimDue(clock.now, 2)
  await store.markSent(a!.id, clock.now)
  await store.markDead(b!.id, 'client_error', 'HTTP 400')
  await store.retryDead(b!.id)
  t.same(durability, [true, false, false, false, true])
  // A bookkeeping op sharing a batch with an enqueue rides the durable commit.
  const [c] = await store.claimDue(clock.now, 1)
  await Promise.all([store.markSent(c!.id, clock.now), store.enqueue([item('c')], { receivedAt: clock.now })])
  t.same(durability.slice(-1), [true])
})

t.test('rows round-trip through the Delivery schema', async (t) => {
  const { store } = setup(t)
  const r = await store.enqueue([item('a', { priority: 'P0', body: { nested: { x: [1, 2] } } })], { receivedAt: 999_000 })
  const d = await store.get(r.inserted[0]!.id)
  t.ok(d !== null && Value.Check(Delivery, d), 'valid Delivery')
  t.match(d, { priority: 'P0', state: 'pending', attempts: 0, body: { nested: { x: [1, 2] } }, receivedAt: 999_000, createdAt: 1_000_000, nextAttemptAt: 1_000_000, lastReason: null, sentAt: null })
  t.equal(await store.get(12345), null)
})

t.test('a body that cannot be serialised fails only its own caller', async (t) => {
  const { store, commits } = setup(t)
  const circular: Record<string, unknown> = {}
  circular.self = circular
  const [good, bad] = await Promise.allSettled([
    store.enqueue([item('good')], { receivedAt: 0 }),
    store.enqueue([item('bad', { body: circular })], { receivedAt: 0 })
  ])
  t.equal(good.status, 'fulfilled')
  t.equal(bad.status, 'rejected')
  t.same(commits, [1])
})

t.test('enqueue rejects once the store is closed', async (t) => {
  const { store } = setup(t)
  await store.close()
  await t.rejects(store.enqueue([item('late')], { receivedAt: 0 }), /closed/)
  // teardown closes again; that must be harmless
})

t.test('idempotency: same key inside the window is a duplicate, after it a new row', async (t) => {
  const { store, clock } = setup(t, { window: 60_000 })
  const first = await store.enqueue([item('same'), item('other')], { receivedAt: clock.now })
  t.equal(first.inserted.length, 2)
  clock.now += 59_999
  const second = await store.enqueue([item('same')], { receivedAt: clock.now })
  t.same(second, { inserted: [], duplicates: ['same'] })
  // Within one batch too (HA pair delivering at once).
  const third = await store.enqueue([item('pair'), item('pair')], { receivedAt: clock.now })
  t.equal(third.inserted.length, 1)
  t.same(third.duplicates, ['pair'])
  clock.now += 1
  const fourth = await store.enqueue([item('same')], { receivedAt: clock.now })
  t.equal(fourth.inserted.length, 1, 'a repeat_interval reminder goes out again')
  t.equal((await store.list({ limit: 100 })).filter((d) => d.idempotencyKey === 'same').length, 2)
})

t.test('unconfigured destinations are stored as skipped with reason not_configured', async (t) => {
  const { store, clock } = setup(t)
  const r = await store.enqueue([item('a'), item('b', { destination: 'slack-alerts', type: 'slack', skip: true })], { receivedAt: clock.now })
  t.same(r.inserted.map((d) => d.state), ['pending', 'skipped'])
  const [skipped] = await store.list({ state: 'skipped', limit: 10 })
  t.match(skipped, { destination: 'slack-alerts', state: 'skipped', lastReason: 'not_configured' })
  t.equal((await store.claimDue(clock.now, 10)).length, 1, 'skipped rows are never claimed')
})

t.test('claimDue: priority first, then nextAttemptAt; only due rows; marks sending', async (t) => {
  const { store, clock } = setup(t)
  const order: Array<[string, PriorityName, string]> = [
    ['p3-slack', 'P3', 'slack-alerts'], ['p1-pd', 'P1', 'pagerduty'], ['p0-slack', 'P0', 'slack-alerts'],
    ['p2-pd', 'P2', 'pagerduty'], ['p0-pd', 'P0', 'pagerduty']
  ]
  for (const [key, priority, destination] of order) {
    await store.enqueue([item(key, { priority, destination, type: destination === 'pagerduty' ? 'pagerduty' : 'slack' })], { receivedAt: clock.now })
    clock.now += 10
  }
  const claimed = await store.claimDue(clock.now, 3)
  t.same(claimed.map((d) => d.idempotencyKey), ['p0-slack', 'p0-pd', 'p1-pd'])
  t.equal(claimed.every((d) => d.state === 'sending' && d.attempts === 1), true)
  t.same((await store.claimDue(clock.now, 10)).map((d) => d.idempotencyKey), ['p2-pd', 'p3-slack'])
  t.same(await store.claimDue(clock.now, 10), [], 'nothing left pending')

  // Not yet due rows wait.
  await store.markRetry(claimed[0]!.id, clock.now + 5_000, 'server_error', 'HTTP 503')
  t.same(await store.claimDue(clock.now + 4_999, 10), [])
  t.equal((await store.claimDue(clock.now + 5_000, 10))[0]?.id, claimed[0]!.id)
})

t.test('claimDue honours budgets per destination and exclusions', async (t) => {
  const { store, clock } = setup(t)
  const items: EnqueueItem[] = []
  for (let i = 0; i < 20; i++) items.push(item(`slack-${i}`, { destination: 'slack-alerts', type: 'slack', priority: 'P3' }))
  items.push(item('pd-p3', { priority: 'P3' }), item('pd-p0', { priority: 'P0' }))
  await store.enqueue(items, { receivedAt: clock.now })
  const asked: string[] = []
  const claimed = await store.claimDue(clock.now, 50, {
    budgetFor: (destination, type) => {
      asked.push(`${destination}:${type}`)
      return destination === 'slack-alerts' ? 2 : 0
    }
  })
  t.same(asked.sort(), ['pagerduty:pagerduty', 'slack-alerts:slack'])
  t.same(claimed.map((d) => d.idempotencyKey), ['slack-0', 'slack-1'])
  const next = await store.claimDue(clock.now, 50, { excludeDestinations: ['slack-alerts'] })
  t.same(next.map((d) => d.idempotencyKey), ['pd-p0', 'pd-p3'])
})

t.test('mark transitions, recoverClaims, retryDead', async (t) => {
  const { store, clock } = setup(t)
  await store.enqueue([item('a'), item('b'), item('c'), item('d')], { receivedAt: clock.now })
  const [a, b, c] = await store.claimDue(clock.now, 3)
  await store.markSent(a!.id, clock.now + 5)
  await store.markDead(b!.id, 'client_error', 'HTTP 400: invalid routing key length')
  t.match(await store.get(a!.id), { state: 'sent', sentAt: clock.now + 5 })
  t.match(await store.get(b!.id), { state: 'dead', lastReason: 'client_error', lastError: 'HTTP 400: invalid routing key length' })

  // c is left `sending`, as if the process had been killed mid-send.
  t.equal(await store.recoverClaims(), 1)
  t.match(await store.get(c!.id), { state: 'pending', attempts: 1 })
  t.equal(await store.recoverClaims(), 0)

  t.match(await store.retryDead(b!.id), { outcome: 'retried', delivery: { id: b!.id, state: 'pending', attempts: 0 } })
  t.same(await store.retryDead(a!.id), { outcome: 'not_dead', state: 'sent' })
  t.same(await store.retryDead(999), { outcome: 'not_found' })
  // A stale mark (row no longer sending) changes nothing.
  await store.markSent(b!.id, clock.now)
  t.equal((await store.get(b!.id))?.state, 'pending')
})

t.test('stats: pending per priority, oldest age, dead count; list and pruneSent', async (t) => {
  const { store, clock } = setup(t)
  await store.enqueue([item('p0', { priority: 'P0' })], { receivedAt: clock.now - 30_000 })
  await store.enqueue([item('p3a', { priority: 'P3' }), item('p3b', { priority: 'P3' })], { receivedAt: clock.now - 5_000 })
  await store.enqueue([item('x', { priority: 'P1' })], { receivedAt: clock.now })
  const [p0, x] = await store.claimDue(clock.now, 2)
  t.equal(p0?.idempotencyKey, 'p0')
  await store.markDead(x!.id, 'client_error', 'bad')
  t.same(await store.stats(clock.now), {
    pending: { P0: 1, P1: 0, P2: 0, P3: 2 },
    oldestPendingAgeMs: { P0: 30_000, P1: 0, P2: 0, P3: 5_000 },
    dead: 1
  })
  t.equal(await store.nextDueAt(), clock.now)

  await store.markSent(p0!.id, clock.now)
  clock.now += 1_000
  t.same((await store.list({ state: 'dead', limit: 10 })).map((d) => d.idempotencyKey), ['x'])
  t.equal((await store.list({ limit: 2, offset: 0 })).length, 2)
  t.equal(await store.pruneSent(clock.now - 2_000), 0, 'too recent')
  t.equal(await store.pruneSent(clock.now), 1)
  t.equal(await store.get(p0!.id), null)
})

t.test('data survives reopening the same directory', async (t) => {
  const { store, dir } = setup(t)
  const r = await store.enqueue([item('durable', { priority: 'P0' })], { receivedAt: 1 })
  const reopened = createSqliteStore({ dataDir: dir }, { now: () => 2 })
  t.teardown(() => reopened.close())
  t.match(await reopened.get(r.inserted[0]!.id), { idempotencyKey: 'durable', state: 'pending' })
  t.same((await reopened.enqueue([item('durable')], { receivedAt: 2 })).duplicates, ['durable'], 'keys persist too')
})

t.test('per destination and group: a newer delivery supersedes older pending ones and waits for one in flight', async (t) => {
  const { store, clock, superseded } = setup(t)
  const group = { groupKey: 'flapping' }
  const [trigger1] = (await store.enqueue([item('t1', group)], { receivedAt: clock.now })).inserted
  // Folded in separately from t2 (get folds), then superseded when t2 is folded in.
  t.match(await store.get(trigger1!.id), { state: 'pending' })
  await store.enqueue([item('t2', group), item('other-dest', { ...group, destination: 'slack-alerts', type: 'slack' })], { receivedAt: clock.now })
  t.match(await store.get(trigger1!.id), { state: 'skipped', lastReason: 'superseded' })
  t.same(superseded, [{ id: trigger1!.id, destination: 'pagerduty', type: 'pagerduty' }], 'only the same destination is superseded')

  // t2 goes out; while it is in flight, the resolve must wait for it.
  const claimed = await store.claimDue(clock.now, 10)
  t.same(claimed.map((d) => d.idempotencyKey).sort(), ['other-dest', 't2'])
  const [resolve] = (await store.enqueue([item('resolve', group)], { receivedAt: clock.now })).inserted
  t.same((await store.claimDue(clock.now, 10)).map((d) => d.idempotencyKey), [], 'the resolve waits while t2 is sending')
  // t2 fails retryably: the resolve carries the newer state, so t2 is not retried.
  const t2 = claimed.find((d) => d.idempotencyKey === 't2')!
  t.equal(await store.markRetry(t2.id, clock.now + 1_000, 'server_error', 'HTTP 500'), 'superseded')
  t.match(await store.get(t2.id), { state: 'skipped', lastReason: 'superseded' })
  t.same((await store.claimDue(clock.now, 10)).map((d) => d.id), [resolve!.id], 'now the resolve goes')

  // Without a newer delivery, a retry is a retry.
  const other = claimed.find((d) => d.idempotencyKey === 'other-dest')!
  t.equal(await store.markRetry(other.id, clock.now + 1_000, 'server_error', 'HTTP 500'), 'retry')
  t.match(await store.get(other.id), { state: 'pending', nextAttemptAt: clock.now + 1_000 })
})
