import type pg from 'pg'
import { MAX_ESCALATION_REPEATS, PRIORITIES } from '../../config/catalog-schema.js'
import { sha256Hex } from '../../sha256.js'
import type {
  AcknowledgementRequest, AcknowledgementResult, EscalationTarget, Incident, IncidentEvent, IncidentEventKind,
  IncidentState, IncidentWithTimeline
} from '../../incidents/types.js'
import {
  priorityFromRank,
  type AcknowledgeOptions, type FiredEscalation, type FireEscalationsRequest, type FireEscalationsResult,
  type IncidentStats, type SaveSlackMessage, type SlackMessage
} from '../types.js'
import { incidentGroupKey, iso, toIncident, utc, type IncidentRow } from '../incident-row.js'
import { acknowledgementReply, escalationReply, replyBody, slackFollowUpKeys, slackRefreshBody } from '../../incidents/slack-followups.js'
import { toSlackMessage, type SlackMessageRow } from '../slack-message-row.js'

// The incident half of the PostgreSQL engine, mirroring src/store/sqlite/incidents.ts (what a
// webhook does to its incident is written with the batch, in enqueue.ts): one
// statement per step, each run on the client of the store's transaction (or the pool for
// reads). Due escalation timers are claimed with FOR UPDATE SKIP LOCKED, so replicas never
// fire the same one; the escalation's idempotency key is a second guard.

type Db = pg.Pool | pg.PoolClient


