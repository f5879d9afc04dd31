import t from 'tap'
import fc from 'fast-check'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DB_FILE_NAME, createSqliteStore, type SqliteStoreConfig } from '../src/outbox/sqlite-store.js'
import type { EnqueueItem, SupersededDelivery } from '../src/outbox/store.js'

// Enqueued deliveries are staged in an unindexed table by the durable commit and folded into
// `deliveries` later, in batches (outbox/staging.ts). What must hold: nothing is lost or
// doubled between the two tables, reads see staged rows, a fold announces new work once, a
// crash leaves rows staged that the next start folds in, and superseding still happens.

function item (key: string, over: Partial<EnqueueItem> = {}): EnqueueItem {
  return { destination: 'pagerduty', type: 'pagerduty', priority: 'P1', idempotencyKey: key, groupKey: `g-${key}`, body: { summary: key }, ...over }
}

function open (t: { teardown: (fn: () => unknown) => void }, cfg: Partial<SqliteStoreConfig> = {}, dir = mkdtempSync(join(tmpdir(), 'ae-staging-'))) {
  const events = { claimable: 0, superseded: [] as SupersededDelivery[] }
  const store = createSqliteStore({ dataDir: dir, foldDelayMs: 3_600_000, ...cfg }, {
    now: () => 1_000_000,
    onClaimable: () => { events.claimable++ },
    onSuperseded: (d) => { events.superseded.push(...d) }
  })
  t.teardown(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { store, dir, events }
}

// Row counts as another connection sees them (what is committed).
function counts (dir: string): { staged: number, indexed: number } {
  const db = new Database(join(dir, DB_FILE_NAME), { readonly: true })
  try {
    const count = (table: string): number => db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number
    return { staged: count('staged_deliveries'), indexed: count('deliveries') }
  } finally {
    db.close()
  }
}

t.test('a burst is staged by its durable commit, then folded in once and announced once', async (t) => {
  const { store, dir, events } = open(t, { foldDelayMs: 50 })
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.enqueue([item(`k${i}`), item(`k${i}-s`, { destination: 'slack', type: 'slack' })], { receivedAt: 999_000 })))
  t.equal(results.flatMap((r) => r.inserted).length, 40)
  t.same(counts(dir), { staged: 40, indexed: 0 }, 'answered for once staged: durable, not yet indexed')
  for (let i = 0; i < 100 && events.claimable === 0; i++) await sleep(20)
  t.equal(events.claimable, 1, 'one fold for the whole burst, announced once')
  t.same(counts(dir), { staged: 0, indexed: 40 })
  const claimed = await store.claimDue(1_000_000, 100)
  t.same(claimed.map((d) => d.id).sort((a, b) => a - b), results.flatMap((r) => r.inserted.map((d) => d.id)).sort((a, b) => a - b), 'every delivery claimable exactly once, ids kept')
  await sleep(100)
  t.equal(events.claimable, 1, 'no fold without new work')
})

t.test('reads and claims fold first, so they show what /webhook answered for', async (t) => {
  const { store, dir, events } = open(t)
  const r = await store.enqueue([item('a', { priority: 'P0' }), item('b', { destination: 'unset-secret', skip: true })], { receivedAt: 999_000 })
  t.same(counts(dir), { staged: 2, indexed: 0 })
  t.match(await store.get(r.inserted[0]!.id), { idempotencyKey: 'a', state: 'pending', priority: 'P0', receivedAt: 999_000 })
  await store.enqueue([item('c', { priority: 'P0' })], { receivedAt: 999_500 })
  t.match(await store.stats(1_000_000), { pending: { P0: 2 }, oldestPendingAgeMs: { P0: 1_000 } })
  await store.enqueue([item('d', { priority: 'P3' })], { receivedAt: 999_500 })
  t.same((await store.list({ state: 'skipped', limit: 10 })).map((d) => d.idempotencyKey), ['b'])
  await store.enqueue([item('e', { priority: 'P0' })], { receivedAt: 999_500 })
  t.same((await store.claimDue(1_000_000, 10)).map((d) => d.idempotencyKey), ['a', 'c', 'e', 'd'], 'highest priority first, staged ones included')
  t.same(counts(dir), { staged: 0, indexed: 5 })
  t.equal(events.claimable, 3, 'the folds of get, stats and list announced new work; the claim\'s own did not')
})

