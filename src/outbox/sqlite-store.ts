import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { PRIORITIES } from '../config/catalog-schema.js'
import type { DestinationType } from '../enrich/types.js'
import type { FailureReason } from '../notify/result.js'
import { decodeBody, encodeBody } from './body-codec.js'
import { BACKSTOP_AUTOCHECKPOINT_PAGES, createCheckpointer } from './checkpointer.js'
import { createGroupCommitter } from './group-commit.js'
import { createRecentKeys } from './recent-keys.js'
import { createStaging, DELIVERY_COLUMNS, STAGING_SCHEMA, type FoldResult } from './staging.js'
import {
  priorityFromRank, priorityRank,
  type ClaimOptions, type Delivery, type DeliveryState, type EnqueueItem, type EnqueueResult,
  type OutboxStats, type RetryDeadResult, type Store, type SupersededDelivery
} from './store.js'
import { createWalSync } from './wal-sync.js'

export interface SqliteStoreConfig {
  // Directory holding outbox.sqlite (created if missing), or ':memory:' for tests.
  dataDir: string
  // An idempotency key seen within this window is not enqueued again. Longer than
  // Alertmanager's retries/HA peer delays (seconds to minutes), shorter than a typical
  // repeat_interval (≥ 1 h) so reminders still go out.
  idempotencyWindowMs?: number
  // What commits holding enqueues (what /webhook answers 2xx for) survive before they
  // resolve. FULL (default): power loss / OS crash; the WAL is fsynced first, off the event
  // loop (wal-sync.ts), one fsync per wave of batches. NORMAL: process crash (SIGKILL)
  // only: the rows are in the OS page cache, not yet on disk. Both keep the architecture's
  // "a killed process loses nothing it answered 2xx for". Bookkeeping commits (claims, marks)
  // are never synced before resolving: see group-commit.ts. (env OUTBOX_SYNCHRONOUS)
  synchronous?: 'FULL' | 'NORMAL'
  // How long enqueued deliveries stay staged before they are folded into the indexed table
  // and become claimable (see staging.ts). Longer folds bigger batches: cheaper per webhook
  // in a storm, later by as much for the first send. Reads fold at once whatever this is.
  foldDelayMs?: number
}

export interface SqliteStoreDeps {
  now: () => number
  // Observes each group commit (tests count transactions with it).
  onCommit?: (info: { operations: number, durable: boolean }) => void
  // A background WAL checkpoint failed (the writer's own checkpoint then takes over).
  onCheckpointError?: (message: string) => void
  // Older pending deliveries skipped because a newer one of their destination and group was
  // folded in (it carries the whole group state).
  onSuperseded?: (deliveries: readonly SupersededDelivery[]) => void
  // A fold made pending deliveries claimable: time to dispatch. Not called for the fold a
  // claim does itself.
  onClaimable?: () => void
}

// Enqueues and operator replays must survive what the caller was told; claims and outcome
// marks only risk a re-send if lost (see group-commit.ts).
const DURABLE = { durable: true }
const BOOKKEEPING = { durable: false }

export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 10 * 60_000
// Adds at most this to a page's first send; at 2,000 webhooks/s it folds ~40 at a time.
export const DEFAULT_FOLD_DELAY_MS = 20
export const DB_FILE_NAME = 'outbox.sqlite'
const WAL_SIZE_LIMIT_BYTES = 8 * 1024 * 1024

interface Row {
  id: number, destination: string, type: DestinationType, priority: number, idempotency_key: string,
  group_key: string, body: string | Buffer, state: DeliveryState, attempts: number, next_attempt_at: number,
  received_at: number, created_at: number, updated_at: number, last_error: string | null,
  last_reason: FailureReason | null, sent_at: number | null
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS deliveries (${DELIVERY_COLUMNS});
${STAGING_SCHEMA}
-- Claiming: per destination (its rate limit), per priority, due first.
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, destination, priority, next_attempt_at);
-- Admin listing (most recent first) and housekeeping of old sent rows.
CREATE INDEX IF NOT EXISTS deliveries_state_updated ON deliveries (state, updated_at);
-- Gauges: pending count and oldest age per priority, read from the index alone.
CREATE INDEX IF NOT EXISTS deliveries_age ON deliveries (state, priority, received_at);
-- Reloading the idempotency window at start (see recent-keys.ts). created_at only grows, so
-- inserts append to this index; an index on the random idempotency key itself dirtied one
-- page per insert and was the costliest part of /webhook's commit.
CREATE INDEX IF NOT EXISTS deliveries_created ON deliveries (created_at);
-- Order within one group and destination (see dueBatch). Partial: only rows not yet settled,
-- so it stays as small as the backlog however long the history.
CREATE INDEX IF NOT EXISTS deliveries_active_group ON deliveries (destination, group_key, id)
  WHERE state IN ('pending', 'sending');
