import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import { PRIORITIES } from '../../config/catalog-schema.js'
import type { LimitFor } from '../../outbox/rate-limit.js'
import type { ClaimRequest, Delivery, MarkResult, OutboxStats, SlotLoan, Store, StoreFailure, StoreOperation } from '../types.js'
import { toDelivery, type DeliveryRow } from '../delivery-row.js'
import { createPool, createRedactor, errorMessage, inTransaction } from './connection.js'
import { createBatchedEnqueue } from './enqueue.js'
import * as incidents from './incidents.js'
import { createWorkListener, WORK_CHANNEL, type WorkListener } from './listen.js'
import { migrate, SchemaTooNewError } from './migrate.js'

// The networked engine: several replicas share one PostgreSQL. Claims lock rows with
// FOR UPDATE SKIP LOCKED (replicas never take the same row, nor wait for each other);
// a claim carries a lease (claimed_until), so a dead replica's work returns. Enqueues are
// group-committed (enqueue.ts) under advisory locks on their groups, so two replicas never plan
// one group from the same stale set of notified destinations. Committed work is announced
// with NOTIFY.

export interface PostgresStoreConfig {
  url: string
  idempotencyWindowMs: number
  poolSize?: number
}

export interface PostgresStoreDeps {
  now: () => number
  onFailure?: (failure: StoreFailure) => void
  // The LISTEN connection was lost or restored (for logs); its failures also set unavailable().
  onListenerState?: (state: 'connected' | 'lost', detail: string) => void
  // Each destination's rate limit, applied across all replicas with token buckets in the
  // database (the caller's own admit() then only holds a destination after a 429).
  limitFor?: LimitFor
  // Observes each enqueue transaction and how many webhooks it stored (tests).
  onEnqueueBatch?: (size: number) => void
}

// Several processes share this store: releaseClaims is never used (leases return a dead
// replica's claims); onWork tells this process that some replica enqueued or replayed work.
export interface PostgresStore extends Store {
  onWork: (listener: () => void) => void
  // Where an enqueue borrows free send slots to claim its own pages in its transaction.
  lendSlotsFrom: (lender: () => SlotLoan | null) => void
  // Connects, applies pending migrations and starts listening. Until it has succeeded every
  // operation fails and unavailable() names the cause. Throws the (redacted) cause, a
  // SchemaTooNewError as itself; may be called again after a failure.
  start: () => Promise<void>
}


const ACTIVE = "state IN ('pending', 'sending')"
const LAPSE_EVERY_MS = 1_000
// Named, not *: a prepared statement must keep its result columns when a later migration adds one.
const DELIVERY_COLUMNS = ['id', 'destination', 'type', 'priority', 'idempotency_key', 'group_key', 'body', 'state', 'attempts',
  'next_attempt_at', 'claimed_until', 'received_at', 'created_at', 'updated_at', 'last_error', 'last_reason', 'sent_at',
  'deferred_until'].map((c) => `d.${c}`).join(', ')

