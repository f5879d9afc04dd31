import type pg from 'pg'
import { MAX_ESCALATION_REPEATS, priorityRank } from '../../config/catalog-schema.js'
import { heldBackDestinations, itemOutcome, webhookTimeline } from '../enqueue-plan.js'
import { toIncident, type IncidentRow } from '../incident-row.js'
import { toRef, type RefRow } from '../delivery-row.js'
import {
  priorityFromRank,
  type ClaimRequest, type Delivery, type EnqueueItem, type EnqueueRequest, type EnqueueResult, type IncidentChange,
  type NotifiedDestination, type SlotLoan
} from '../types.js'
import { WORK_CHANNEL } from './listen.js'

// Group commit for the PostgreSQL enqueue: the webhooks waiting when a transaction starts are
// stored together, in four round trips whatever their number (BEGIN; the locked reads of
// migration 0006; one statement writing every delivery, key, notified destination and incident
// change; COMMIT), plus the claim of what it made due when this process lends it free send
// slots (see claimAlong). One transaction runs at a time per process; what arrives meanwhile
// is the next one. A group is in a transaction at most once (its second webhook plans from what the
// first wrote, so it waits for the next). If a transaction of several fails, each of its
// webhooks is retried alone, so one that cannot be stored fails by itself.

export interface BatchedEnqueue {
  enqueue: (req: EnqueueRequest) => Promise<EnqueueResult>
}

export interface BatchedEnqueueDeps {
  // Runs `fn` in one transaction on a pool client (BEGIN … COMMIT, ROLLBACK on error);
  // customPlans: see TransactionOptions in connection.ts.
  transaction: <T>(fn: (c: pg.PoolClient) => Promise<T>, opts: { customPlans: boolean }) => Promise<T>
  now: () => number
  idempotencyWindowMs: number
  // Sent with the NOTIFY of new work: this replica's id, which its own listener ignores.
  notifyPayload: string
  // Observes each transaction (tests check that webhooks share one).
  onBatch?: (size: number) => void
  // Free send slots of this process, lent to each transaction: what it makes due is claimed
  // before its COMMIT (by `claim`, the store's claim statements) and sent as it returns.
  claimAlong?: {
    lend: () => SlotLoan | null
    claim: (c: pg.PoolClient, req: ClaimRequest) => Promise<Delivery[]>
    // Returns claimed rows to pending after the transaction failed: its COMMIT may have gone
    // through unseen (the connection died with the reply), and then only the lease would
    // bring them back. Rows that were rolled back are not there to match. Never throws.
    unclaim: (claimed: Delivery[]) => Promise<void>
  }
}

interface Waiting { req: EnqueueRequest, resolve: (r: EnqueueResult) => void, reject: (e: unknown) => void }

interface Inputs {
  open: IncidentRow[]
  held: Array<RefRow & { group_key: string }>
  notified: Array<{ group_key: string, destination: string, type: NotifiedDestination['type'], priority: number }>
}

// One row per delivery to insert; `ord` keeps ids in request order.
interface ItemRow {
  ord: number, destination: string, type: string, priority: number, key: string, group_key: string, body: string,
  status: EnqueueItem['status'], state: 'pending' | 'skipped', last_reason: string | null, next_attempt_at: number,
  deferred_until: number | null, received_at: number
}

interface Planned {
  req: EnqueueRequest
  result: EnqueueResult
  // Keys of this webhook's rows, and which of them are resolves held back (resolved_while_deferred).
  keys: Array<{ key: string, item: EnqueueItem, state: 'pending' | 'skipped', held: boolean }>
  open: IncidentRow | undefined
  change: IncidentChange | null
  // The notifications held for business hours (timeline events of the incident).
  deferred: Array<{ destination: string, until: number, key: string }>
}

// The same NOTIFY, on its own, when a claim along filled every slot it was lent.
const NOTIFY = { name: 'alert_enricher_enqueue_notify', text: `SELECT pg_notify('${WORK_CHANNEL}', $1::text)` }

const INPUTS = { name: 'alert_enricher_enqueue_inputs', text: 'SELECT alert_enricher_enqueue_inputs($1::text[], $2::text[], $3::text[], $4::bigint) AS inputs' }

