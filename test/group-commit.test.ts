import t from 'tap'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createGroupCommitter } from '../src/outbox/group-commit.js'
import { createSqliteStore, DB_FILE_NAME } from '../src/outbox/sqlite-store.js'
import type { EnqueueItem } from '../src/outbox/store.js'
import { loadSettings } from '../src/config/settings.js'

// Durable batches settle only after syncDurable (the store's off-loop WAL fsync), batches
// committed meanwhile share the next sync, and a failed sync refuses all later work.

function manualSync (): { sync: () => Promise<void>, calls: number, finish: (err?: Error) => void } {
  const pending: Array<{ resolve: () => void, reject: (e: Error) => void }> = []
  const s = {
    calls: 0,
    sync: async () => {
      s.calls++
      await new Promise<void>((resolve, reject) => { pending.push({ resolve, reject }) })
    },
    finish: (err?: Error) => {
      const p = pending.shift()
      if (p === undefined) throw new Error('no sync running')
      if (err === undefined) p.resolve()
      else p.reject(err)
    }
  }
  return s
}

const turn = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

function setup (t: { teardown: (fn: () => unknown) => void }) {
  const db = new Database(':memory:')
  db.exec('CREATE TABLE x (v INTEGER)')
  const sync = manualSync()
  const commits: boolean[] = []
  const committer = createGroupCommitter(db, { durableSynchronous: 'FULL', syncDurable: sync.sync, onCommit: ({ durable }) => commits.push(durable) })
  const insert = (v: number) => () => db.prepare('INSERT INTO x VALUES (?)').run(v).changes
  t.teardown(() => db.close())
  return { db, sync, commits, committer, insert }
}

t.test('a durable batch settles only after its sync; bookkeeping does not wait', async (t) => {
  const { sync, committer, insert, commits } = setup(t)
  let settled = false
  const durable = committer.submit(insert(1), { durable: true }).then((v) => { settled = true; return v })
  await turn()
  t.equal(sync.calls, 1, 'sync started after the commit')
  t.equal(settled, false, 'not answered before the sync')
  t.equal(await committer.submit(insert(2), { durable: false }), 1, 'bookkeeping resolves at commit')
  sync.finish()
  t.equal(await durable, 1)
  t.same(commits, [false, true])
})

t.test('batches committed during a sync share the next one', async (t) => {
  const { sync, committer, insert, db } = setup(t)
  const first = committer.submit(insert(1), { durable: true })
  await turn()
  const second = committer.submit(insert(2), { durable: true })
  await turn()
  const third = committer.submit(insert(3), { durable: true })
  await turn()
  t.equal(sync.calls, 1, 'one sync in flight at a time')
  t.equal(db.prepare('SELECT COUNT(*) FROM x').pluck().get(), 3, 'later batches committed meanwhile')
  sync.finish()
  await first
  await turn()
  t.equal(sync.calls, 2, 'one more sync covers both later batches')
  sync.finish()
  t.same(await Promise.all([second, third]), [1, 1])
})

t.test('a failed sync rejects its callers and every later call', async (t) => {
  const { sync, committer, insert } = setup(t)
  t.equal(committer.unavailable(), null)
  t.equal(committer.fatal(), null)
  const lost = committer.submit(insert(1), { durable: true })
  await turn()
  sync.finish(new Error('EIO'))
  await t.rejects(lost, /could not be synced/)
  await t.rejects(committer.submit(insert(2), { durable: false }), /could not be synced/)
  t.match(committer.unavailable(), /could not be synced to disk; restart required/, 'readiness can say why')
  t.match(committer.fatal(), /restart required/, 'and liveness too: only a restart clears it')
})

t.test('close waits for the running sync', async (t) => {
  const { sync, committer, insert } = setup(t)
  const pending = committer.submit(insert(1), { durable: true })
  await turn()
  let closed = false
  const closing = committer.close().then(() => { closed = true })
  await turn()
  t.equal(closed, false)
  sync.finish()
  await closing
  t.equal(await pending, 1)
})

function item (key: string, over: Partial<EnqueueItem> = {}): EnqueueItem {
  return { destination: 'pagerduty', type: 'pagerduty', priority: 'P2', idempotencyKey: key, groupKey: `g-${key}`, body: { summary: key }, ...over }
}

function fileStore (t: { teardown: (fn: () => unknown) => void }, window = 60_000) {
  const dir = mkdtempSync(join(tmpdir(), 'ae-outbox-'))
  const clock = { now: 1_000_000 }
  const store = createSqliteStore({ dataDir: dir, idempotencyWindowMs: window }, { now: () => clock.now })
  t.teardown(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { store, clock, dir }
}

t.test('file store: enqueue resolves durably (WAL synced) and bodies round-trip', async (t) => {
  const { store, dir } = fileStore(t)
  const big = { alerts: Array.from({ length: 40 }, (_, i) => ({ i, text: `alert ${i} `.repeat(40) })) }
  const shared = { small: true }
  const r = await store.enqueue([item('big', { body: big }), item('a', { body: shared }), item('b', { destination: 'slack', type: 'slack', body: shared })], { receivedAt: 1 })
  t.same(await Promise.all(r.inserted.map(async (d) => (await store.get(d.id))?.body)), [big, shared, shared])
  // Large bodies are stored compressed, small ones as JSON text.
  const raw = new Database(join(dir, DB_FILE_NAME), { readonly: true })
  t.teardown(() => raw.close())
  const stored = raw.prepare('SELECT idempotency_key AS key, typeof(body) AS kind, length(body) AS bytes FROM deliveries ORDER BY id').all() as Array<{ key: string, kind: string, bytes: number }>
  t.match(stored, [{ key: 'big', kind: 'blob' }, { key: 'a', kind: 'text' }, { key: 'b', kind: 'text' }])
  t.ok(stored[0]!.bytes < JSON.stringify(big).length / 4, 'compressed')
})

t.test('idempotency window: kept when rows are pruned, released when a write rolls back', async (t) => {
  const { store, clock } = fileStore(t)
  const [sent] = (await store.enqueue([item('k')], { receivedAt: clock.now })).inserted
  await store.claimDue(clock.now, 1)
  await store.markSent(sent!.id, clock.now)
  t.equal(await store.pruneSent(clock.now + 1), 1, 'row pruned')
  t.same((await store.enqueue([item('k')], { receivedAt: clock.now })).duplicates, ['k'], 'key still within its window')

  // The second item violates NOT NULL: the whole call rolls back, its keys too.
  await t.rejects(store.enqueue([item('retry-me'), item('broken', { destination: null as unknown as string })], { receivedAt: clock.now }))
  t.same((await store.enqueue([item('retry-me')], { receivedAt: clock.now })).duplicates, [], 'retry is inserted')
  clock.now += 60_000
  t.equal((await store.enqueue([item('k')], { receivedAt: clock.now })).inserted.length, 1, 'window over')
})

t.test('OUTBOX_SYNCHRONOUS: FULL by default, NORMAL on request, nothing else', async (t) => {
  t.equal(loadSettings({}).outboxSynchronous, 'FULL')
  t.equal(loadSettings({ OUTBOX_SYNCHRONOUS: 'normal' }).outboxSynchronous, 'NORMAL')
  t.throws(() => loadSettings({ OUTBOX_SYNCHRONOUS: 'OFF' }), /outboxSynchronous/)
})