t.test('one fold supersedes older pending deliveries of the group, staged with it or not', async (t) => {
  const { store, events } = open(t)
  const group = { groupKey: 'flapping' }
  const [first] = (await store.enqueue([item('t1', group)], { receivedAt: 1 })).inserted
  await store.get(first!.id) // folded in alone
  const [second] = (await store.enqueue([item('t2', group)], { receivedAt: 2 })).inserted
  const [third] = (await store.enqueue([item('t3', group), item('other', { ...group, destination: 'slack', type: 'slack' })], { receivedAt: 3 })).inserted
  t.match(await store.get(third!.id), { state: 'pending' })
  for (const older of [first!, second!]) t.match(await store.get(older.id), { state: 'skipped', lastReason: 'superseded', lastError: `superseded by delivery ${third!.id}` })
  t.same(events.superseded.map((d) => d.id).sort((a, b) => a - b), [first!.id, second!.id])
  t.same((await store.claimDue(1_000_000, 10)).map((d) => d.idempotencyKey).sort(), ['other', 't3'])
})

t.test('rows a crashed process left staged are folded in at start; their keys stay taken', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-staging-'))
  const first = createSqliteStore({ dataDir: dir }, { now: () => 1_000_000 })
  const [kept] = (await first.enqueue([item('before')], { receivedAt: 1 })).inserted
  await first.close()
  // What a SIGKILL between a durable commit and its fold leaves: a row staged, nothing else.
  const raw = new Database(join(dir, DB_FILE_NAME))
  raw.prepare(`INSERT INTO staged_deliveries (id, destination, type, priority, idempotency_key, group_key, body, state,
    attempts, next_attempt_at, received_at, created_at, updated_at) VALUES (5000, 'pagerduty', 'pagerduty', 0, 'left-behind', 'g', '{}', 'pending',
    0, 999000, 999000, 999000, 999000)`).run()
  raw.close()

  const { store } = open(t, {}, dir)
  t.same(counts(dir), { staged: 0, indexed: 2 }, 'folded at start')
  t.match(await store.get(5000), { idempotencyKey: 'left-behind', state: 'pending', priority: 'P0' })
  t.match(await store.get(kept!.id), { idempotencyKey: 'before' })
  const again = await store.enqueue([item('left-behind'), item('after')], { receivedAt: 1_000_000 })
  t.same(again.duplicates, ['left-behind'], 'the idempotency window includes what was staged')
  t.ok(again.inserted[0]!.id > 5000, 'ids keep growing past every row of both tables')
})

t.test('close folds what is staged', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-staging-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const store = createSqliteStore({ dataDir: dir, foldDelayMs: 3_600_000 }, { now: () => 1_000_000 })
  await store.enqueue([item('x'), item('y')], { receivedAt: 1 })
  t.same(counts(dir), { staged: 2, indexed: 0 })
  await store.close()
  t.same(counts(dir), { staged: 0, indexed: 2 })
})