// $1 deliveries (ItemRow[]), $2 now, $3 key expiry, $4 groups resolved (no destination counts
// as notified after), $5 incidents opened, $6 raised, $7 ids resolved, $8 timeline events,
// $9 the NOTIFY payload (null: no NOTIFY; the claim along decides).
// Every part touches rows of its own group only, and a group is in a batch once, so the
// sub-statements never write one row twice. Groups are looked up by md5(group_key), which the
// indexes hold (migration 0008), and by the key itself.
const WRITE = {
  name: 'alert_enricher_enqueue_write',
  text: `WITH item AS (
      SELECT * FROM json_to_recordset($1::json) AS x(ord int, destination text, type text, priority smallint, key text,
        group_key text, body text, status text, state text, last_reason text, next_attempt_at bigint, deferred_until bigint,
        received_at bigint)),
    k AS (
      INSERT INTO idempotency_keys (key, expires_at) SELECT key, $3::bigint FROM item
      ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE idempotency_keys.expires_at <= $2::bigint
      RETURNING key),
    ins AS (
      INSERT INTO deliveries (destination, type, priority, idempotency_key, group_key, body, state,
        next_attempt_at, received_at, created_at, updated_at, last_reason, deferred_until)
      SELECT i.destination, i.type, i.priority, i.key, i.group_key, i.body, i.state, i.next_attempt_at, i.received_at,
        $2::bigint, $2::bigint, i.last_reason, i.deferred_until
      FROM item AS i JOIN k ON k.key = i.key ORDER BY i.ord
      RETURNING id, idempotency_key, destination, group_key, state),
    sup AS (
      UPDATE deliveries AS d SET state = 'skipped', last_reason = 'superseded',
        last_error = 'superseded by delivery ' || ins.id, updated_at = $2::bigint
      FROM ins WHERE ins.state = 'pending' AND md5(d.group_key) = md5(ins.group_key) AND d.group_key = ins.group_key
        AND d.destination = ins.destination
        AND d.state = 'pending' AND d.id < ins.id
      RETURNING ins.idempotency_key AS by_key, d.id, d.destination, d.type, d.priority),
    rem AS (
      INSERT INTO group_notified (group_key, destination, type, priority, updated_at)
      SELECT DISTINCT ON (i.group_key, i.destination) i.group_key, i.destination, i.type, i.priority, $2::bigint
      FROM item AS i JOIN ins ON ins.idempotency_key = i.key
      WHERE i.status = 'firing' AND i.state = 'pending' AND i.deferred_until IS NULL
      ORDER BY i.group_key, i.destination, i.priority
      ON CONFLICT (md5(group_key), destination) DO UPDATE SET type = EXCLUDED.type,
        priority = LEAST(group_notified.priority, EXCLUDED.priority), updated_at = EXCLUDED.updated_at
        WHERE group_notified.group_key = EXCLUDED.group_key
      RETURNING 1),
    forgot AS (DELETE FROM group_notified WHERE md5(group_key) = ANY(ARRAY(SELECT md5(g) FROM unnest($4::text[]) AS g))
      AND group_key = ANY($4::text[]) RETURNING 1),
    opened AS (
      INSERT INTO incidents (receiver, group_key, dedup_key, alertname, team, title, priority, state, opened_at,
        triggered_at, respond_by, repeats_left, escalate_to, repeat_every_ms, next_escalation_at, updated_at)
      SELECT x.receiver, x.group_key, x.dedup_key, x.alertname, x.team, x.title, x.priority, 'triggered', $2::bigint,
        $2::bigint, x.respond_by, ${MAX_ESCALATION_REPEATS}, x.escalate_to, x.repeat_every_ms, x.respond_by, $2::bigint
      FROM json_to_recordset($5::json) AS x(receiver text, group_key text, dedup_key text, alertname text, team text,
        title text, priority smallint, respond_by bigint, escalate_to text, repeat_every_ms bigint)
      RETURNING id, receiver, group_key),
    -- The clock re-runs from the raise only if that is sooner; an armed timer moves with it.
    raised AS (
      UPDATE incidents AS i SET priority = x.priority, respond_by = LEAST(i.respond_by, x.respond_by), alertname = x.alertname,
        team = x.team, escalate_to = x.escalate_to, repeat_every_ms = x.repeat_every_ms, updated_at = $2::bigint,
        next_escalation_at = CASE WHEN i.state = 'triggered' THEN LEAST(COALESCE(i.next_escalation_at, x.respond_by), x.respond_by) END,
        repeats_left = CASE WHEN i.state = 'triggered' THEN ${MAX_ESCALATION_REPEATS} ELSE i.repeats_left END
      FROM json_to_recordset($6::json) AS x(id bigint, priority smallint, respond_by bigint, alertname text, team text,
        escalate_to text, repeat_every_ms bigint)
      WHERE i.id = x.id
      RETURNING 1),
    resolved AS (
      UPDATE incidents SET state = 'resolved', resolved_at = $2::bigint, next_escalation_at = NULL, updated_at = $2::bigint
      WHERE id = ANY($7::bigint[]) AND state <> 'resolved'
      RETURNING 1),
    -- An event of an incident this batch opens names it by group (its id is not known yet).
    events AS (
      INSERT INTO incident_events (incident_id, at, kind, detail)
      SELECT COALESCE(x.incident_id, o.id), $2::bigint, x.kind, x.detail
      FROM json_to_recordset($8::json) AS x(ord int, incident_id bigint, receiver text, group_key text, kind text, detail text, key text)
        LEFT JOIN opened AS o ON x.incident_id IS NULL AND o.receiver = x.receiver AND o.group_key = x.group_key
      -- A hold is an event only if its delivery was inserted (not a duplicate).
      WHERE x.key IS NULL OR x.key IN (SELECT idempotency_key FROM ins)
      ORDER BY x.ord
      RETURNING 1),
    -- Tells the other replicas' dispatchers when the transaction commits ($9: this replica's
    -- id; its own dispatcher is woken by the caller).
    note AS (SELECT pg_notify('${WORK_CHANNEL}', $9::text) FROM (SELECT 1 FROM ins WHERE state = 'pending' LIMIT 1) AS p
      WHERE $9::text IS NOT NULL)
    SELECT COALESCE((SELECT json_agg(json_build_object('key', idempotency_key, 'id', id)) FROM ins), '[]') AS inserted,
      COALESCE((SELECT json_agg(sup ORDER BY sup.id) FROM sup), '[]') AS superseded,
      COALESCE((SELECT json_agg(json_build_object('receiver', receiver, 'groupKey', group_key, 'id', id)) FROM opened), '[]') AS opened,
      (SELECT count(*) FROM rem) + (SELECT count(*) FROM forgot) + (SELECT count(*) FROM raised) + (SELECT count(*) FROM resolved)
        + (SELECT count(*) FROM events) + (SELECT count(*) FROM note) AS side_effects`
}

