import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BACKSTOP_AUTOCHECKPOINT_PAGES, CHECKPOINT_EVERY_COMMITS } from '../src/outbox/checkpointer.js'
import { DB_FILE_NAME, createSqliteStore } from '../src/outbox/sqlite-store.js'
import type { EnqueueItem } from '../src/outbox/store.js'

// WAL checkpoints run on a worker thread (outbox/checkpointer.ts): pages reach the database
// file long before the writer's own automatic checkpoint (raised to a backstop of
// BACKSTOP_AUTOCHECKPOINT_PAGES) would fire, and closing the store waits for the worker.

const BATCHES = 200
const PAGE_SIZE = 4096 // SQLite's default; the store does not change it
// A WAL holding that many frames (24-byte frame headers, 32-byte file header).
const BACKSTOP_WAL_BYTES = 32 + BACKSTOP_AUTOCHECKPOINT_PAGES * (PAGE_SIZE + 24)

function tempDir (t: { teardown: (fn: () => unknown) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ae-checkpoint-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

function sizeOf (path: string): number {
  try {
    return statSync(path).size
  } catch {
    return 0 // the -wal file may not exist at a given moment
  }
}

function item (i: number): EnqueueItem {
  // ~4 KB of incompressible text: stays under the body codec's compression threshold.
  return {
    destination: 'slack-alerts', type: 'slack', priority: 'P2',
    idempotencyKey: `key-${i}`, groupKey: `group-${i}`,
    body: { i, pad: randomBytes(2000).toString('hex') }
  }
}

t.test('the worker checkpoints into the database file while the store is open; nothing is lost', async (t) => {
  const dir = tempDir(t)
  const dbFile = join(dir, DB_FILE_NAME)
  const checkpointErrors: string[] = []
  let commits = 0
  const store = createSqliteStore({ dataDir: dir }, {
    now: () => 1_000_000,
    // Folds (staging.ts) commit too, on a timer; counted are the enqueues' own commits.
    onCommit: ({ durable }) => { if (durable) commits++ },
    onCheckpointError: (m) => { checkpointErrors.push(m) }
  })
  let open = true
  t.teardown(async () => { if (open) await store.close() })
  const initialDbSize = sizeOf(dbFile)

  let maxWal = 0
  for (let i = 0; i < BATCHES; i++) {
    // One call at a time: each is its own commit (concurrent calls would share one).
    const r = await store.enqueue([item(i)], { receivedAt: 999_000 })
    if (r.inserted.length !== 1) throw new Error(`batch ${i} not inserted: ${JSON.stringify(r)}`)
    maxWal = Math.max(maxWal, sizeOf(`${dbFile}-wal`))
  }
  t.equal(commits, BATCHES, 'one durable commit per batch')
  t.ok(BATCHES / CHECKPOINT_EVERY_COMMITS >= 2, 'enough commits for several background checkpoints')

  // Bounded wait for the worker's (asynchronous) checkpoint to land in the database file.
  let dbSize = sizeOf(dbFile)
  for (let i = 0; i < 100 && dbSize <= initialDbSize; i++) {
    await sleep(50)
    dbSize = sizeOf(dbFile)
  }
  maxWal = Math.max(maxWal, sizeOf(`${dbFile}-wal`))
  t.ok(dbSize > initialDbSize, `database file grew from ${initialDbSize} to ${dbSize} bytes while open`)
  // ~0.8 MB of bodies were written: far from what the writer's own checkpoint waits for.
  t.ok(dbSize >= BATCHES * 4000, `it holds the rows (${dbSize} bytes)`)
  t.ok(maxWal > 0 && maxWal < BACKSTOP_WAL_BYTES, `WAL peaked at ${maxWal} bytes, below the ${BACKSTOP_WAL_BYTES}-byte backstop`)
  t.same(checkpointErrors, [], 'no background checkpoint failed')

  await store.close()
  open = false
  t.pass('close() resolved')

  const reopened = createSqliteStore({ dataDir: dir }, { now: () => 1_000_000 })
  t.teardown(() => reopened.close())
  const listed = await reopened.list({ limit: BATCHES + 10 })
  t.equal(listed.length, BATCHES, 'every delivery is there after reopening')
  t.same(listed.map((d) => d.idempotencyKey).sort(), Array.from({ length: BATCHES }, (_, i) => `key-${i}`).sort())
  const one = listed.find((d) => d.idempotencyKey === 'key-7')
  t.match(one, { state: 'pending', receivedAt: 999_000, body: { i: 7 } })
})

t.test('close() on a freshly created store resolves', async (t) => {
  const dir = tempDir(t)
  const store = createSqliteStore({ dataDir: dir }, { now: () => 0 })
  await store.close()
  t.pass('closed without any commit')
  // And after fewer commits than one checkpoint needs, and once more (a second close is harmless).
  const again = createSqliteStore({ dataDir: dir }, { now: () => 0 })
  await again.enqueue([item(1)], { receivedAt: 0 })
  await again.close()
  await again.close()
  t.pass('closed after a commit, twice')
})

t.test('close() right after a burst waits for a checkpoint in flight', async (t) => {
  const dir = tempDir(t)
  const errors: string[] = []
  const store = createSqliteStore({ dataDir: dir }, { now: () => 0, onCheckpointError: (m) => { errors.push(m) } })
  // Exactly one checkpoint's worth of commits: the last one starts a checkpoint, then close.
  for (let i = 0; i < CHECKPOINT_EVERY_COMMITS; i++) await store.enqueue([item(i)], { receivedAt: 0 })
  await store.close()
  t.same(errors, [])
  const reopened = createSqliteStore({ dataDir: dir }, { now: () => 0 })
  t.teardown(() => reopened.close())
  t.equal((await reopened.list({ limit: 100 })).length, CHECKPOINT_EVERY_COMMITS)
})

t.test('a sustained stream of commits: the WAL starts over at the backstop instead of growing with the stream', async (t) => {
  const dir = tempDir(t)
  const wal = `${join(dir, DB_FILE_NAME)}-wal`
  const store = createSqliteStore({ dataDir: dir, foldDelayMs: 5 }, { now: () => 1_000_000 })
  t.teardown(() => store.close())
  // ~4 KB rows, staged then folded (~10 KB of WAL each): ~3× the backstop in all.
  const COMMITS = Math.ceil(3 * BACKSTOP_WAL_BYTES / 10_000)
  let maxWal = 0
  for (let i = 0; i < COMMITS; i++) {
    await store.enqueue([item(i)], { receivedAt: 999_000 })
    maxWal = Math.max(maxWal, sizeOf(wal))
  }
  const written = (await store.list({ limit: COMMITS + 10 })).length
  t.equal(written, COMMITS, 'every delivery is there')
  t.ok(maxWal < 1.25 * BACKSTOP_WAL_BYTES, `WAL peaked at ${maxWal} bytes for ${COMMITS} commits (backstop ${BACKSTOP_WAL_BYTES})`)
})