// Group lookups compare md5(group_key), which the indexes hold (a group key may be longer than
// a B-tree entry; migration 0008), and the key itself, so a digest collision never merges groups.
const SQL = {
  notify: `SELECT pg_notify('${WORK_CHANNEL}', '')`,
  lapseClaims: `UPDATE deliveries SET state = 'pending', claimed_until = NULL, updated_at = $1
    WHERE state = 'sending' AND claimed_until <= $1`,
  // Per destination and group, deliveries go out in order: a newer one waits while an older
  // one is unsettled (a retried trigger must never land after its resolve).
  due: `SELECT ${DELIVERY_COLUMNS} FROM deliveries AS d
    WHERE state = 'pending' AND next_attempt_at <= $1 AND destination <> ALL($2::text[])
      AND NOT EXISTS (SELECT 1 FROM deliveries AS o WHERE o.destination = d.destination
        AND md5(o.group_key) = md5(d.group_key) AND o.group_key = d.group_key AND o.id < d.id AND o.${ACTIVE})
      AND NOT EXISTS (SELECT 1 FROM rate_buckets AS r WHERE r.destination = d.destination
        AND LEAST(r.burst, r.tokens + GREATEST(0, $1 - r.updated_at) * r.per_second / 1000.0) < 1)
    ORDER BY priority, next_attempt_at, id LIMIT $3
    FOR UPDATE OF d SKIP LOCKED`,
  // Refills each destination's bucket to now (creating it full) and takes what the claim
  // wants of its whole tokens, in one statement; the rows stay locked until the claim commits.
  // Sorted, so two replicas lock buckets in one order and never deadlock. The proposed row's
  // `taken` carries the wish (capped by a full bucket); $5 is now.
  takeTokens: `INSERT INTO rate_buckets AS b (destination, tokens, per_second, burst, updated_at, taken)
    SELECT w.destination, w.burst - LEAST(w.wanted, floor(w.burst)), w.per_second, w.burst, $5, LEAST(w.wanted, floor(w.burst))
    FROM unnest($1::text[], $2::float8[], $3::float8[], $4::float8[]) AS w(destination, per_second, burst, wanted) ORDER BY w.destination
    ON CONFLICT (destination) DO UPDATE SET per_second = EXCLUDED.per_second, burst = EXCLUDED.burst,
      taken = LEAST(EXCLUDED.taken, floor(LEAST(EXCLUDED.burst, b.tokens + GREATEST(0, EXCLUDED.updated_at - b.updated_at) * EXCLUDED.per_second / 1000.0))),
      tokens = LEAST(EXCLUDED.burst, b.tokens + GREATEST(0, EXCLUDED.updated_at - b.updated_at) * EXCLUDED.per_second / 1000.0)
        - LEAST(EXCLUDED.taken, floor(LEAST(EXCLUDED.burst, b.tokens + GREATEST(0, EXCLUDED.updated_at - b.updated_at) * EXCLUDED.per_second / 1000.0))),
      updated_at = GREATEST(b.updated_at, EXCLUDED.updated_at)
    RETURNING destination, taken`,
  markSending: `UPDATE deliveries SET state = 'sending', attempts = attempts + 1, claimed_until = $2, updated_at = $3
    WHERE id = ANY($1::bigint[]) AND state = 'pending'`,
  markSent: `UPDATE deliveries SET state = 'sent', sent_at = $3, claimed_until = NULL, updated_at = $4
    WHERE id = $1 AND state = 'sending' AND attempts = $2`,
  // Retried, or skipped when a newer delivery of its destination and group is waiting.
  markRetry: `UPDATE deliveries AS d SET
      state = CASE WHEN n.id IS NULL THEN 'pending' ELSE 'skipped' END,
      next_attempt_at = CASE WHEN n.id IS NULL THEN $3 ELSE d.next_attempt_at END,
      last_reason = CASE WHEN n.id IS NULL THEN $4 ELSE 'superseded' END,
      last_error = CASE WHEN n.id IS NULL THEN $5 ELSE 'superseded by delivery ' || n.id END,
      claimed_until = NULL, updated_at = $6
    FROM (SELECT (SELECT o.id FROM deliveries AS o WHERE md5(o.group_key) = md5($8) AND o.group_key = $8 AND o.destination = $7 AND o.id > $1
      AND o.${ACTIVE} ORDER BY o.id LIMIT 1) AS id) AS n
    WHERE d.id = $1 AND d.state = 'sending' AND d.attempts = $2
    RETURNING n.id AS newer`,
  markDead: `UPDATE deliveries SET state = 'dead', claimed_until = NULL, last_reason = $3, last_error = $4, updated_at = $5
    WHERE id = $1 AND state = 'sending' AND attempts = $2`,
  markSkipped: `UPDATE deliveries SET state = 'skipped', claimed_until = NULL, last_reason = $3, last_error = $4, updated_at = $5
    WHERE id = $1 AND state = 'sending' AND attempts = $2`,
  // A claim taken in a transaction whose outcome is unknown: back to pending unless its lease
  // was already lapsed and claimed again (attempts is the claim token).
  unclaim: `UPDATE deliveries AS d SET state = 'pending', claimed_until = NULL, updated_at = $3
    FROM unnest($1::bigint[], $2::int[]) AS c(id, attempts)
    WHERE d.id = c.id AND d.state = 'sending' AND d.attempts = c.attempts`,
  releaseClaims: "UPDATE deliveries SET state = 'pending', claimed_until = NULL, updated_at = $1 WHERE state = 'sending'",
  get: 'SELECT * FROM deliveries WHERE id = $1',
  // attempts stays: it is the claim token, and a lapsed claim of this row must never match again.
  retryDead: `UPDATE deliveries SET state = 'pending', next_attempt_at = $2, updated_at = $2
    WHERE id = $1 AND state = 'dead' RETURNING *`,
  listByState: 'SELECT * FROM deliveries WHERE state = $1 ORDER BY updated_at DESC, id DESC LIMIT $2 OFFSET $3',
  listAll: 'SELECT * FROM deliveries ORDER BY updated_at DESC, id DESC LIMIT $1 OFFSET $2',
  stats: `SELECT priority, state = 'dead' AS dead, count(*) AS n, min(received_at) AS oldest FROM deliveries
    WHERE state IN ('pending', 'sending', 'dead') GROUP BY 1, 2`,
  heartbeat: 'INSERT INTO store_heartbeat (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at',
  pruneNotified: 'DELETE FROM group_notified WHERE updated_at < $1',
  pruneDeliveries: `DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
    WHERE state IN ('sent', 'skipped') AND updated_at < $1 LIMIT 10000)`,
  pruneKeys: 'DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys WHERE expires_at <= $1 LIMIT 10000)'
}

