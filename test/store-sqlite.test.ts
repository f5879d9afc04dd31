import t, { type Test } from 'tap'
import Database from 'better-sqlite3'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliCompressSync } from 'node:zlib'
import { loadSettings } from '../src/config/settings.js'
import { DataDirInUseError } from '../src/store/sqlite/data-dir-lock.js'
import { migrate, SCHEMA_VERSION } from '../src/store/sqlite/schema.js'
import { createSqliteStore, DB_FILE_NAME, WAL_AUTOCHECKPOINT_PAGES, type SqliteStoreConfig, type SqliteStoreDeps } from '../src/store/sqlite/store.js'
import type { Store, StoreFailure } from '../src/store/types.js'
import { item, storeConformance, type StoreFactory } from './store-conformance.js'

const WINDOW = 60_000

// A temporary data directory; at teardown the stores opened on it are closed, then it is removed.
function scratch (t: Test): { dir: string, track: (store: Store) => Store } {
  const dir = mkdtempSync(join(tmpdir(), 'ae-store-'))
  const stores: Store[] = []
  t.teardown(async () => {
    for (const store of stores) await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { dir, track: (store) => { stores.push(store); return store } }
}

const sqliteOnFileFactory: StoreFactory = async (t, opts) => {
  const { dir, track } = scratch(t)
  const failures: StoreFailure[] = []
  const open = (): Store => track(createSqliteStore({ dataDir: dir, idempotencyWindowMs: opts.idempotencyWindowMs }, { now: opts.now, onFailure: (f) => { failures.push(f) } }))
  let current = open()
  return {
    store: current,
    failures,
    reopen: async () => {
      await current.close()
      current = open()
      return current
    }
  }
}

t.test('conformance: SQLite on a data directory', async (t) => { storeConformance(t, sqliteOnFileFactory) })

// SQLite only from here: group commit, durability, the data-directory lock, migrations.

interface Opened { store: Store, dir: string, clock: { now: number }, commits: Array<{ operations: number, durable: boolean }>, events: string[] }

function openSqlite (t: Test, cfg: Partial<SqliteStoreConfig> = {}, deps: Partial<SqliteStoreDeps> = {}): Opened {
  const { dir, track } = scratch(t)
  const clock = { now: 1_000_000 }
  const commits: Opened['commits'] = []
  const events: string[] = []
  const store = track(createSqliteStore({ dataDir: dir, idempotencyWindowMs: WINDOW, ...cfg }, {
    now: () => clock.now,
    onCommit: (info) => { commits.push(info); events.push(`commit durable=${String(info.durable)}`) },
    ...deps
  }))
  return { store, dir, clock, commits, events }
}

const enqueueOne = async (store: Store, key: string, over: Parameters<typeof item>[1] = {}): ReturnType<Store['enqueue']> =>
  await store.enqueue({ groupKey: `g-${key}`, receivedAt: 1, resolved: false, plan: () => [item(key, over)] })
const claimAll = async (store: Store, now: number): Promise<Awaited<ReturnType<Store['claim']>>> =>
  await store.claim({ now, limit: 100, leaseMs: 30_000, excludeDestinations: [], admit: () => true })

t.test('group commit: concurrent enqueues share one commit and all resolve after it', async (t) => {
  const { store, commits, events } = openSqlite(t)
  const results = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
    const r = await store.enqueue({ groupKey: `g${i}`, receivedAt: 1, resolved: false, plan: () => [item(`k${i}`), item(`k${i}-slack`, { destination: 'slack-alerts', type: 'slack' })] })
    events.push('resolved')
    return r
  }))
  t.same(commits.map((c) => c.operations), [50], 'one commit holding all 50 calls')
  t.same(events, ['commit durable=true', ...Array<string>(50).fill('resolved')], 'every caller answered after the commit')
  t.ok(results.every((r) => r.inserted.length === 2 && r.duplicates.length === 0))
  t.equal((await store.list({ state: 'pending', limit: 1000 })).length, 100)
})