-- Superseded by the idempotency_key column of deliveries (every key there was also here).
DROP TABLE IF EXISTS idempotency_keys;
`

export function createSqliteStore (cfg: SqliteStoreConfig, deps: SqliteStoreDeps): Store {
  const windowMs = cfg.idempotencyWindowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS
  let file = ':memory:'
  if (cfg.dataDir !== ':memory:') {
    mkdirSync(cfg.dataDir, { recursive: true })
    file = join(cfg.dataDir, DB_FILE_NAME)
  }
  const db = new Database(file)
  const walMode = db.pragma('journal_mode = WAL', { simple: true }) === 'wal'
  db.pragma('busy_timeout = 5000')
  db.pragma('foreign_keys = ON')
  db.exec(SCHEMA)

  const q = {
    recentKeys: db.prepare('SELECT idempotency_key, created_at FROM deliveries WHERE created_at > ? ORDER BY created_at').raw(),
    // Loose index scan: one seek per distinct destination instead of reading every pending row.
    pendingDestinations: db.prepare(`WITH RECURSIVE d(dest) AS (
        SELECT (SELECT MIN(destination) FROM deliveries WHERE state = 'pending')
        UNION ALL
        SELECT (SELECT MIN(destination) FROM deliveries WHERE state = 'pending' AND destination > d.dest)
        FROM d WHERE d.dest IS NOT NULL)
      SELECT dest FROM d WHERE dest IS NOT NULL`).pluck(),
    dueForDestination: db.prepare(`SELECT type FROM deliveries
      WHERE state = 'pending' AND destination = ? AND priority = ? AND next_attempt_at <= ? LIMIT 1`).pluck(),
    // Per destination and group, deliveries go out in order: a newer one waits while an older
    // one is in flight (a retried trigger must never land after the resolve that followed it;
    // PagerDuty keeps the last event per dedup_key). Older *pending* ones are superseded when
    // the newer one is folded in (staging.ts), since Alertmanager sends the whole group state.
    dueBatch: db.prepare(`SELECT * FROM deliveries AS d
      WHERE state = 'pending' AND destination = ? AND priority = ? AND next_attempt_at <= ?
        AND NOT EXISTS (SELECT 1 FROM deliveries AS o INDEXED BY deliveries_active_group
          WHERE o.destination = d.destination AND o.group_key = d.group_key AND o.id < d.id
            AND o.state IN ('pending', 'sending'))
      ORDER BY next_attempt_at, id LIMIT ?`),
    newerActive: db.prepare(`SELECT id FROM deliveries AS n INDEXED BY deliveries_active_group
      WHERE n.destination = ? AND n.group_key = ? AND n.id > ? AND n.state IN ('pending', 'sending') LIMIT 1`).pluck(),
    groupOf: db.prepare('SELECT destination, group_key FROM deliveries WHERE id = ?'),
    markSuperseded: db.prepare(`UPDATE deliveries SET state = 'skipped', last_reason = 'superseded',
        last_error = 'superseded by delivery ' || ?, updated_at = ? WHERE id = ? AND state = 'sending'`),
    markSending: db.prepare(`UPDATE deliveries SET state = 'sending', attempts = attempts + 1, updated_at = ?
      WHERE id = ? AND state = 'pending'`),
    markSent: db.prepare(`UPDATE deliveries SET state = 'sent', sent_at = ?, updated_at = ?
      WHERE id = ? AND state = 'sending'`),
    markRetry: db.prepare(`UPDATE deliveries SET state = 'pending', next_attempt_at = ?, last_reason = ?,
      last_error = ?, updated_at = ? WHERE id = ? AND state = 'sending'`),
    markDead: db.prepare(`UPDATE deliveries SET state = 'dead', last_reason = ?, last_error = ?, updated_at = ?
      WHERE id = ? AND state = 'sending'`),
    recover: db.prepare(`UPDATE deliveries SET state = 'pending', updated_at = ? WHERE state = 'sending'`),
    get: db.prepare('SELECT * FROM deliveries WHERE id = ?'),
    retryDead: db.prepare(`UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?,
      updated_at = ? WHERE id = ? AND state = 'dead'`),
    listByState: db.prepare(`SELECT * FROM deliveries WHERE state = ?
      ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?`),
    listAll: db.prepare('SELECT * FROM deliveries ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?'),
    countByState: db.prepare('SELECT COUNT(*) FROM deliveries WHERE state = ? AND priority = ?').pluck(),
    oldestByState: db.prepare('SELECT MIN(received_at) FROM deliveries WHERE state = ? AND priority = ?').pluck(),
    deadCount: db.prepare(`SELECT COUNT(*) FROM deliveries WHERE state = 'dead'`).pluck(),
    nextDue: db.prepare(`SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'`).pluck(),
    pruneSent: db.prepare(`DELETE FROM deliveries WHERE id IN (
      SELECT id FROM deliveries WHERE state = 'sent' AND updated_at < @olderThan
      UNION ALL SELECT id FROM deliveries WHERE state = 'skipped' AND updated_at < @olderThan LIMIT @limit)`)
  }

  const durability = cfg.synchronous ?? 'FULL'
  // Without a WAL (':memory:', or a filesystem refusing WAL) SQLite's own FULL applies.
  const wal = walMode && durability === 'FULL' ? createWalSync(`${file}-wal`) : null
  // Keys enqueued within the window, reloaded from the rows themselves.
  const recent = createRecentKeys(windowMs)
  const startedAt = deps.now()
  // What a stopped or crashed process left staged is folded first: the idempotency window
  // below is reloaded from the indexed table.
  const staging = createStaging(db)
  const leftStaged = db.transaction(() => staging.fold(startedAt))()
  if (leftStaged.superseded.length > 0) deps.onSuperseded?.(leftStaged.superseded)
  for (const [key, createdAt] of q.recentKeys.iterate(startedAt - windowMs) as Iterable<[string, number]>) recent.claim(key, createdAt)

  const checkpointer = walMode && file !== ':memory:'
    ? createCheckpointer(file, { onError: (message) => deps.onCheckpointError?.(message) })
    : null
  if (checkpointer !== null) db.pragma(`wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`)
  // SQLite reuses the WAL file from its start after a full checkpoint but never shrinks it:
  // should it ever outgrow the backstop (a long read, a stalled checkpoint), this takes it
  // back to 8 MB at the next restart instead of keeping its high-water size.
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`)
  const foldDelayMs = cfg.foldDelayMs ?? DEFAULT_FOLD_DELAY_MS
  let foldTimer: ReturnType<typeof setTimeout> | null = null
  const committer = createGroupCommitter(db, {
    durableSynchronous: durability,
    ...(wal !== null ? { syncDurable: wal.sync } : {}),
    onCommit: (info) => {
      checkpointer?.committed()
      deps.onCommit?.(info)
    }
  })

  function toDelivery (r: Row): Delivery {
    return {
      id: r.id,
      destination: r.destination,
      type: r.type,
      priority: priorityFromRank(r.priority),
      idempotencyKey: r.idempotency_key,
      groupKey: r.group_key,
      body: decodeBody(r.body),
      state: r.state,
      attempts: r.attempts,
      nextAttemptAt: r.next_attempt_at,
      receivedAt: r.received_at,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      lastError: r.last_error,
      lastReason: r.last_reason,
      sentAt: r.sent_at
    }
  }

  async function enqueue (items: readonly EnqueueItem[], opts: { receivedAt: number }): Promise<EnqueueResult> {
    const now = deps.now()
    // Serialise before joining the shared transaction: a bad body fails only its own caller.
    // Deliveries sharing a body (the usual case: every alert to every destination) share its
    // serialisation and compression.
    const serialised = new Map<unknown, string | Buffer>()
    const rows = items.map((item) => {
      const source = item.bodyJson ?? item.body
      let body = serialised.get(source)
      if (body === undefined) {
        body = encodeBody(item.bodyJson ?? JSON.stringify(item.body) ?? 'null')
        serialised.set(source, body)
      }
      return { item, body, rank: priorityRank(item.priority) }
    })
    const claimedKeys: string[] = []
    try {
      return await committer.submit(() => {
        const result: EnqueueResult = { inserted: [], duplicates: [] }
        recent.prune(now)
        try {
          for (const { item, body, rank } of rows) {
            if (!recent.claim(item.idempotencyKey, now)) {
              result.duplicates.push(item.idempotencyKey)
              continue
            }
            claimedKeys.push(item.idempotencyKey)
            const state = item.skip === true ? 'skipped' : 'pending'
            const id = staging.stage({
              destination: item.destination, type: item.type, priority: rank, idempotencyKey: item.idempotencyKey,
              groupKey: item.groupKey, body, state, now, receivedAt: opts.receivedAt, lastReason: state === 'skipped' ? 'not_configured' : null
            })
            result.inserted.push({ id, destination: item.destination, type: item.type, priority: item.priority, state })
          }
        } catch (err) {
          recent.release(claimedKeys.splice(0), now) // this savepoint rolls back
          throw err
        }
        return result
      }, DURABLE).then((result) => {
        if (result.inserted.length > 0) scheduleFold()
        return result
      })
    } catch (err) {
      recent.release(claimedKeys, now) // the whole batch rolled back (or was never run)
      throw err
    }
  }

  function reportFold (folded: FoldResult): void {
    if (folded.superseded.length > 0) deps.onSuperseded?.(folded.superseded)
  }

  // Folds whatever is staged, in a commit of its own: on the timer, before every read (so
  // reads show what /webhook answered for) and at close. Never rejects: when the fold cannot
  // commit (disk full, store poisoned or closed) the staged rows stay staged, durable, until
  // it can, and reads answer from the indexed table; the failure itself surfaces through
  // enqueue's 503s and the health check.
  async function foldNow (): Promise<void> {
    if (committer.unavailable() !== null) return
    try {
      const folded = await committer.submit(() => staging.fold(deps.now()), BOOKKEEPING)
      reportFold(folded)
      if (folded.pending > 0) deps.onClaimable?.()
    } catch {
      // Nothing to undo: the fold's transaction rolled back, the rows are still staged.
    }
  }

  // In its own savepoint: a claim still hands out what is indexed when the fold fails.
  const foldSavepoint = db.transaction((now: number) => staging.fold(now))
  function foldInClaim (now: number): FoldResult {
    try {
      return foldSavepoint(now)
    } catch {
      return { pending: 0, superseded: [] }
    }
  }

  function scheduleFold (): void {
    if (foldTimer !== null || committer.unavailable() !== null) return
    foldTimer = setTimeout(() => {
      foldTimer = null
      void foldNow()
    }, foldDelayMs)
    foldTimer.unref() // staged rows are durable: they are folded at the next start
  }

  async function claimDue (now: number, limit: number, opts: ClaimOptions = {}): Promise<Delivery[]> {
    if (limit <= 0) return []
    const { claimed, folded } = await committer.submit(() => {
      const folded = foldInClaim(now)
      const excluded = new Set(opts.excludeDestinations ?? [])
      const budgets = new Map<string, number>()
      for (const dest of q.pendingDestinations.all() as string[]) {
        if (excluded.has(dest)) continue
        let type: DestinationType | undefined
        for (let rank = 0; rank < PRIORITIES.length && type === undefined; rank++) {
          type = q.dueForDestination.get(dest, rank, now) as DestinationType | undefined
        }
        if (type === undefined) continue // nothing due there
        const budget = opts.budgetFor === undefined ? limit : Math.min(limit, Math.floor(opts.budgetFor(dest, type)))
        if (budget > 0) budgets.set(dest, budget)
      }
      const claimed: Row[] = []
      // Priority before destination: a P0 anywhere is claimed before a P1 anywhere.
      for (let rank = 0; rank < PRIORITIES.length && claimed.length < limit; rank++) {
        const candidates: Row[] = []
        for (const [dest, budget] of budgets) {
          if (budget <= 0) continue
          candidates.push(...q.dueBatch.all(dest, rank, now, Math.min(budget, limit - claimed.length)) as Row[])
        }
        candidates.sort((a, b) => a.next_attempt_at - b.next_attempt_at || a.id - b.id)
        for (const row of candidates) {
          if (claimed.length >= limit) break
          const left = budgets.get(row.destination) ?? 0
          if (left <= 0) continue
          budgets.set(row.destination, left - 1)
          q.markSending.run(now, row.id)
          claimed.push({ ...row, state: 'sending', attempts: row.attempts + 1, updated_at: now })
        }
      }
      return { claimed: claimed.map(toDelivery), folded }
    }, BOOKKEEPING)
    reportFold(folded)
    return claimed
  }

  async function retryDead (id: number): Promise<RetryDeadResult> {
    return await committer.submit((): RetryDeadResult => {
      const now = deps.now()
      if (q.retryDead.run(now, now, id).changes === 1) {
        return { outcome: 'retried', delivery: toDelivery(q.get.get(id) as Row) }
      }
      const row = q.get.get(id) as Row | undefined
      return row === undefined ? { outcome: 'not_found' } : { outcome: 'not_dead', state: row.state }
    }, DURABLE)
  }

  async function stats (now: number): Promise<OutboxStats> {
    await foldNow()
    const pending = { P0: 0, P1: 0, P2: 0, P3: 0 }
    const oldestPendingAgeMs = { P0: 0, P1: 0, P2: 0, P3: 0 }
    // Not yet delivered = pending or sending. Per (state, priority) so each query is an
    // index range (count) or a single seek (min).
    PRIORITIES.forEach((p, rank) => {
      let oldest = Infinity
      for (const state of ['pending', 'sending']) {
        pending[p] += q.countByState.get(state, rank) as number
        oldest = Math.min(oldest, (q.oldestByState.get(state, rank) as number | null) ?? Infinity)
      }
      if (oldest !== Infinity) oldestPendingAgeMs[p] = Math.max(0, now - oldest)
    })
    return { pending, oldestPendingAgeMs, dead: q.deadCount.get() as number }
  }

  return {
    enqueue,
    claimDue,
    async markSent (id, sentAt) {
      await committer.submit(() => q.markSent.run(sentAt, deps.now(), id), BOOKKEEPING)
    },
    async markRetry (id, nextAttemptAt, reason, error) {
      return await committer.submit(() => {
        // A newer delivery of the same group carries the whole current state: retrying this
        // one would only delay it (it waits for this one) and then send stale news.
        const row = q.groupOf.get(id) as { destination: string, group_key: string } | undefined
        const newer = row === undefined ? undefined : q.newerActive.get(row.destination, row.group_key, id) as number | undefined
        if (newer !== undefined) {
          q.markSuperseded.run(newer, deps.now(), id)
          return 'superseded' as const
        }
        q.markRetry.run(nextAttemptAt, reason, error, deps.now(), id)
        return 'retry' as const
      }, BOOKKEEPING)
    },
    async markDead (id, reason, error) {
      await committer.submit(() => q.markDead.run(reason, error, deps.now(), id), BOOKKEEPING)
    },
    async recoverClaims () {
      return await committer.submit(() => q.recover.run(deps.now()).changes, BOOKKEEPING)
    },
    async list ({ state, limit, offset = 0 }) {
      await foldNow()
      const rows = (state === undefined ? q.listAll.all(limit, offset) : q.listByState.all(state, limit, offset)) as Row[]
      return rows.map(toDelivery)
    },
    async get (id) {
      await foldNow()
      const row = q.get.get(id) as Row | undefined
      return row === undefined ? null : toDelivery(row)
    },
    retryDead,
    stats,
    async nextDueAt () {
      return (q.nextDue.get() as number | null) ?? null
    },
    async pruneSent (olderThan, limit = 10_000) {
      return await committer.submit(() => q.pruneSent.run({ olderThan, limit }).changes, BOOKKEEPING)
    },
    unavailable: () => committer.unavailable(),
    fatal: () => committer.fatal(),
    async close () {
      if (foldTimer !== null) clearTimeout(foldTimer)
      foldTimer = null
      // Whatever stays staged is durable and folded at the next start.
      await foldNow()
      await committer.close()
      await checkpointer?.close()
      await wal?.close()
      db.close()
    }
  }
}