// What every page runs (its enqueue, claim and outcome mark), as named statements: PostgreSQL
// parses and plans each once per connection instead of at every call, and planning these
// CTEs costs more than running them. None returns `*` (see DELIVERY_COLUMNS).
const HOT = ['lapseClaims', 'due', 'takeTokens',
  'markSending', 'markSent', 'markRetry', 'markDead'] as const
const PREPARED = Object.fromEntries(HOT.map((k) => [k, { name: `alert_enricher_${k}`, text: SQL[k] }])) as Record<typeof HOT[number], { name: string, text: string }>

// Opens the pool, applies pending migrations (under their advisory lock) and starts listening;
// a failure closes it again and throws.
export async function createPostgresStore (cfg: PostgresStoreConfig, deps: PostgresStoreDeps): Promise<PostgresStore> {
  const store = openPostgresStore(cfg, deps)
  try {
    await store.start()
  } catch (err) {
    await store.close()
    throw err
  }
  return store
}

// The store before any connection: start() (retried by the caller) brings it up, so a
// service can answer its HTTP probes while the database is still away.
export function openPostgresStore (cfg: PostgresStoreConfig, deps: PostgresStoreDeps): PostgresStore {
  const redact = createRedactor(cfg.url)
  // A new Error carrying only the redacted message: driver errors hold more (the query, its
  // parameters, the connection) than may leave the engine.
  const clean = (err: unknown): Error => new Error(redact(errorMessage(err)))
  let failure: string | null = null
  // Set until start() has succeeded: why nothing can be stored yet.
  let down: string | null = 'database unavailable: not connected yet'
  let closed = false
  const pool = createPool({
    url: cfg.url,
    max: cfg.poolSize ?? 10,
    onIdleError: (err) => { failure = `database connection lost: ${clean(err).message}` }
  })

  const workListeners: Array<() => void> = []
  // Names this replica in its NOTIFYs of new work.
  const replicaId = randomUUID()
  const listener: WorkListener = createWorkListener({
    url: cfg.url,
    ownPayload: replicaId,
    onWork: () => { for (const fn of workListeners) fn() },
    onState: (state, detail) => {
      const safe = redact(detail)
      if (state === 'lost') failure = `database connection lost: ${safe}`
      deps.onListenerState?.(state, safe)
    }
  })

  async function start (): Promise<void> {
    if (closed) throw new Error('store is closed')
    if (down === null) return
    try {
      await migrate(pool)
    } catch (err) {
      // Not transient, and its message holds no secret: the caller must not retry it.
      if (err instanceof SchemaTooNewError) throw err
      const error = clean(err)
      down = `database unavailable: ${error.message}`
      throw error
    }
    await listener.start()
    down = null
    failure = null
  }

  function fail (operation: StoreOperation, err: unknown): Error {
    const error = clean(err)
    failure = `store ${operation} failed: ${error.message}`
    deps.onFailure?.({ operation, error })
    return error
  }

  async function run<T> (operation: StoreOperation | 'read', fn: () => Promise<T>): Promise<T> {
    if (closed) throw fail(operation, new Error('store is closed'))
    if (down !== null) throw fail(operation, new Error(down))
    try {
      const value = await fn()
      // A write that went through proves the database reachable and writable again.
      if (operation !== 'read') failure = null
      return value
    } catch (err) {
      throw fail(operation, err)
    }
  }

  // Claims whose lease lapsed (their replica died or hung) return to pending at most once
  // every LAPSE_EVERY_MS per replica: a lease is tens of seconds, so they wait under a second
  // more, and a page's claim is a round trip shorter.
  let lapseDueAt = -Infinity
  const tx = async <T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> => await inTransaction(pool, fn)
  // Claims commit without waiting for the WAL flush: a database crash may lose the last of
  // them, and a lost claim is claimable again (at-least-once, as the outbox promises anyway).
  // Everything else keeps the flush; an outcome mark is one statement, after the send.
  const quick = async <T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> => await inTransaction(pool, fn, { flush: false })

  const marked = (count: number | null): MarkResult => count === 1 ? 'done' : 'lost_claim'

  // Claims in the caller's transaction: due rows (skipping those another claim holds) the
  // dispatcher admits and the shared buckets have tokens for, marked sending under a lease.
  async function claimIn (c: pg.PoolClient, { now, limit, leaseMs, excludeDestinations, admit }: ClaimRequest): Promise<Delivery[]> {
    const { rows } = await c.query<DeliveryRow>(PREPARED.due, [now, excludeDestinations, limit])
    const admitted = await takeTokens(c, rows.filter((r) => admit(r.destination, r.type)), now)
    if (admitted.length > 0) await c.query(PREPARED.markSending, [admitted.map((r) => r.id), now + leaseMs, now])
    return admitted.map((r) => toDelivery({ ...r, state: 'sending', attempts: r.attempts + 1, claimed_until: now + leaseMs, updated_at: now }))
  }

  // Its failure is logged and counted; the lease returns the rows a little later.
  async function unclaim (claimed: Delivery[]): Promise<void> {
    try {
      await pool.query(SQL.unclaim, [claimed.map((d) => d.id), claimed.map((d) => d.attempts), deps.now()])
    } catch (err) {
      fail('claim', err)
    }
  }

  // Set by the dispatcher of this process (lendSlotsFrom); until then enqueues claim nothing.
  let lender: (() => SlotLoan | null) | null = null

  const batched = createBatchedEnqueue({ transaction: async (fn, opts) => await inTransaction(pool, fn, opts), now: deps.now, notifyPayload: replicaId, idempotencyWindowMs: cfg.idempotencyWindowMs, claimAlong: { lend: () => lender?.() ?? null, claim: claimIn, unclaim }, ...(deps.onEnqueueBatch !== undefined ? { onBatch: deps.onEnqueueBatch } : {}) })

  // Keeps, per destination, as many candidates (in claim order) as its shared bucket has
  // whole tokens, and takes those tokens.
  async function takeTokens (c: pg.PoolClient, rows: DeliveryRow[], now: number): Promise<DeliveryRow[]> {
    if (deps.limitFor === undefined) return rows
    const wanted = new Map<string, number>()
    for (const r of rows) wanted.set(r.destination, (wanted.get(r.destination) ?? 0) + 1)
    const granted = new Map<string, number>()
    const limited: Array<{ destination: string, perSecond: number, burst: number, wanted: number }> = []
    for (const [destination, n] of wanted) {
      const limit = deps.limitFor(destination, rows.find((r) => r.destination === destination)!.type)
      if (limit === null) granted.set(destination, Infinity)
      else limited.push({ destination, perSecond: limit.perSecond, burst: limit.burst, wanted: n })
    }
    if (limited.length > 0) {
      const { rows: taken } = await c.query<{ destination: string, taken: number }>(PREPARED.takeTokens, [
        limited.map((l) => l.destination), limited.map((l) => l.perSecond), limited.map((l) => l.burst), limited.map((l) => l.wanted), now])
      for (const t of taken) granted.set(t.destination, t.taken)
    }
    return rows.filter((r) => {
      const left = granted.get(r.destination) ?? 0
      granted.set(r.destination, left - 1)
      return left > 0
    })
  }

  return {
    onWork: (fn) => { workListeners.push(fn) },
    start,
    async enqueue (req) {
      // The batch calls req.onCommitted once committed.
      return await run('enqueue', async () => await batched.enqueue(req))
    },
    lendSlotsFrom: (fn) => { lender = fn },
    async claim (req) {
      const { now, limit } = req
      if (limit <= 0) return []
      return await run('claim', async () => {
        if (now >= lapseDueAt) {
          await pool.query(PREPARED.lapseClaims, [now])
          lapseDueAt = now + LAPSE_EVERY_MS
        }
        return await quick(async (c) => await claimIn(c, req))
      })
    },
    async markSent (d, sentAt) {
      return await run('mark', async () => marked((await pool.query(PREPARED.markSent, [d.id, d.attempts, sentAt, deps.now()])).rowCount))
    },
    async markRetry (d, nextAttemptAt, reason, error) {
      return await run('mark', async () => {
        const { rows } = await pool.query<{ newer: number | null }>(PREPARED.markRetry,
          [d.id, d.attempts, nextAttemptAt, reason, error, deps.now(), d.destination, d.groupKey])
        if (rows.length === 0) return 'lost_claim'
        return rows[0]!.newer === null ? 'done' : 'superseded'
      })
    },
    async markDead (d, reason, error) {
      return await run('mark', async () => marked((await pool.query(PREPARED.markDead, [d.id, d.attempts, reason, error, deps.now()])).rowCount))
    },
    async markSkipped (d, reason, error) {
      return await run('mark', async () => marked((await pool.query(SQL.markSkipped, [d.id, d.attempts, reason, error, deps.now()])).rowCount))
    },
    // Several processes share this engine: a claim may be another replica's send in flight.
    // Kept for the contract; the dispatcher runs with releaseClaimsAtStart=false here.
    async releaseClaims () {
      return await run('claim', async () => (await pool.query(SQL.releaseClaims, [deps.now()])).rowCount ?? 0)
    },
    async list ({ state, limit, offset = 0 }) {
      return await run('read', async () => {
        const res = state === undefined ? await pool.query<DeliveryRow>(SQL.listAll, [limit, offset]) : await pool.query<DeliveryRow>(SQL.listByState, [state, limit, offset])
        return res.rows.map(toDelivery)
      })
    },
    async get (id) {
      return await run('read', async () => {
        const { rows } = await pool.query<DeliveryRow>(SQL.get, [id])
        return rows[0] === undefined ? null : toDelivery(rows[0])
      })
    },
    async retryDead (id, now) {
      const result = await run('replay', async () => {
        const retried = await pool.query<DeliveryRow>(SQL.retryDead, [id, now])
        if (retried.rows[0] !== undefined) return { outcome: 'retried', delivery: toDelivery(retried.rows[0]) } as const
        const { rows } = await pool.query<DeliveryRow>(SQL.get, [id])
        return rows[0] === undefined ? { outcome: 'not_found' } as const : { outcome: 'not_dead', state: rows[0].state } as const
      })
      if (result.outcome === 'retried') await pool.query(SQL.notify).catch((err: unknown) => { fail('replay', err) })
      return result
    },
    async stats (now) {
      return await run('read', async () => {
        const { rows } = await pool.query<{ priority: number, dead: boolean, n: number, oldest: number | null }>(SQL.stats)
        const active = rows.filter((r) => !r.dead)
        const of = (rank: number): { n: number, oldest: number | null } => active.find((r) => r.priority === rank) ?? { n: 0, oldest: null }
        return {
          pending: Object.fromEntries(PRIORITIES.map((p, rank) => [p, of(rank).n])) as OutboxStats['pending'],
          oldestPendingAgeMs: Object.fromEntries(PRIORITIES.map((p, rank) => {
            const oldest = of(rank).oldest
            return [p, oldest === null ? 0 : Math.max(0, now - oldest)]
          })) as OutboxStats['oldestPendingAgeMs'],
          dead: rows.filter((r) => r.dead).reduce((n, r) => n + r.n, 0)
        }
      })
    },
    async housekeeping (now, sentBefore) {
      return await run('housekeeping', async () => await tx(async (c) => {
        await c.query(SQL.heartbeat, [now])
        await c.query(SQL.pruneNotified, [sentBefore])
        await incidents.prune(c, sentBefore)
        const deliveries = (await c.query(SQL.pruneDeliveries, [sentBefore])).rowCount ?? 0
        const keys = (await c.query(SQL.pruneKeys, [now])).rowCount ?? 0
        return { deliveries, keys }
      }))
    },
    async fireDueEscalations (req) {
      // An idle poll only reads; a due timer is claimed and fired in one transaction.
      const next = await run('read', async () => await incidents.nextDueAt(pool))
      if (next === null || next > req.now) return { fired: [], nextDueAt: next }
      const result = await run('escalate', async () => await tx(async (c) => await incidents.fireDue(c, req, req.now + cfg.idempotencyWindowMs)))
      if (result.fired.some((f) => f.deliveries.some((d) => d.state === 'pending'))) await pool.query(SQL.notify).catch((err: unknown) => { fail('escalate', err) })
      return result
    },
    async applyAcknowledgement (req, opts) {
      const result = await run('acknowledge', async () => await tx(async (c) => await incidents.acknowledge(c, req, opts, deps.now())))
      if (result.outcome === 'applied') await pool.query(SQL.notify).catch((err: unknown) => { fail('acknowledge', err) })
      return result
    },
    async listIncidents (opts) {
      return await run('read', async () => await incidents.list(pool, opts))
    },
    async getIncident (id) {
      return await run('read', async () => await incidents.get(pool, id))
    },
    async findIncident (receiver, groupKey) {
      return await run('read', async () => await incidents.find(pool, receiver, groupKey))
    },
    async incidentStats (now) {
      return await run('read', async () => await incidents.stats(pool, now))
    },
    async slackMessage (incidentId, destination) {
      return await run('read', async () => await incidents.slackMessage(pool, incidentId, destination))
    },
    async saveSlackMessage (m) {
      await run('mark', async () => { await incidents.saveSlackMessage(pool, m) })
    },
    unavailable: () => closed ? 'store is closed' : down ?? failure,
    // The database owns durability; nothing this process sees needs a restart to clear.
    fatal: () => null,
    async close () {
      if (closed) return
      closed = true
      await listener.close()
      await pool.end()
    }
  }
}