t.test('group commit: a failing operation fails alone, the rest of its batch commits', async (t) => {
  const failures: StoreFailure[] = []
  const { store, commits } = openSqlite(t, {}, { onFailure: (f) => { failures.push(f) } })
  const [good, bad, alsoGood] = await Promise.allSettled([
    enqueueOne(store, 'good'),
    enqueueOne(store, 'bad', { destination: null as unknown as string }),
    enqueueOne(store, 'also-good')
  ])
  t.same(commits.map((c) => c.operations), [3])
  t.equal(good.status, 'fulfilled')
  t.match(bad, { status: 'rejected', reason: /NOT NULL/ })
  t.equal(alsoGood.status, 'fulfilled')
  t.same((await store.list({ limit: 10 })).map((d) => d.idempotencyKey).sort(), ['also-good', 'good'])
  t.match(failures, [{ operation: 'enqueue', error: /NOT NULL/ }])
})

t.test('close commits what is queued, then refuses work', async (t) => {
  const { dir, track } = scratch(t)
  const store = track(createSqliteStore({ dataDir: dir, idempotencyWindowMs: WINDOW }, { now: () => 1 }))
  const queued = enqueueOne(store, 'queued')
  await store.close()
  t.equal((await queued).inserted.length, 1)
  await t.rejects(enqueueOne(store, 'late'), /closed/)
  const reopened = track(createSqliteStore({ dataDir: dir, idempotencyWindowMs: WINDOW }, { now: () => 2 }))
  t.same((await reopened.list({ limit: 10 })).map((d) => d.idempotencyKey), ['queued'], 'it was committed')
})

t.test('checkpoints: the WAL grows past SQLite\'s default 1,000 pages before one runs, and its rows survive a reopen', async (t) => {
  const { dir, track } = scratch(t)
  const store = track(createSqliteStore({ dataDir: dir, idempotencyWindowMs: WINDOW }, { now: () => 1 }))
  const walPages = (): number => statSync(join(dir, `${DB_FILE_NAME}-wal`)).size / 4_120
  // ~2,000 pages: 20 commits of 25 webhooks with a 16 KB body each.
  const body = JSON.stringify({ pad: 'x'.repeat(16_000) })
  for (let batch = 0; batch < 20; batch++) {
    await Promise.all(Array.from({ length: 25 }, async (_, i) => await enqueueOne(store, `k${batch}-${i}`, { body })))
  }
  t.ok(walPages() > 1_500, `no checkpoint at 1,000 pages (WAL: ${Math.round(walPages())} pages)`)
  t.ok(walPages() < WAL_AUTOCHECKPOINT_PAGES, 'nor at the threshold yet')
  await store.close()
  const reopened = track(createSqliteStore({ dataDir: dir, idempotencyWindowMs: WINDOW }, { now: () => 2 }))
  t.equal((await reopened.list({ state: 'pending', limit: 1_000 })).length, 500)
})

// A WAL sync the test releases by hand.
function manualSync (): { syncWal: () => Promise<void>, calls: number, release: (err?: Error) => void } {
  const waiting: Array<{ resolve: () => void, reject: (e: Error) => void }> = []
  const m = {
    calls: 0,
    syncWal: async () => {
      m.calls++
      await new Promise<void>((resolve, reject) => { waiting.push({ resolve, reject }) })
    },
    release: (err?: Error) => {
      for (const w of waiting.splice(0)) {
        if (err === undefined) w.resolve()
        else w.reject(err)
      }
    }
  }
  return m
}
const turn = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

t.test('durability: an enqueue is claimable once committed but resolves only after the WAL sync', async (t) => {
  const sync = manualSync()
  const { store, clock, events } = openSqlite(t, {}, { syncWal: sync.syncWal })
  let resolved = false
  const enqueued = store.enqueue({ groupKey: 'g', receivedAt: 1, resolved: false, plan: () => [item('a')], onCommitted: () => { events.push('committed') } })
    .then((r) => { resolved = true; return r })
  await turn()
  await turn()
  t.same(events, ['commit durable=true', 'committed'])
  t.equal(sync.calls, 1, 'the WAL sync started')
  t.equal(resolved, false, 'not resolved before the sync completes')
  t.equal((await claimAll(store, clock.now)).length, 1, 'already claimable: the page can go out while its row is synced')
  t.equal(resolved, false, 'a claim (bookkeeping) does not wait for the sync')
  sync.release()
  t.equal((await enqueued).inserted.length, 1)
  t.equal(resolved, true)
})