// A driver or socket error (no SQLSTATE), or a connection, resource or operator class:
// the database is unreachable or unwell, not this batch's data.
export function databaseUnavailable (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string' || !/^[0-9][0-9A-Z]{4}$/.test(code)) return true
  return ['08', '53', '57', '58'].includes(code.slice(0, 2))
}

interface Written {
  inserted: Array<{ key: string, id: number }>
  superseded: Array<RefRow & { by_key: string }>
  opened: Array<{ receiver: string, groupKey: string, id: number }>
}

export function createBatchedEnqueue (deps: BatchedEnqueueDeps): BatchedEnqueue {
  let queue: Waiting[] = []
  let running = false
  // Thrown by a webhook's own plan or incident decision (not by the database).
  const planErrors = new WeakSet<object>()

  function next (): void {
    if (running || queue.length === 0) return
    // The first webhook of each group; a group's later ones wait for the next transaction.
    const groups = new Set<string>()
    const batch: Waiting[] = []
    const later: Waiting[] = []
    for (const w of queue) {
      if (groups.has(w.req.groupKey)) later.push(w)
      else {
        groups.add(w.req.groupKey)
        batch.push(w)
      }
    }
    queue = later
    running = true
    void run(batch).finally(() => {
      running = false
      next()
    })
  }

  async function run (batch: Waiting[]): Promise<void> {
    try {
      // Lent before the write, which then knows whether the other replicas need a NOTIFY.
      const along = deps.claimAlong
      const loan = along?.lend() ?? null
      let claimed: Delivery[] = []
      let results: EnqueueResult[]
      try {
        results = await deps.transaction(async (c) => {
          const now = deps.now()
          const stored = await store(c, batch.map((w) => w.req), now, loan === null)
          if (along !== undefined && loan !== null && stored.some((r) => r.inserted.some((d) => d.state === 'pending'))) {
            // Never earlier than the write: what it made due now must be due to the claim.
            const request = loan.request()
            claimed = await along.claim(c, { ...request, now: Math.max(request.now, now) })
          }
          // Every lent slot filled: more may be due than this replica can take now.
          if (loan !== null && claimed.length === loan.limit) await c.query(NOTIFY, [deps.notifyPayload])
          return stored
        // A batch's statements are planned for its size and the tables as they are; a lone
        // webhook (light load, where latency counts) reuses the cached plans.
        }, { customPlans: batch.length > 1 })
      } catch (err) {
        loan?.release()
        if (along !== undefined && claimed.length > 0) await along.unclaim(claimed)
        throw err
      }
      loan?.launch(claimed)
      deps.onBatch?.(batch.length)
      batch.forEach((w, i) => { w.resolve(results[i] as EnqueueResult) })
      // With a slot to spare, the claim along took all that was due: a claim round now (here
      // or at another replica) would find nothing.
      if (loan === null || claimed.length === loan.limit) for (const w of batch) w.req.onCommitted?.()
    } catch (err) {
      // Alone, each webhook stands or falls by itself; but when the database itself is away,
      // all would fail alike (each after its own connect timeout): they are refused together.
      if (batch.length === 1 || (!planErrors.has(err as object) && databaseUnavailable(err))) {
        for (const w of batch) w.reject(err)
        return
      }
      for (const w of batch) await run([w])
    }
  }

  async function store (c: pg.PoolClient, reqs: EnqueueRequest[], now: number, notify: boolean): Promise<EnqueueResult[]> {
    const groups = reqs.map((r) => r.groupKey)
    const { rows } = await c.query<{ inputs: Inputs }>(INPUTS, [
      groups, reqs.map((r) => r.incident?.receiver ?? null), reqs.filter((r) => r.resolved).map((r) => r.groupKey), now])
    const inputs = rows[0]!.inputs
    const items: ItemRow[] = []
    const keysInBatch = new Set<string>()
    const planned = reqs.map((req): Planned => {
      try {
        return plan(req)
      } catch (err) {
        if (typeof err === 'object' && err !== null) planErrors.add(err)
        throw err
      }
    })
    function plan (req: EnqueueRequest): Planned {
      const result: EnqueueResult = { inserted: [], duplicates: [], superseded: [], resolvedWhileDeferred: [] }
      const notified = inputs.notified.filter((n) => n.group_key === req.groupKey)
        .map((n): NotifiedDestination => ({ destination: n.destination, type: n.type, priority: priorityFromRank(n.priority) }))
      if (req.resolved) result.resolvedWhileDeferred = inputs.held.filter((h) => h.group_key === req.groupKey).map(toRef)
      const heldBack = heldBackDestinations(result.resolvedWhileDeferred, notified)
      const keys: Planned['keys'] = []
      const deferredItems: Planned['deferred'] = []
      for (const item of req.plan(notified)) {
        // A key planned twice is a duplicate of its first, as if enqueued one after the other.
        if (keysInBatch.has(item.idempotencyKey)) {
          result.duplicates.push(item.idempotencyKey)
          continue
        }
        keysInBatch.add(item.idempotencyKey)
        const { state, held, deferred, lastReason, nextAttemptAt, deferredUntil } = itemOutcome(item, heldBack, now)
        keys.push({ key: item.idempotencyKey, item, state, held })
        if (deferred) deferredItems.push({ destination: item.destination, until: nextAttemptAt, key: item.idempotencyKey })
        items.push({
          ord: items.length, destination: item.destination, type: item.type, priority: priorityRank(item.priority), key: item.idempotencyKey,
          group_key: req.groupKey, body: item.body, status: item.status, state, last_reason: lastReason,
          next_attempt_at: nextAttemptAt, deferred_until: deferredUntil, received_at: req.receivedAt
        })
      }
      const open = req.incident === undefined ? undefined : inputs.open.find((o) => o.receiver === req.incident!.receiver && o.group_key === req.groupKey)
      const change = req.incident === undefined ? null : req.incident.decide(open === undefined ? null : toIncident(open))
      return { req, result, keys, open, change, deferred: deferredItems }
    }

    const opens: unknown[] = []
    const raises: unknown[] = []
    const resolves: number[] = []
    const events: Array<{ ord: number, incident_id: number | null, receiver: string, group_key: string, kind: string, detail: string, key: string | null }> = []
    const event = (p: Planned, incidentId: number | null, kind: string, detail: string, key: string | null = null): void => {
      events.push({ ord: events.length, incident_id: incidentId, receiver: p.req.incident!.receiver, group_key: p.req.groupKey, kind, detail, key })
    }
    for (const p of planned) {
      const { change, open } = p
      if (change?.kind === 'open') {
        opens.push({
          receiver: p.req.incident!.receiver, group_key: p.req.groupKey, dedup_key: change.dedupKey, alertname: change.alertname, team: change.team,
          title: change.title, priority: priorityRank(change.priority), respond_by: change.respondBy,
          escalate_to: JSON.stringify(change.escalation.escalateTo), repeat_every_ms: change.escalation.repeatEveryMs
        })
        // Its 'opened' timeline event is the row itself (see get).
      } else if (change?.kind === 'raise' && open !== undefined) {
        raises.push({
          id: open.id, priority: priorityRank(change.priority), respond_by: change.respondBy, alertname: change.alertname, team: change.team,
          escalate_to: JSON.stringify(change.escalation.escalateTo), repeat_every_ms: change.escalation.repeatEveryMs
        })
        event(p, open.id, 'priority_raised', webhookTimeline.raised(open.priority, change.priority, Math.min(open.respond_by, change.respondBy)))
      } else if (change?.kind === 'resolve' && open !== undefined) {
        resolves.push(open.id)
        event(p, open.id, 'resolved', webhookTimeline.resolved)
      }
      const incidentId = change?.kind === 'open' ? null : open?.id
      if (incidentId !== undefined && change?.kind !== 'resolve') {
        for (const h of p.deferred) event(p, incidentId, 'deferred', webhookTimeline.deferred(h.destination, h.until), h.key)
      }
    }

    const { rows: [written] } = await c.query<Written>(WRITE, [
      JSON.stringify(items), now, now + deps.idempotencyWindowMs, reqs.filter((r) => r.resolved).map((r) => r.groupKey),
      JSON.stringify(opens), JSON.stringify(raises), resolves, JSON.stringify(events), notify ? deps.notifyPayload : null])
    const ids = new Map(written!.inserted.map((r) => [r.key, r.id]))
    return planned.map((p) => {
      const { result } = p
      for (const { key, item, state, held } of p.keys) {
        const id = ids.get(key)
        if (id === undefined) {
          result.duplicates.push(key)
          continue
        }
        const inserted = { id, destination: item.destination, type: item.type, priority: item.priority }
        if (held) result.resolvedWhileDeferred.push(inserted)
        else result.inserted.push({ ...inserted, state })
      }
      const mine = new Set(p.keys.map((k) => k.key))
      result.superseded.push(...written!.superseded.filter((s) => mine.has(s.by_key)).map(toRef))
      const change = p.change
      if (change?.kind === 'open') {
        const o = written!.opened.find((x) => x.receiver === p.req.incident!.receiver && x.groupKey === p.req.groupKey)
        if (o !== undefined) result.incident = { id: o.id, change: 'open' }
      } else if (change !== null && p.open !== undefined) {
        result.incident = { id: p.open.id, change: change.kind }
      }
      return result
    })
  }

  return {
    async enqueue (req) {
      return await new Promise<EnqueueResult>((resolve, reject) => {
        queue.push({ req, resolve, reject })
        next()
      })
    }
  }
}
