import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { PRIORITIES, priorityRank } from '../../config/catalog-schema.js'
import {
  DELIVERY_STATES, priorityFromRank,
  type Delivery, type EnqueueRequest, type EnqueueResult, type MarkResult,
  type NotifiedDestination, type OutboxStats, type Store, type StoreFailure, type StoreOperation
} from '../types.js'
import { toDelivery, toRef, type DeliveryRow, type RefRow } from '../delivery-row.js'
import { lockDataDir } from './data-dir-lock.js'
import { heldBackDestinations, itemOutcome } from '../enqueue-plan.js'
import { createGroupCommitter } from './group-commit.js'
import { createIncidentSteps } from './incidents.js'
import { migrate } from './schema.js'
import { createWalSync } from './wal-sync.js'

// The embedded engine: one SQLite file in DATA_DIR, owned by one process (an exclusive lock
// on the file; see data-dir-lock.ts). One prepared statement per operation; every write goes
// through the group committer, so a webhook's deliveries are durable and claimable the
// moment its transaction commits.

export interface SqliteStoreConfig {
  // Directory holding outbox.sqlite (created if missing), or ':memory:' for tests.
  dataDir: string
  // A notification's idempotency key is taken for this long: retries and HA peers within it
  // collapse; a repeat_interval reminder after it goes out.
  idempotencyWindowMs: number
  // FULL (default): an enqueue resolves once its rows are fsynced (survives power loss).
  // NORMAL: once committed (survives a process crash, not an OS crash).
  synchronous?: 'FULL' | 'NORMAL'
}

export interface SqliteStoreDeps {
  now: () => number
  onFailure?: (failure: StoreFailure) => void
  // Observes each commit (tests count transactions with it).
  onCommit?: (info: { operations: number, durable: boolean }) => void
  // Makes the WAL durable (default: fdatasync of the WAL file, see wal-sync.ts); a seam for
  // the durability test.
  syncWal?: () => Promise<void>
}

export const DB_FILE_NAME = 'outbox.sqlite'
export const WAL_AUTOCHECKPOINT_PAGES = 10_000


// As in the partial indexes (schema.ts, version 6): OR, not IN.
const ACTIVE = "(state = 'pending' OR state = 'sending')"