t.test('durability: replays wait for the sync too; bookkeeping never does', async (t) => {
  const sync = manualSync()
  const { store, clock } = openSqlite(t, {}, { syncWal: sync.syncWal })
  const first = enqueueOne(store, 'a')
  await turn()
  sync.release()
  const r = await first
  const [d] = await claimAll(store, clock.now)
  await store.markDead(d!, 'client_error', 'HTTP 400')
  await store.housekeeping(clock.now, 0)
  t.equal(sync.calls, 1, 'claim, mark and housekeeping did not sync')
  const replay = store.retryDead(r.inserted[0]!.id, clock.now)
  await turn()
  await turn()
  t.equal(sync.calls, 2, 'the replay waits for a sync')
  sync.release()
  t.match(await replay, { outcome: 'retried' })
})

t.test('durability: batches committed during a sync share the next one', async (t) => {
  const sync = manualSync()
  const { store } = openSqlite(t, {}, { syncWal: sync.syncWal })
  const a = enqueueOne(store, 'a')
  await turn()
  const b = enqueueOne(store, 'b')
  await turn()
  const c = enqueueOne(store, 'c')
  await turn()
  t.equal(sync.calls, 1, 'b and c committed while the first sync runs')
  sync.release()
  await a
  await turn()
  t.equal(sync.calls, 2, 'one sync for both')
  sync.release()
  await Promise.all([b, c])
})

t.test('durability: a failed sync rejects its callers and every later write; fatal says why', async (t) => {
  const sync = manualSync()
  const failures: string[] = []
  const { store } = openSqlite(t, {}, { syncWal: sync.syncWal, onFailure: (f) => { failures.push(f.operation) } })
  const a = enqueueOne(store, 'a')
  await turn()
  sync.release(new Error('EIO'))
  await t.rejects(a, /could not be synced to disk \(EIO\); restart required/)
  await t.rejects(enqueueOne(store, 'b'), /restart required/)
  await t.rejects(claimAll(store, 1), /restart required/)
  t.match(store.fatal(), /restart required/)
  t.match(store.unavailable(), /restart required/)
  t.same(failures, ['enqueue', 'enqueue', 'claim'])
})

t.test('durability: synchronous NORMAL on request never syncs; the default syncs the WAL file for real', async (t) => {
  const sync = manualSync()
  const normal = openSqlite(t, { synchronous: 'NORMAL' }, { syncWal: sync.syncWal })
  await enqueueOne(normal.store, 'a')
  t.equal(sync.calls, 0)
  const real = openSqlite(t)
  t.equal((await enqueueOne(real.store, 'a')).inserted.length, 1, 'fdatasync of the real WAL file succeeds')
  t.equal(real.store.fatal(), null)
})

t.test('OUTBOX_SYNCHRONOUS: FULL by default, NORMAL on request, nothing else', async (t) => {
  t.equal(loadSettings({}).outboxSynchronous, 'FULL')
  t.equal(loadSettings({ OUTBOX_SYNCHRONOUS: 'normal' }).outboxSynchronous, 'NORMAL')
  t.throws(() => loadSettings({ OUTBOX_SYNCHRONOUS: 'OFF' }), /outboxSynchronous/)
})

t.test('releaseClaims returns every claim to pending (at start, nothing can still be sending)', async (t) => {
  const { store, clock } = openSqlite(t)
  await enqueueOne(store, 'a')
  await enqueueOne(store, 'b')
  const [a, b] = await claimAll(store, clock.now)
  await store.markSent(a!, clock.now)
  clock.now += 5
  t.equal(await store.releaseClaims(), 1)
  t.match(await store.get(b!.id), { state: 'pending', attempts: 1, claimedUntil: null, updatedAt: clock.now })
  t.match(await store.get(a!.id), { state: 'sent' })
  t.equal(await store.releaseClaims(), 0)
  t.match(await claimAll(store, clock.now), [{ id: b!.id, attempts: 2 }], 'claimable again at once')
})