// Group lookups compare md5(group_key), which the indexes hold (migration 0008), and the key itself.
const SQL = {
  byId: 'SELECT * FROM incidents WHERE id = $1',
  byIdLocked: 'SELECT * FROM incidents WHERE id = $1 FOR UPDATE',
  byDedupKeyLocked: 'SELECT * FROM incidents WHERE dedup_key = $1 ORDER BY id DESC LIMIT 1 FOR UPDATE',
  // Named columns, not *: it is a prepared statement (see find), which must keep its result
  // columns when a later migration adds one.
  latest: `SELECT id, receiver, group_key, dedup_key, alertname, team, title, priority, state, opened_at, triggered_at, respond_by,
      acknowledged_by, acknowledged_via, acknowledged_at, breached_at, escalations, repeats_left, escalate_to, repeat_every_ms,
      next_escalation_at, resolved_at, updated_at
    FROM incidents WHERE dedup_key = $1 AND receiver = $2 AND group_key = $3 ORDER BY id DESC LIMIT 1`,
  // The group's latest queued webhook to a destination told of it: what an escalation renders.
  lastBody: `SELECT d.body FROM group_notified AS n JOIN deliveries AS d ON d.destination = n.destination
    WHERE md5(n.group_key) = md5($1) AND n.group_key = $1 AND md5(d.group_key) = md5($1) AND d.group_key = $1
    ORDER BY d.id DESC LIMIT 1`,
  // The clock re-runs from the raise only if that is sooner; an armed timer moves with it.
  // $1 id, $2 priority, $3 respondBy, $4 alertname, $5 team, $6 escalateTo, $7 repeatEveryMs, $8 now, $9 repeats
  resolve: `UPDATE incidents SET state = 'resolved', resolved_at = $2, next_escalation_at = NULL, updated_at = $2
    WHERE id = $1 AND state <> 'resolved'`,
  acknowledge: `UPDATE incidents SET state = 'acknowledged', acknowledged_by = $2, acknowledged_via = $3,
      acknowledged_at = $4, next_escalation_at = NULL, updated_at = $5 WHERE id = $1 AND state = 'triggered'`,
  unacknowledge: `UPDATE incidents SET state = 'triggered', triggered_at = $2, respond_by = $3,
      next_escalation_at = $3, repeats_left = $4, acknowledged_by = NULL, acknowledged_via = NULL,
      acknowledged_at = NULL, updated_at = $5 WHERE id = $1 AND state = 'acknowledged'`,
  event: 'INSERT INTO incident_events (incident_id, at, kind, detail) VALUES ($1, $2, $3, $4)',
  events: 'SELECT at, kind AS event, detail FROM incident_events WHERE incident_id = $1 ORDER BY at, id',
  // The group's sent notifications while the incident was open, and the incident's own.
  notified: `SELECT destination, sent_at AS at FROM deliveries
    WHERE state = 'sent' AND updated_at >= $3 AND md5(group_key) IN (md5($1), md5($2)) AND group_key IN ($1, $2)
      AND sent_at <= $4 ORDER BY sent_at, id`,
  // Claimed: a timer another replica is firing is skipped, and once it commits the re-checked
  // condition no longer holds (the timer moved or was cleared).
  due: `SELECT * FROM incidents WHERE next_escalation_at IS NOT NULL AND next_escalation_at <= $1
    ORDER BY next_escalation_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
  nextDue: 'SELECT min(next_escalation_at) AS next FROM incidents WHERE next_escalation_at IS NOT NULL',
  escalated: `UPDATE incidents SET escalations = $2, breached_at = COALESCE(breached_at, $3),
      next_escalation_at = $4, repeats_left = $5, updated_at = $6 WHERE id = $1`,
  // Escalation destinations hear the rest of the group (its resolve) like any notified one.
  remember: `INSERT INTO group_notified (group_key, destination, type, priority, updated_at) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (md5(group_key), destination) DO UPDATE SET priority = LEAST(group_notified.priority, EXCLUDED.priority),
      updated_at = EXCLUDED.updated_at WHERE group_notified.group_key = EXCLUDED.group_key`,
  pagerDutyNotified: "SELECT destination FROM group_notified WHERE md5(group_key) = md5($1) AND group_key = $1 AND type = 'pagerduty' ORDER BY destination",
  slackNotified: "SELECT destination FROM group_notified WHERE md5(group_key) = md5($1) AND group_key = $1 AND type = 'slack' ORDER BY destination",
  // The destination's latest queued webhook of the group: what an update of its message renders.
  latestBody: `SELECT body, received_at AS "receivedAt" FROM deliveries WHERE md5(group_key) = md5($1) AND group_key = $1
    AND destination = $2 ORDER BY id DESC LIMIT 1`,
  slackMessage: 'SELECT * FROM slack_messages WHERE incident_id = $1 AND destination = $2',
  // A new ts is a new post; the same ts an update (posted_at stays).
  saveSlackMessage: `INSERT INTO slack_messages (incident_id, destination, channel, ts, posted_at, last_update_at)
    VALUES ($1, $2, $3, $4, $5, $5)
    ON CONFLICT (incident_id, destination) DO UPDATE SET channel = EXCLUDED.channel, ts = EXCLUDED.ts,
      posted_at = CASE WHEN slack_messages.ts = EXCLUDED.ts THEN slack_messages.posted_at ELSE EXCLUDED.posted_at END,
      last_update_at = EXCLUDED.last_update_at`,
  pruneSlackMessages: `DELETE FROM slack_messages WHERE incident_id IN (SELECT id FROM incidents
    WHERE resolved_at IS NOT NULL AND resolved_at < $1 LIMIT 1000)`,
  takeKey: `INSERT INTO idempotency_keys (key, expires_at) VALUES ($1, $2)
    ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE idempotency_keys.expires_at <= $3 RETURNING key`,
  // One incident delivery: takes its idempotency key and, if taken, inserts the row.
  // $1 destination, $2 type, $3 priority, $4 key, $5 group, $6 body, $7 now, $8 received_at,
  // $9 key expiry, $10 state, $11 last_reason.
  insertKeyed: `WITH k AS (
      INSERT INTO idempotency_keys (key, expires_at) VALUES ($4, $9)
      ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE idempotency_keys.expires_at <= $7
      RETURNING key)
    INSERT INTO deliveries (destination, type, priority, idempotency_key, group_key, body, state,
      next_attempt_at, received_at, created_at, updated_at, last_reason)
    SELECT $1, $2, $3::smallint, $4, $5, $6, $10::text, $7::bigint, $8::bigint, $7::bigint, $7::bigint, $11::text FROM k
    RETURNING id`,
  list: `SELECT * FROM incidents WHERE ($1::text IS NULL OR state = $1) AND ($2::smallint IS NULL OR priority = $2)
    ORDER BY id DESC LIMIT $3 OFFSET $4`,
  counts: 'SELECT priority, state, count(*) AS n FROM incidents GROUP BY priority, state',
  deferredCounts: `SELECT priority, count(*) AS n FROM deliveries
    WHERE deferred_until IS NOT NULL AND state = 'pending' AND deferred_until > $1 GROUP BY priority`,
  pruneEvents: `DELETE FROM incident_events WHERE incident_id IN (SELECT id FROM incidents
    WHERE resolved_at IS NOT NULL AND resolved_at < $1 LIMIT 1000)`,
  pruneIncidents: `DELETE FROM incidents WHERE id IN (SELECT id FROM incidents
    WHERE resolved_at IS NOT NULL AND resolved_at < $1 LIMIT 1000)`
}

async function one (db: Db, sql: string | { name: string, text: string }, args: unknown[]): Promise<IncidentRow | undefined> {
  return (await db.query<IncidentRow>(sql, args)).rows[0]
}

async function event (c: Db, id: number, at: number, kind: IncidentEventKind, detail: string): Promise<void> {
  await c.query(SQL.event, [id, at, kind, detail])
}

// Read-only: the earliest armed timer (an idle poll writes nothing).
export async function nextDueAt (db: Db): Promise<number | null> {
  return (await db.query<{ next: number | null }>(SQL.nextDue)).rows[0]?.next ?? null
}

export async function fireDue (c: Db, req: FireEscalationsRequest, expiresAt: number): Promise<FireEscalationsResult> {
  const { now } = req
  const fired: FiredEscalation[] = []
  for (const r of (await c.query<IncidentRow>(SQL.due, [now, req.limit])).rows) {
    const dueAt = r.next_escalation_at ?? now
    const number = r.escalations + 1
    const breach = r.breached_at === null
    const priority = priorityFromRank(r.priority)
    if (breach) await event(c, r.id, dueAt, 'breached', `not acknowledged by the deadline ${utc(r.respond_by)}`)
    const body = JSON.stringify({ escalation: { incidentId: r.id, number, priority, respondBy: r.respond_by, firedAt: now, title: r.title, receiver: r.receiver, groupKey: r.group_key }, webhook: await lastWebhook(c, r.group_key) })
    const deliveries: FiredEscalation['deliveries'] = []
    const targets = JSON.parse(r.escalate_to) as EscalationTarget[]
    const reply = { kind: `escalation-${number}`, text: escalationReply(number, r.respond_by, targets.map((t) => t.destination)), broadcast: true }
    const followed = await slackFollowUps(c, r, req.isSlackApp, reply, expiresAt, now, deliveries)
    for (const t of targets) {
      // A bot-token channel told of the group hears it in its incident message's thread.
      if (followed.has(t.destination)) continue
      const idempotencyKey = `${incidentGroupKey(r.id)}:escalation:${number}:${t.destination}`
      const configured = req.isConfigured(t.destination)
      const state = configured ? 'pending' : 'skipped'
      const { rows } = await c.query<{ id: number }>(SQL.insertKeyed, [t.destination, t.type, r.priority, idempotencyKey, incidentGroupKey(r.id), body,
        now, dueAt, expiresAt, state, configured ? null : 'not_configured'])
      if (rows[0] === undefined) continue
      if (configured) await c.query(SQL.remember, [r.group_key, t.destination, t.type, r.priority, now])
      deliveries.push({ id: rows[0].id, destination: t.destination, type: t.type, priority, state })
    }
    if (deliveries.length > 0) await event(c, r.id, now, 'escalated', `escalation ${number} to ${deliveries.map((d) => d.destination).join(', ')}`)
    const repeat = r.repeat_every_ms !== null && r.repeats_left > 0
    // After a long outage a repeat is due one interval from now, not in a burst.
    const every = r.repeat_every_ms ?? 0
    const next = !repeat ? null : dueAt + every > now ? dueAt + every : now + every
    await c.query(SQL.escalated, [r.id, number, dueAt, next, repeat ? r.repeats_left - 1 : r.repeats_left, now])
    fired.push({ incidentId: r.id, priority, number, breach, lateMs: Math.max(0, now - dueAt), deliveries })
  }
  return { fired, nextDueAt: await nextDueAt(c) }
}

export async function acknowledge (c: Db, req: AcknowledgementRequest, opts: AcknowledgeOptions, now: number): Promise<AcknowledgementResult> {
  if (req.eventId !== undefined && (await c.query(SQL.takeKey, [`pagerduty-event:${req.eventId}`, now + opts.eventKeyWindowMs, now])).rowCount !== 1) {
    return { outcome: 'duplicate' }
  }
  const r = req.incidentId !== undefined
    ? await one(c, SQL.byIdLocked, [req.incidentId])
    : req.dedupKey !== undefined ? await one(c, SQL.byDedupKeyLocked, [req.dedupKey]) : undefined
  if (r === undefined) return { outcome: 'unknown_incident' }
  const via = req.via === 'api' ? 'the API' : req.via === 'slack' ? 'Slack' : 'PagerDuty'
  let changed = false
  if (req.action === 'acknowledge') {
    changed = (await c.query(SQL.acknowledge, [r.id, req.by, req.via, req.at, now])).rowCount === 1
    if (changed) {
      await event(c, r.id, req.at, 'acknowledged', `acknowledged by ${req.by} via ${via}`)
      if (req.via !== 'pagerduty') await tellPagerDuty(c, r, req, opts, now)
    }
  } else if (req.action === 'unacknowledge') {
    changed = (await c.query(SQL.unacknowledge, [r.id, req.at, opts.restartClock(toIncident(r), req.at), MAX_ESCALATION_REPEATS, now])).rowCount === 1
    if (changed) await event(c, r.id, req.at, 'unacknowledged', `unacknowledged by ${req.by} via ${via}; the response clock runs again`)
  } else {
    changed = (await c.query(SQL.resolve, [r.id, req.at])).rowCount === 1
    if (changed) await event(c, r.id, req.at, 'resolved', `resolved by ${req.by} via ${via}`)
  }
  if (changed) {
    const reply = { kind: `${req.action}:${req.at}`, text: acknowledgementReply(req.action, req.by, req.via, req.at), broadcast: false }
    await slackFollowUps(c, r, opts.isSlackApp, reply, now + opts.eventKeyWindowMs, now, [])
  }
  const incident = toIncident((await one(c, SQL.byId, [r.id]))!)
  return { outcome: changed ? 'applied' : 'no_change', incident }
}

// For each bot-token Slack destination told of the group: an update of its incident message
// (in the group's order) and a reply in its thread (the incident's own group). Returns the
// destinations followed up; the replies are added to `out`.
async function slackFollowUps (c: Db, r: IncidentRow, isSlackApp: ((d: string) => boolean) | undefined,
  reply: { kind: string, text: string, broadcast: boolean }, expiresAt: number, now: number, out: FiredEscalation['deliveries']): Promise<Set<string>> {
  const followed = new Set<string>()
  if (isSlackApp === undefined) return followed
  for (const { destination } of (await c.query<{ destination: string }>(SQL.slackNotified, [r.group_key])).rows) {
    if (!isSlackApp(destination)) continue
    const latest = (await c.query<{ body: string, receivedAt: number }>(SQL.latestBody, [r.group_key, destination])).rows[0]
    const refresh = latest === undefined ? undefined : slackRefreshBody(latest)
    if (refresh === undefined) continue
    followed.add(destination)
    const own = incidentGroupKey(r.id)
    const keys = slackFollowUpKeys(own, reply.kind, destination)
    await c.query(SQL.insertKeyed, [destination, 'slack', r.priority, keys.update, r.group_key, refresh,
      now, now, expiresAt, 'pending', null])
    const { rows } = await c.query<{ id: number }>(SQL.insertKeyed, [destination, 'slack', r.priority, keys.reply, own,
      replyBody(r.id, reply.text, reply.broadcast), now, now, expiresAt, 'pending', null])
    if (rows[0] !== undefined) out.push({ id: rows[0].id, destination, type: 'slack', priority: priorityFromRank(r.priority), state: 'pending' })
  }
  return followed
}

export async function slackMessage (db: Db, incidentId: number, destination: string): Promise<SlackMessage | null> {
  const m = (await db.query<SlackMessageRow>(SQL.slackMessage, [incidentId, destination])).rows[0]
  return m === undefined ? null : toSlackMessage(m)
}

export async function saveSlackMessage (db: Db, m: SaveSlackMessage): Promise<void> {
  await db.query(SQL.saveSlackMessage, [m.incidentId, m.destination, m.channel, m.ts, m.at])
}

// An Events v2 acknowledge for each PagerDuty destination told of the group.
async function tellPagerDuty (c: Db, r: IncidentRow, req: AcknowledgementRequest, opts: AcknowledgeOptions, now: number): Promise<void> {
  const body = JSON.stringify({ acknowledge: { incidentId: r.id, dedupKey: r.dedup_key, by: req.by, via: req.via } })
  for (const { destination } of (await c.query<{ destination: string }>(SQL.pagerDutyNotified, [r.group_key])).rows) {
    const configured = opts.isConfigured(destination)
    await c.query(SQL.insertKeyed, [destination, 'pagerduty', r.priority, `${incidentGroupKey(r.id)}:acknowledge:${req.at}:${destination}`,
      incidentGroupKey(r.id), body, now, now, now + opts.eventKeyWindowMs, configured ? 'pending' : 'skipped', configured ? null : 'not_configured'])
  }
}

export async function list (db: Db, opts: { state?: IncidentState, priority?: string, limit: number, offset?: number }): Promise<Incident[]> {
  const priority = opts.priority === undefined ? null : PRIORITIES.indexOf(opts.priority as Incident['priority'])
  const { rows } = await db.query<IncidentRow>(SQL.list, [opts.state ?? null, priority, opts.limit, opts.offset ?? 0])
  return rows.map(toIncident)
}

export async function get (db: Db, id: number): Promise<IncidentWithTimeline | null> {
  const r = await one(db, SQL.byId, [id])
  if (r === undefined) return null
  type Stored = Omit<IncidentEvent, 'at'> & { at: number }
  const events = (await db.query<Stored>(SQL.events, [id])).rows
  const notified = (await db.query<{ destination: string, at: number }>(SQL.notified,
    [r.group_key, incidentGroupKey(id), r.opened_at, r.resolved_at ?? Number.MAX_SAFE_INTEGER])).rows
    .map((n): Stored => ({ at: n.at, event: 'notified', detail: `notified ${n.destination}` }))
  const opened: Stored = { at: r.opened_at, event: 'opened', detail: 'opened by the group\'s first firing webhook' }
  const timeline = [opened, ...events, ...notified].sort((a, b) => a.at - b.at).map((e) => ({ ...e, at: iso(e.at) }))
  return { ...toIncident(r), timeline }
}

// Every page of a group with an incident reads it before it is rendered: a named statement,
// parsed and planned once per connection.
const FIND_LATEST = { name: 'alert_enricher_incident_latest', text: SQL.latest }

export async function find (db: Db, receiver: string, groupKey: string): Promise<Incident | null> {
  const r = await one(db, FIND_LATEST, [sha256Hex(groupKey), receiver, groupKey])
  return r === undefined ? null : toIncident(r)
}

export async function stats (db: Db, now: number): Promise<IncidentStats> {
  const zero = (): Record<string, number> => ({ triggered: 0, acknowledged: 0, resolved: 0 })
  const incidents: IncidentStats['incidents'] = { P0: zero(), P1: zero(), P2: zero(), P3: zero() }
  for (const c of (await db.query<{ state: string, priority: number, n: number }>(SQL.counts)).rows) {
    incidents[priorityFromRank(c.priority)][c.state] = c.n
  }
  const deferred: IncidentStats['deferred'] = { P0: 0, P1: 0, P2: 0, P3: 0 }
  for (const c of (await db.query<{ priority: number, n: number }>(SQL.deferredCounts, [now])).rows) deferred[priorityFromRank(c.priority)] = c.n
  return { incidents, deferred }
}

export async function prune (c: Db, before: number): Promise<number> {
  await c.query(SQL.pruneSlackMessages, [before])
  await c.query(SQL.pruneEvents, [before])
  return (await c.query(SQL.pruneIncidents, [before])).rowCount ?? 0
}

// The whole group as last queued ({alerts: null, payload}), or null once housekeeping removed it.
async function lastWebhook (c: Db, groupKey: string): Promise<unknown> {
  const body = (await c.query<{ body: string }>(SQL.lastBody, [groupKey])).rows[0]?.body
  if (body === undefined) return null
  const queued = JSON.parse(body) as { payload?: unknown }
  return queued.payload === undefined ? null : { alerts: null, payload: queued.payload }
}