t.test('a fold that cannot commit: claims and reads answer from the indexed table; the staged rows wait', async (t) => {
  const { store, dir } = open(t)
  const [indexed] = (await store.enqueue([item('indexed', { priority: 'P0' })], { receivedAt: 1 })).inserted
  await store.get(indexed!.id) // folded in
  // Every insert into `deliveries` now fails, as a full disk would fail the fold.
  const raw = new Database(join(dir, DB_FILE_NAME))
  t.teardown(() => { raw.close() })
  raw.exec(`CREATE TABLE fail_fold (x);
    INSERT INTO fail_fold VALUES (1);
    CREATE TRIGGER fail_fold BEFORE INSERT ON deliveries WHEN EXISTS (SELECT 1 FROM fail_fold)
      BEGIN SELECT RAISE(ABORT, 'injected fold failure'); END;`)
  const [waiting] = (await store.enqueue([item('waiting', { priority: 'P0' })], { receivedAt: 2 })).inserted
  t.equal(await store.get(waiting!.id), null, 'not indexed yet')
  t.same((await store.claimDue(1_000_000, 10)).map((d) => d.idempotencyKey), ['indexed'], 'the claim still hands out what is indexed')
  t.same(counts(dir), { staged: 1, indexed: 1 }, 'the staged row is still there, once')
  raw.exec('DELETE FROM fail_fold')
  t.match(await store.get(waiting!.id), { idempotencyKey: 'waiting', state: 'pending' }, 'folded once it can be')
  t.same((await store.claimDue(1_000_000, 10)).map((d) => d.idempotencyKey), ['waiting'])
})

// Any interleaving of enqueues, folds (by reads), claims and outcomes: every delivery answered
// for is stored exactly once, and after a fold a destination and group has at most one
// pending delivery, the newest of those not yet settled (Alertmanager sends the whole state).
t.test('property: nothing lost or doubled; after a fold at most one pending per destination and group', async (t) => {
  type Op =
    | { kind: 'enqueue', group: number, dest: number, p0: boolean }
    | { kind: 'read' } | { kind: 'claim', n: number } | { kind: 'outcome', ok: boolean }
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('enqueue' as const), group: fc.integer({ min: 0, max: 3 }), dest: fc.integer({ min: 0, max: 1 }), p0: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('read' as const) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('claim' as const), n: fc.integer({ min: 1, max: 4 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('outcome' as const), ok: fc.boolean() }) }
  )
  let runs = 0
  await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
    runs++
    const dir = mkdtempSync(join(tmpdir(), 'ae-staging-prop-'))
    const store = createSqliteStore({ dataDir: dir, foldDelayMs: 3_600_000 }, { now: () => 1_000_000 })
    try {
      const answered: number[] = []
      const inFlight: number[] = []
      let key = 0
      for (const o of ops) {
        if (o.kind === 'enqueue') {
          const destination = ['pagerduty', 'slack'][o.dest]!
          const r = await store.enqueue([item(`k${key++}`, { destination, type: destination === 'slack' ? 'slack' : 'pagerduty', groupKey: `g${o.group}`, priority: o.p0 ? 'P0' : 'P2' })], { receivedAt: 1 })
          answered.push(...r.inserted.map((d) => d.id))
        } else if (o.kind === 'read') {
          await store.list({ limit: 1 })
        } else if (o.kind === 'claim') {
          inFlight.push(...(await store.claimDue(1_000_000, o.n)).map((d) => d.id))
        } else if (inFlight.length > 0) {
          const id = inFlight.shift()!
          if (o.ok) await store.markSent(id, 1_000_000)
          else await store.markRetry(id, 1_000_000, 'server_error', 'HTTP 500')
        }
      }
      const all = await store.list({ limit: 10_000 }) // folds first
      const ids = all.map((d) => d.id)
      if (new Set(ids).size !== ids.length) return false
      if (ids.length !== answered.length || !answered.every((id) => ids.includes(id))) return false
      const byGroup = new Map<string, typeof all>()
      for (const d of all) byGroup.set(`${d.destination} ${d.groupKey}`, [...(byGroup.get(`${d.destination} ${d.groupKey}`) ?? []), d])
      for (const group of byGroup.values()) {
        const pending = group.filter((d) => d.state === 'pending')
        if (pending.length > 1) return false
        const unsettled = group.filter((d) => d.state === 'pending' || d.state === 'sending')
        if (pending.length === 1 && pending[0]!.id !== Math.max(...unsettled.map((d) => d.id))) return false
      }
      return true
    } finally {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }), { numRuns: 60 })
  t.equal(runs >= 60, true, `${runs} interleavings checked`)
})