t.test('data-directory lock: one store per directory', async (t) => {
  const { dir, track } = scratch(t)
  const store = track(createSqliteStore({ dataDir: dir, idempotencyWindowMs: WINDOW }, { now: () => 1 }))
  const second = (): Store => track(createSqliteStore({ dataDir: dir, idempotencyWindowMs: WINDOW }, { now: () => 1 }))
  const refusal = t.throws(second)
  t.ok(refusal instanceof DataDirInUseError, 'a DataDirInUseError')
  t.match(refusal, { message: `data directory ${dir} is in use by another alert-enricher (pid ${process.pid}); refusing to start` })
  t.equal((await enqueueOne(store, 'still-mine')).inserted.length, 1, 'the holder is unaffected')
  await store.close()
  const next = second()
  t.same((await next.list({ limit: 10 })).map((d) => d.idempotencyKey), ['still-mine'])
})

// The previous build's layout: `deliveries` without claimed_until, its own indexes, new rows
// staged in `staged_deliveries`, bodies above 8 KiB stored brotli-compressed, user_version 0.
const V1_COLUMNS = `id INTEGER PRIMARY KEY, destination TEXT NOT NULL, type TEXT NOT NULL, priority INTEGER NOT NULL,
  idempotency_key TEXT NOT NULL, group_key TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, received_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_error TEXT, last_reason TEXT, sent_at INTEGER`

function writePreviousBuild (dir: string, rows: { compressed: unknown, staged: unknown }): void {
  const db = new Database(join(dir, DB_FILE_NAME))
  db.pragma('journal_mode = WAL')
  db.exec(`CREATE TABLE deliveries (${V1_COLUMNS});
    CREATE TABLE staged_deliveries (${V1_COLUMNS});
    CREATE INDEX deliveries_due ON deliveries (state, destination, priority, next_attempt_at);
    CREATE INDEX deliveries_state_updated ON deliveries (state, updated_at);
    CREATE INDEX deliveries_age ON deliveries (state, priority, received_at);
    CREATE INDEX deliveries_created ON deliveries (created_at);
    CREATE INDEX deliveries_active_group ON deliveries (destination, group_key, id) WHERE state IN ('pending', 'sending');`)
  const insert = (table: string, id: number, key: string, body: string | Buffer): void => {
    db.prepare(`INSERT INTO ${table} (id, destination, type, priority, idempotency_key, group_key, body, state, attempts,
        next_attempt_at, received_at, created_at, updated_at) VALUES (?, 'pagerduty', 'pagerduty', 0, ?, ?, ?, 'pending', 0, 500, 400, 500, 500)`)
      .run(id, key, `g-${key}`, body)
  }
  insert('deliveries', 1, 'compressed', brotliCompressSync(JSON.stringify(rows.compressed)))
  insert('staged_deliveries', 2, 'staged', JSON.stringify(rows.staged))
  db.close()
}