export function createSqliteStore (cfg: SqliteStoreConfig, deps: SqliteStoreDeps): Store {
  let file = ':memory:'
  let unlock = (): void => {}
  if (cfg.dataDir !== ':memory:') {
    mkdirSync(cfg.dataDir, { recursive: true })
    file = join(cfg.dataDir, DB_FILE_NAME)
  }
  const db = new Database(file)
  try {
    if (file !== ':memory:') unlock = lockDataDir(db, cfg.dataDir)
    db.pragma('journal_mode = WAL')
    // Commits write the WAL without syncing it; durable writes wait for syncWal instead.
    db.pragma('synchronous = NORMAL')
    // Each operation's savepoint keeps a sub-journal of the pages it touched: in memory, not
    // in a temporary file written on every enqueue.
    db.pragma('temp_store = MEMORY')
    // A checkpoint runs inside the COMMIT that crosses the threshold, on the event loop: it
    // copies the WAL's pages into the database file and fsyncs both. Ten times SQLite's default
    // threshold makes those stalls ten times rarer, and a page rewritten by many webhooks is
    // copied once; the WAL file grows to ~40 MB in exchange (docs/benchmarks.md).
    db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`)
    migrate(db)
  } catch (err) {
    db.close()
    unlock()
    throw err
  }

  const q = {
    notified: db.prepare('SELECT destination, type, priority FROM group_notified WHERE group_key = ? ORDER BY destination'),
    takeKey: db.prepare(`INSERT INTO idempotency_keys (key, expires_at) VALUES (@key, @expiresAt)
      ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE idempotency_keys.expires_at <= @now`),
    insert: db.prepare(`INSERT INTO deliveries (destination, type, priority, idempotency_key, group_key, body, state,
        next_attempt_at, received_at, created_at, updated_at, last_reason, deferred_until)
      VALUES (@destination, @type, @priority, @idempotencyKey, @groupKey, @body, @state, @nextAttemptAt, @receivedAt, @now, @now,
        @lastReason, @deferredUntil)`),
    // Two statements, not UPDATE … RETURNING: SQLite's RETURNING scanned the table here.
    olderPending: db.prepare(`SELECT id, destination, type, priority FROM deliveries
      WHERE destination = @destination AND group_key = @groupKey AND state = 'pending' AND id < @id`),
    supersede: db.prepare(`UPDATE deliveries SET state = 'skipped', last_reason = 'superseded',
        last_error = 'superseded by delivery ' || @id, updated_at = @now
      WHERE destination = @destination AND group_key = @groupKey AND state = 'pending' AND id < @id`),
    remember: db.prepare(`INSERT INTO group_notified (group_key, destination, type, priority, updated_at)
      VALUES (@groupKey, @destination, @type, @priority, @now)
      ON CONFLICT (group_key, destination) DO UPDATE SET type = excluded.type,
        priority = MIN(priority, excluded.priority), updated_at = excluded.updated_at`),
    forget: db.prepare('DELETE FROM group_notified WHERE group_key = ?'),
    lapseClaims: db.prepare(`UPDATE deliveries SET state = 'pending', claimed_until = NULL, updated_at = @now
      WHERE state = 'sending' AND claimed_until <= @now`),
    // Per destination and group, deliveries go out in order: a newer one waits while an
    // older one is unsettled (a retried trigger must never land after its resolve).
    due: db.prepare(`SELECT * FROM deliveries AS d
      WHERE state = 'pending' AND next_attempt_at <= @now
        AND destination NOT IN (SELECT value FROM json_each(@excluded))
        AND NOT EXISTS (SELECT 1 FROM deliveries AS o WHERE o.destination = d.destination
          AND o.group_key = d.group_key AND o.id < d.id AND (o.state = 'pending' OR o.state = 'sending'))
      ORDER BY priority, next_attempt_at, id LIMIT @limit`),
    markSending: db.prepare(`UPDATE deliveries SET state = 'sending', attempts = attempts + 1, claimed_until = @until,
      updated_at = @now WHERE id = @id AND state = 'pending'`),
    markSent: db.prepare(`UPDATE deliveries SET state = 'sent', sent_at = @sentAt, claimed_until = NULL, updated_at = @now
      WHERE id = @id AND state = 'sending' AND attempts = @attempts`),
    markRetry: db.prepare(`UPDATE deliveries SET state = 'pending', next_attempt_at = @nextAttemptAt, claimed_until = NULL,
      last_reason = @reason, last_error = @error, updated_at = @now WHERE id = @id AND state = 'sending' AND attempts = @attempts`),
    markDead: db.prepare(`UPDATE deliveries SET state = 'dead', claimed_until = NULL, last_reason = @reason, last_error = @error,
      updated_at = @now WHERE id = @id AND state = 'sending' AND attempts = @attempts`),
    markSkipped: db.prepare(`UPDATE deliveries SET state = 'skipped', claimed_until = NULL, last_reason = @reason, last_error = @error,
      updated_at = @now WHERE id = @id AND state = 'sending' AND attempts = @attempts`),
    newerActive: db.prepare(`SELECT id FROM deliveries WHERE destination = ? AND group_key = ? AND id > ? AND ${ACTIVE} LIMIT 1`).pluck(),
    markSuperseded: db.prepare(`UPDATE deliveries SET state = 'skipped', claimed_until = NULL, last_reason = 'superseded',
      last_error = 'superseded by delivery ' || @newer, updated_at = @now WHERE id = @id AND state = 'sending' AND attempts = @attempts`),
    releaseClaims: db.prepare(`UPDATE deliveries SET state = 'pending', claimed_until = NULL, updated_at = ? WHERE state = 'sending'`),
    get: db.prepare('SELECT * FROM deliveries WHERE id = ?'),
    // attempts stays: it is the claim token, and a lapsed claim of this row must never match again.
    retryDead: db.prepare(`UPDATE deliveries SET state = 'pending', next_attempt_at = @now, updated_at = @now
      WHERE id = @id AND state = 'dead'`),
    // One statement per state: a partial index serves a literal state, not a bound one. A
    // settled state reads deliveries_settled in order; pending and sending sort the active rows.
    listByState: Object.fromEntries(DELIVERY_STATES.map((s) => [s,
      db.prepare(`SELECT * FROM deliveries WHERE state = '${s}' ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?`)])),
    listAll: db.prepare('SELECT * FROM deliveries ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?'),
    countUnsettled: db.prepare(`SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM deliveries WHERE ${ACTIVE} AND priority = ?`),
    countDead: db.prepare("SELECT COUNT(*) FROM deliveries WHERE state = 'dead'").pluck(),
    pruneDeliveries: db.prepare(`DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
      WHERE (state = 'sent' OR state = 'skipped') AND updated_at < ? LIMIT 10000)`),
    pruneKeys: db.prepare('DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys WHERE expires_at <= ? LIMIT 10000)'),
    pruneNotified: db.prepare('DELETE FROM group_notified WHERE updated_at < ?'),
    // As large as a webhook's deliveries: a store that can write this can take webhooks again.
    heartbeat: db.prepare(`INSERT INTO store_heartbeat (id, at, probe) VALUES (1, @now, zeroblob(16384))
      ON CONFLICT (id) DO UPDATE SET at = excluded.at, probe = excluded.probe`)
  }

  const insertDelivery = (r: Parameters<Parameters<typeof createIncidentSteps>[1]['insertDelivery']>[0]): number =>
    Number(q.insert.run({ ...r, nextAttemptAt: r.now, deferredUntil: null }).lastInsertRowid)
  const takeKey = (key: string, expiresAt: number, now: number): boolean => q.takeKey.run({ key, expiresAt, now }).changes === 1
  const incidents = createIncidentSteps(db, { insertDelivery, takeKey })

  let failure: string | null = null
  let closed = false
  const wal = cfg.synchronous === 'NORMAL' || file === ':memory:' ? null : createWalSync(`${file}-wal`)
  const syncWal = cfg.synchronous === 'NORMAL' ? undefined : deps.syncWal ?? wal?.sync
  const committer = createGroupCommitter(db, {
    ...(syncWal !== undefined ? { syncWal } : {}),
    ...(deps.onCommit !== undefined ? { onCommit: deps.onCommit } : {})
  })

  function fail (operation: StoreOperation, err: unknown): Error {
    const error = err instanceof Error ? err : new Error(String(err))
    failure = `store ${operation} failed: ${error.message}`
    deps.onFailure?.({ operation, error })
    return error
  }

  // Enqueues and replays are what a caller was promised; everything else is bookkeeping.
  const DURABLE: readonly StoreOperation[] = ['enqueue', 'replay', 'escalate', 'acknowledge']

  async function write<T> (operation: StoreOperation, run: () => T, onCommitted?: () => void): Promise<T> {
    try {
      const value = await committer.submit(run, { durable: DURABLE.includes(operation), ...(onCommitted !== undefined ? { onCommitted } : {}) })
      // Only a write the size of a webhook's clears a failure: a small claim or mark may still
      // fit where an enqueue does not.
      if (operation !== 'claim' && operation !== 'mark' && operation !== 'escalate') failure = null
      return value
    } catch (err) {
      throw fail(operation, err)
    }
  }

  async function read<T> (run: () => T): Promise<T> {
    try {
      return run()
    } catch (err) {
      throw fail('read', err)
    }
  }

  const ref = toRef
  const claimOf = (d: Delivery): { id: number, attempts: number } => ({ id: d.id, attempts: d.attempts })
  const marked = (changes: number): MarkResult => changes === 1 ? 'done' : 'lost_claim'

  function enqueue (req: EnqueueRequest, now: number): EnqueueResult {
    const result: EnqueueResult = { inserted: [], duplicates: [], superseded: [], resolvedWhileDeferred: [] }
    const notified = (q.notified.all(req.groupKey) as RefRow[]).map((r): NotifiedDestination => ({ destination: r.destination, type: r.type, priority: priorityFromRank(r.priority) }))
    const deferredItems: Array<{ destination: string, until: number }> = []
    // Held notifications of a group that resolved are never sent, nor is the resolve to a
    // destination that heard nothing else of it.
    if (req.resolved) result.resolvedWhileDeferred = incidents.skipDeferred(req.groupKey, now)
    const heldBack = heldBackDestinations(result.resolvedWhileDeferred, notified)
    for (const item of req.plan(notified)) {
      if (q.takeKey.run({ key: item.idempotencyKey, expiresAt: now + cfg.idempotencyWindowMs, now }).changes === 0) {
        result.duplicates.push(item.idempotencyKey)
        continue
      }
      const { state, held, deferred, lastReason, nextAttemptAt, deferredUntil } = itemOutcome(item, heldBack, now)
      const priority = priorityRank(item.priority)
      // Objects with their fields named, not spread: this loop runs per delivery, where spreads cost.
      const row = {
        destination: item.destination, type: item.type, priority, idempotencyKey: item.idempotencyKey, groupKey: req.groupKey,
        body: item.body, state, nextAttemptAt, receivedAt: req.receivedAt, now, lastReason, deferredUntil
      }
      const id = Number(q.insert.run(row).lastInsertRowid)
      if (held) {
        result.resolvedWhileDeferred.push({ id, destination: item.destination, type: item.type, priority: item.priority })
        continue
      }
      result.inserted.push({ id, destination: item.destination, type: item.type, priority: item.priority, state })
      if (state === 'skipped') continue
      const probe = { destination: item.destination, groupKey: req.groupKey, id, now }
      const older = q.olderPending.all(probe) as RefRow[]
      if (older.length > 0) q.supersede.run(probe)
      for (const old of older) result.superseded.push(ref(old))
      // A held notification has told the destination nothing yet.
      if (deferred) deferredItems.push({ destination: item.destination, until: nextAttemptAt })
      else if (item.status === 'firing') q.remember.run({ groupKey: req.groupKey, destination: item.destination, type: item.type, priority, now })
    }
    if (req.resolved) q.forget.run(req.groupKey)
    if (req.incident !== undefined) {
      const incident = incidents.onWebhook(req.groupKey, req.incident, now, deferredItems)
      if (incident !== undefined) result.incident = incident
    }
    return result
  }

  return {
    async enqueue (req) {
      return await write('enqueue', () => enqueue(req, deps.now()), req.onCommitted)
    },
    async claim ({ now, limit, leaseMs, excludeDestinations, admit }) {
      if (limit <= 0) return []
      return await write('claim', () => {
        q.lapseClaims.run({ now })
        const claimed: Delivery[] = []
        for (const row of q.due.all({ now, limit, excluded: JSON.stringify(excludeDestinations) }) as DeliveryRow[]) {
          if (!admit(row.destination, row.type)) continue
          q.markSending.run({ id: row.id, until: now + leaseMs, now })
          claimed.push(toDelivery({ ...row, state: 'sending', attempts: row.attempts + 1, claimed_until: now + leaseMs, updated_at: now }))
        }
        return claimed
      })
    },
    async markSent (d, sentAt) {
      return await write('mark', () => marked(q.markSent.run({ ...claimOf(d), sentAt, now: deps.now() }).changes))
    },
    async markRetry (d, nextAttemptAt, reason, error) {
      return await write('mark', () => {
        const now = deps.now()
        const newer = q.newerActive.get(d.destination, d.groupKey, d.id) as number | undefined
        if (newer !== undefined) {
          return q.markSuperseded.run({ ...claimOf(d), newer, now }).changes === 1 ? 'superseded' : 'lost_claim'
        }
        return marked(q.markRetry.run({ ...claimOf(d), nextAttemptAt, reason, error, now }).changes)
      })
    },
    async markDead (d, reason, error) {
      return await write('mark', () => marked(q.markDead.run({ ...claimOf(d), reason, error, now: deps.now() }).changes))
    },
    async markSkipped (d, reason, error) {
      return await write('mark', () => marked(q.markSkipped.run({ ...claimOf(d), reason, error, now: deps.now() }).changes))
    },
    async releaseClaims () {
      return await write('claim', () => q.releaseClaims.run(deps.now()).changes)
    },
    async list ({ state, limit, offset = 0 }) {
      return await read(() => {
        const byState = state === undefined ? undefined : q.listByState[state]
        if (state !== undefined && byState === undefined) return []
        return ((byState ?? q.listAll).all(limit, offset) as DeliveryRow[]).map(toDelivery)
      })
    },
    async get (id) {
      return await read(() => {
        const row = q.get.get(id) as DeliveryRow | undefined
        return row === undefined ? null : toDelivery(row)
      })
    },
    async retryDead (id, now) {
      return await write('replay', () => {
        if (q.retryDead.run({ id, now }).changes === 1) return { outcome: 'retried', delivery: toDelivery(q.get.get(id) as DeliveryRow) } as const
        const row = q.get.get(id) as DeliveryRow | undefined
        return row === undefined ? { outcome: 'not_found' } as const : { outcome: 'not_dead', state: row.state } as const
      })
    },
    async stats (now) {
      return await read(() => {
        const byPriority = PRIORITIES.map((p, rank) => [p, q.countUnsettled.get(rank) as { n: number, oldest: number | null }] as const)
        return {
          pending: Object.fromEntries(byPriority.map(([p, { n }]) => [p, n])) as OutboxStats['pending'],
          oldestPendingAgeMs: Object.fromEntries(byPriority.map(([p, { oldest }]) => [p, oldest === null ? 0 : Math.max(0, now - oldest)])) as OutboxStats['oldestPendingAgeMs'],
          dead: q.countDead.get() as number
        }
      })
    },
    async housekeeping (now, sentBefore) {
      return await write('housekeeping', () => {
        q.heartbeat.run({ now })
        q.pruneNotified.run(sentBefore)
        incidents.prune(sentBefore)
        return { deliveries: q.pruneDeliveries.run(sentBefore).changes, keys: q.pruneKeys.run(now).changes }
      })
    },
    async fireDueEscalations (req) {
      const peek = await read(() => incidents.peekDue(req.now))
      if (!peek.due) return { fired: [], nextDueAt: peek.nextDueAt }
      return await write('escalate', () => incidents.fireDue(req, req.now + cfg.idempotencyWindowMs))
    },
    async applyAcknowledgement (req, opts) {
      return await write('acknowledge', () => incidents.acknowledge(req, opts, deps.now()))
    },
    async listIncidents (opts) {
      return await read(() => incidents.list(opts))
    },
    async getIncident (id) {
      return await read(() => incidents.get(id))
    },
    async findIncident (receiver, groupKey) {
      return await read(() => incidents.find(receiver, groupKey))
    },
    async incidentStats (now) {
      return await read(() => incidents.stats(now))
    },
    async slackMessage (incidentId, destination) {
      return await read(() => incidents.slackMessage(incidentId, destination))
    },
    async saveSlackMessage (m) {
      await write('mark', () => { incidents.saveSlackMessage(m) })
    },
    unavailable: () => closed ? 'store is closed' : committer.fatal() ?? failure,
    fatal: () => committer.fatal(),
    async close () {
      if (closed) return
      closed = true
      await committer.close()
      await wal?.close()
      db.close()
      unlock()
    }
  }
}