t.test('migration: a data directory of the previous build opens with its rows pending and readable', async (t) => {
  const { dir, track } = scratch(t)
  const compressed = { alerts: Array.from({ length: 40 }, (_, i) => ({ i, text: `alert ${i} `.repeat(40) })) }
  const staged = { summary: 'staged before the upgrade' }
  writePreviousBuild(dir, { compressed, staged })
  const store = track(createSqliteStore({ dataDir: dir, idempotencyWindowMs: WINDOW }, { now: () => 1_000 }))
  t.match(await store.get(1), { idempotencyKey: 'compressed', state: 'pending', claimedUntil: null, body: compressed })
  t.match(await store.get(2), { idempotencyKey: 'staged', state: 'pending', claimedUntil: null, body: staged })
  const claimed = await claimAll(store, 1_000)
  t.same(claimed.map((d) => d.id).sort(), [1, 2], 'both claimable')
  t.same(claimed.find((d) => d.id === 1)?.body, compressed)
  t.equal((await enqueueOne(store, 'new')).inserted[0]?.id, 3, 'ids continue after both tables')
  await store.close()
  const raw = new Database(join(dir, DB_FILE_NAME), { readonly: true })
  t.teardown(() => { raw.close() })
  t.equal(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION)
  t.equal(raw.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'staged_deliveries'").pluck().get(), 0, 'staging table gone')
  t.equal(raw.prepare("SELECT COUNT(*) FROM deliveries WHERE typeof(body) = 'blob'").pluck().get(), 0, 'bodies stored as text')
})

t.test('migration 5 → 6: rows in every state keep their place in claims, listings, gauges and housekeeping', async (t) => {
  const { dir, track } = scratch(t)
  const db = new Database(join(dir, DB_FILE_NAME))
  db.pragma('journal_mode = WAL')
  migrate(db, 5)
  const insert = db.prepare(`INSERT INTO deliveries (id, destination, type, priority, idempotency_key, group_key, body, state,
      attempts, next_attempt_at, received_at, created_at, updated_at, claimed_until)
    VALUES (?, 'pagerduty', 'pagerduty', ?, ?, ?, '{}', ?, ?, ?, ?, 100, ?, ?)`)
  // id, priority, state, next attempt, received, updated, claimed until
  const rows: Array<[number, number, string, number, number, number, number | null]> = [
    [1, 0, 'pending', 500, 300, 300, null],
    [2, 2, 'pending', 200, 250, 250, null],
    [3, 0, 'sending', 400, 200, 400, 900],
    [4, 1, 'sent', 100, 100, 600, null],
    [5, 1, 'sent', 100, 100, 5_000, null],
    [6, 3, 'dead', 100, 100, 700, null],
    [7, 3, 'skipped', 100, 100, 650, null]
  ]
  for (const [id, priority, state, next, received, updated, until] of rows) {
    insert.run(id, priority, `k${id}`, `g${id}`, state, state === 'pending' ? 0 : 1, next, received, updated, until)
  }
  db.close()
  const store = track(createSqliteStore({ dataDir: dir, idempotencyWindowMs: WINDOW }, { now: () => 1_000 }))
  const ids = (ds: Array<{ id: number }>): number[] => ds.map((d) => d.id)
  t.same(ids(await store.list({ state: 'sent', limit: 10 })), [5, 4], 'listing by state, newest first')
  t.same(ids(await store.list({ state: 'pending', limit: 10 })), [1, 2])
  t.same(ids(await store.list({ state: 'pending', limit: 1, offset: 1 })), [2])
  t.same(ids(await store.list({ state: 'dead', limit: 10 })), [6])
  t.same(ids(await store.list({ state: 'skipped', limit: 10 })), [7])
  t.same(ids(await store.list({ state: 'sending', limit: 10 })), [3])
  t.same(ids(await store.list({ limit: 10 })), [5, 6, 7, 4, 3, 1, 2])
  t.strictSame(await store.stats(1_000), {
    pending: { P0: 2, P1: 0, P2: 1, P3: 0 },
    oldestPendingAgeMs: { P0: 800, P1: 0, P2: 750, P3: 0 },
    dead: 1
  })
  t.same(ids(await claimAll(store, 1_000)), [3, 1, 2], 'the lapsed claim returns; priority, then due time')
  t.same(await store.housekeeping(1_000, 4_000), { deliveries: 2, keys: 0 }, 'old sent and skipped rows pruned, dead kept')
  t.same(ids(await store.list({ limit: 10 })).sort(), [1, 2, 3, 5, 6])
  await store.close()
  const raw = new Database(join(dir, DB_FILE_NAME), { readonly: true })
  t.teardown(() => { raw.close() })
  t.equal(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION)
  t.same(raw.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' ORDER BY name").pluck().all(),
    ['deliveries_active', 'deliveries_deferred', 'deliveries_group', 'deliveries_settled'])
})

// Every statement the store prepares on deliveries, planned against the migrated schema: each
// reads through an index (the partial ones only when the query repeats their WHERE term),
// except the unfiltered admin listing and the one-off version-2 upgrade.
t.test('query plans: every deliveries statement searches an index', async (t) => {
  const { dir } = scratch(t)
  const prepared: string[] = []
  const prepare = Database.prototype.prepare
  Database.prototype.prepare = function (this: Database.Database, sql: string) {
    prepared.push(sql)
    return prepare.call(this, sql)
  } as typeof prepare
  try {
    await createSqliteStore({ dataDir: dir, idempotencyWindowMs: WINDOW }, { now: () => 1 }).close()
  } finally {
    Database.prototype.prepare = prepare
  }
  const raw = new Database(join(dir, DB_FILE_NAME), { readonly: true })
  t.teardown(() => { raw.close() })
  const plans = new Map<string, string>()
  for (const sql of prepared) {
    if (!/\bdeliveries\b/.test(sql)) continue
    const names = [...new Set([...sql.matchAll(/@(\w+)/g)].map((m) => m[1] as string))]
    const args = names.length > 0 ? [Object.fromEntries(names.map((n) => [n, n === 'excluded' ? '[]' : 1]))] : Array<number>((sql.match(/\?/g) ?? []).length).fill(1)
    plans.set(sql.replace(/\s+/g, ' '), (raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail).join(' | '))
  }
  const scans = [...plans].filter(([, plan]) => /SCAN (deliveries|d|o)\b/.test(plan)).map(([sql]) => sql)
  t.same(scans.filter((sql) => !/typeof\(body\)|GROUP BY idempotency_key/.test(sql)), ['SELECT * FROM deliveries ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?'])
  const planOf = (fragment: string): string => [...plans].find(([sql]) => sql.includes(fragment))?.[1] ?? `no statement with ${fragment}`
  t.match(planOf("WHERE state = 'pending' AND next_attempt_at <= @now"), /USING INDEX deliveries_active \(state=\?\)/, 'claims: the active rows in claim order')
  t.notMatch(planOf("WHERE state = 'pending' AND next_attempt_at <= @now"), /TEMP B-TREE/, 'no sort')
  t.match(planOf('COUNT(*) AS n, MIN(received_at)'), /COVERING INDEX deliveries_active \(state=\? AND priority=\?\)/, 'gauges')
  t.match(planOf("WHERE state = 'sending' AND claimed_until"), /deliveries_active/, 'lapsed claims')
  t.match(planOf("SELECT COUNT(*) FROM deliveries WHERE state = 'dead'"), /COVERING INDEX deliveries_settled/, 'dead gauge')
  t.match(planOf("(state = 'sent' OR state = 'skipped') AND updated_at <"), /COVERING INDEX deliveries_settled \(state=\? AND updated_at<\?\)/, 'housekeeping')
  t.match(planOf("WHERE state = 'sent' ORDER BY updated_at DESC"), /INDEX deliveries_settled \(state=\?\)$/, 'listing a settled state: in index order')
  t.match(planOf("state = 'sent' AND updated_at >= @from"), /deliveries_settled \(state=\? AND updated_at>\?\)/, 'an incident\'s notifications')
  t.match(planOf("SELECT id, destination, type, priority FROM deliveries INDEXED BY deliveries_deferred"), /deliveries_deferred \(group_key=\?\)/, 'a group\'s held rows')
})

t.test('migration: a data directory written by a newer build is refused, untouched', async (t) => {
  const { dir } = scratch(t)
  const db = new Database(join(dir, DB_FILE_NAME))
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
  db.close()
  t.throws(() => createSqliteStore({ dataDir: dir, idempotencyWindowMs: WINDOW }, { now: () => 1 }),
    new RegExp(`written by a newer alert-enricher \\(schema ${SCHEMA_VERSION + 1}, this build knows ${SCHEMA_VERSION}\\); refusing to start`))
  const raw = new Database(join(dir, DB_FILE_NAME), { readonly: true })
  t.teardown(() => { raw.close() })
  t.equal(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1)
  t.equal(raw.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").pluck().get(), 0, 'no table created')
  t.ok(existsSync(dir))
})
