import type { Database } from 'better-sqlite3'
import { MAX_ESCALATION_REPEATS, priorityRank, PRIORITIES } from '../../config/catalog-schema.js'
import type { DestinationType } from '../../enrich/types.js'
import { sha256Hex } from '../../sha256.js'
import type {
  AcknowledgementRequest, AcknowledgementResult, EscalationTarget, Incident, IncidentEvent, IncidentEventKind,
  IncidentState, IncidentWithTimeline
} from '../../incidents/types.js'
import {
  priorityFromRank,
  type AcknowledgeOptions, type DeliveryRef, type FiredEscalation, type FireEscalationsRequest, type FireEscalationsResult,
  type IncidentChange, type IncidentIntake, type IncidentStats, type SaveSlackMessage, type SlackMessage
} from '../types.js'
import { incidentGroupKey, iso, toIncident, utc, type IncidentRow } from '../incident-row.js'
import { acknowledgementReply, escalationReply, replyBody, slackFollowUpKeys, slackRefreshBody } from '../../incidents/slack-followups.js'
import { toSlackMessage, type SlackMessageRow } from '../slack-message-row.js'
import { webhookTimeline } from '../enqueue-plan.js'

// The incident half of the SQLite engine: statements and the steps that run inside the
// store's transactions (enqueue, fire due escalations, acknowledge). One prepared statement
// per step, as in store.ts.


export interface InsertDelivery {
  (row: { destination: string, type: DestinationType, priority: number, idempotencyKey: string, groupKey: string, body: string,
    state: 'pending' | 'skipped', now: number, receivedAt: number, lastReason: string | null }): number
}
export type TakeKey = (key: string, expiresAt: number, now: number) => boolean

export function createIncidentSteps (db: Database, deps: { insertDelivery: InsertDelivery, takeKey: TakeKey }) {
  const q = {
    open: db.prepare("SELECT * FROM incidents WHERE receiver = ? AND group_key = ? AND state <> 'resolved'"),
    byId: db.prepare('SELECT * FROM incidents WHERE id = ?'),
    latest: db.prepare('SELECT * FROM incidents WHERE dedup_key = ? AND receiver = ? AND group_key = ? ORDER BY id DESC LIMIT 1'),
    // The group's latest queued webhook to a destination told of it: what an escalation renders
    // (the incident keeps no copy).
    lastBody: db.prepare(`SELECT d.body FROM group_notified AS n JOIN deliveries AS d ON d.destination = n.destination AND d.group_key = n.group_key
      WHERE n.group_key = ? ORDER BY d.id DESC LIMIT 1`).pluck(),
    byDedupKey: db.prepare('SELECT * FROM incidents WHERE dedup_key = ? ORDER BY id DESC LIMIT 1'),
    insert: db.prepare(`INSERT INTO incidents (receiver, group_key, dedup_key, alertname, team, title, priority, state, opened_at,
        triggered_at, respond_by, repeats_left, escalate_to, repeat_every_ms, next_escalation_at, updated_at)
      VALUES (@receiver, @groupKey, @dedupKey, @alertname, @team, @title, @priority, 'triggered', @now, @now, @respondBy, @repeats,
        @escalateTo, @repeatEveryMs, @respondBy, @now)`),
    // The clock re-runs from the raise only if that is sooner; an armed timer moves with it.
    raise: db.prepare(`UPDATE incidents SET priority = @priority, respond_by = MIN(respond_by, @respondBy),
        alertname = @alertname, team = @team,
        escalate_to = @escalateTo, repeat_every_ms = @repeatEveryMs, updated_at = @now,
        next_escalation_at = CASE WHEN state = 'triggered' THEN MIN(COALESCE(next_escalation_at, @respondBy), @respondBy) END,
        repeats_left = CASE WHEN state = 'triggered' THEN @repeats ELSE repeats_left END
      WHERE id = @id`),
    resolve: db.prepare(`UPDATE incidents SET state = 'resolved', resolved_at = @now, next_escalation_at = NULL, updated_at = @now
      WHERE id = @id AND state <> 'resolved'`),
    acknowledge: db.prepare(`UPDATE incidents SET state = 'acknowledged', acknowledged_by = @by, acknowledged_via = @via,
        acknowledged_at = @at, next_escalation_at = NULL, updated_at = @now WHERE id = @id AND state = 'triggered'`),
    unacknowledge: db.prepare(`UPDATE incidents SET state = 'triggered', triggered_at = @at, respond_by = @respondBy,
        next_escalation_at = @respondBy, repeats_left = @repeats, acknowledged_by = NULL, acknowledged_via = NULL,
        acknowledged_at = NULL, updated_at = @now WHERE id = @id AND state = 'acknowledged'`),
    event: db.prepare('INSERT INTO incident_events (incident_id, at, kind, detail) VALUES (?, ?, ?, ?)'),
    events: db.prepare('SELECT at, kind AS event, detail FROM incident_events WHERE incident_id = ? ORDER BY at, id'),
    // The group's sent notifications while the incident was open, and the incident's own.
    // Sent rows since the incident opened (deliveries_settled: a sent row's updated_at is
    // its sent_at), then the group's: an admin read, bounded by the retention.
    notified: db.prepare(`SELECT destination, sent_at AS at FROM deliveries
      WHERE state = 'sent' AND updated_at >= @from AND group_key IN (@groupKey, @own) AND sent_at <= @to ORDER BY sent_at, id`),
    due: db.prepare(`SELECT * FROM incidents WHERE next_escalation_at IS NOT NULL AND next_escalation_at <= @now
      ORDER BY next_escalation_at LIMIT @limit`),
    nextDue: db.prepare('SELECT MIN(next_escalation_at) FROM incidents WHERE next_escalation_at IS NOT NULL').pluck(),
    escalated: db.prepare(`UPDATE incidents SET escalations = @number, breached_at = COALESCE(breached_at, @dueAt),
        next_escalation_at = @next, repeats_left = @repeatsLeft, updated_at = @now WHERE id = @id`),
    // Escalation destinations hear the rest of the group (its resolve) like any notified one.
    remember: db.prepare(`INSERT INTO group_notified (group_key, destination, type, priority, updated_at)
      VALUES (@groupKey, @destination, @type, @priority, @now)
      ON CONFLICT (group_key, destination) DO UPDATE SET priority = MIN(priority, excluded.priority), updated_at = excluded.updated_at`),
    pagerDutyNotified: db.prepare("SELECT destination FROM group_notified WHERE group_key = ? AND type = 'pagerduty' ORDER BY destination").pluck(),
    slackNotified: db.prepare("SELECT destination FROM group_notified WHERE group_key = ? AND type = 'slack' ORDER BY destination").pluck(),
    // The destination's latest queued webhook of the group: what an update of its message renders.
    latestBody: db.prepare(`SELECT body, received_at AS receivedAt FROM deliveries WHERE group_key = ? AND destination = ?
      ORDER BY id DESC LIMIT 1`),
    slackMessage: db.prepare('SELECT * FROM slack_messages WHERE incident_id = ? AND destination = ?'),
    // A new ts is a new post; the same ts an update (posted_at stays).
    saveSlackMessage: db.prepare(`INSERT INTO slack_messages (incident_id, destination, channel, ts, posted_at, last_update_at)
      VALUES (@incidentId, @destination, @channel, @ts, @at, @at)
      ON CONFLICT (incident_id, destination) DO UPDATE SET channel = excluded.channel, ts = excluded.ts,
        posted_at = CASE WHEN slack_messages.ts = excluded.ts THEN slack_messages.posted_at ELSE excluded.posted_at END,
        last_update_at = excluded.last_update_at`),
    pruneSlackMessages: db.prepare(`DELETE FROM slack_messages WHERE incident_id IN (SELECT id FROM incidents
      WHERE resolved_at IS NOT NULL AND resolved_at < ? LIMIT 1000)`),
    // INDEXED BY: the group's held rows, never every pending row (deliveries_active also
    // matches state = 'pending', and the planner would take it).
    deferredOfGroup: db.prepare(`SELECT id, destination, type, priority FROM deliveries INDEXED BY deliveries_deferred
      WHERE group_key = ? AND deferred_until IS NOT NULL AND state = 'pending' AND deferred_until > ?`),
    skipDeferred: db.prepare(`UPDATE deliveries INDEXED BY deliveries_deferred SET state = 'skipped', last_reason = 'resolved_while_deferred',
        last_error = 'the group resolved while this notification waited for business hours', updated_at = @now
      WHERE group_key = @groupKey AND deferred_until IS NOT NULL AND state = 'pending' AND deferred_until > @now`),
    listAll: db.prepare('SELECT * FROM incidents ORDER BY id DESC LIMIT ? OFFSET ?'),
    listByState: db.prepare('SELECT * FROM incidents WHERE state = ? ORDER BY id DESC LIMIT ? OFFSET ?'),
    listByPriority: db.prepare('SELECT * FROM incidents WHERE priority = ? ORDER BY id DESC LIMIT ? OFFSET ?'),
    listByBoth: db.prepare('SELECT * FROM incidents WHERE state = ? AND priority = ? ORDER BY id DESC LIMIT ? OFFSET ?'),
    counts: db.prepare('SELECT state, priority, n FROM incident_counts'),
    anyDue: db.prepare('SELECT 1 FROM incidents WHERE next_escalation_at IS NOT NULL AND next_escalation_at <= ? LIMIT 1').pluck(),
    deferredCounts: db.prepare(`SELECT priority, COUNT(*) AS n FROM deliveries
      WHERE deferred_until IS NOT NULL AND state = 'pending' AND deferred_until > ? GROUP BY priority`),
    pruneEvents: db.prepare(`DELETE FROM incident_events WHERE incident_id IN (SELECT id FROM incidents
      WHERE resolved_at IS NOT NULL AND resolved_at < ? LIMIT 1000)`),
    pruneIncidents: db.prepare(`DELETE FROM incidents WHERE id IN (SELECT id FROM incidents
      WHERE resolved_at IS NOT NULL AND resolved_at < ? LIMIT 1000)`)
  }

  const event = (id: number, at: number, kind: IncidentEventKind, detail: string): void => { q.event.run(id, at, kind, detail) }

  const row = (stmt: { get: (...a: unknown[]) => unknown }, ...args: unknown[]): IncidentRow | undefined => stmt.get(...args) as IncidentRow | undefined

  function skipDeferred (groupKey: string, now: number): DeliveryRef[] {
    const refs = (q.deferredOfGroup.all(groupKey, now) as Array<{ id: number, destination: string, type: DestinationType, priority: number }>)
      .map((r) => ({ id: r.id, destination: r.destination, type: r.type, priority: priorityFromRank(r.priority) }))
    if (refs.length > 0) q.skipDeferred.run({ groupKey, now })
    return refs
  }

  // Inside enqueue: what the webhook does to its group's incident; `held` are the notifications
  // it held for business hours (on the timeline as `deferred`).
  function onWebhook (groupKey: string, intake: IncidentIntake, now: number, held: ReadonlyArray<{ destination: string, until: number }>): { id: number, change: IncidentChange['kind'] } | undefined {
    const result = applyWebhook(groupKey, intake, now)
    const id = result?.id ?? (held.length > 0 ? row(q.open, intake.receiver, groupKey)?.id : undefined)
    if (id !== undefined && result?.change !== 'resolve') {
      for (const h of held) event(id, now, 'deferred', webhookTimeline.deferred(h.destination, h.until))
    }
    return result
  }

  function applyWebhook (groupKey: string, intake: IncidentIntake, now: number): { id: number, change: IncidentChange['kind'] } | undefined {
    const open = row(q.open, intake.receiver, groupKey)
    const change = intake.decide(open === undefined ? null : toIncident(open))
    if (change === null) return undefined
    if (change.kind === 'open') {
      const id = Number(q.insert.run({
        receiver: intake.receiver, groupKey, dedupKey: change.dedupKey, alertname: change.alertname, team: change.team,
        title: change.title, priority: priorityRank(change.priority),
        now, respondBy: change.respondBy, repeats: MAX_ESCALATION_REPEATS, escalateTo: JSON.stringify(change.escalation.escalateTo),
        repeatEveryMs: change.escalation.repeatEveryMs
      }).lastInsertRowid)
      // Its 'opened' timeline event is the row itself (see get): one insert fewer per new group.
      return { id, change: 'open' }
    }
    if (open === undefined) return undefined
    if (change.kind === 'raise') {
      q.raise.run({
        id: open.id, priority: priorityRank(change.priority), respondBy: change.respondBy, alertname: change.alertname, team: change.team, escalateTo: JSON.stringify(change.escalation.escalateTo),
        repeatEveryMs: change.escalation.repeatEveryMs, now, repeats: MAX_ESCALATION_REPEATS
      })
      event(open.id, now, 'priority_raised', webhookTimeline.raised(open.priority, change.priority, Math.min(open.respond_by, change.respondBy)))
      return { id: open.id, change: 'raise' }
    }
    q.resolve.run({ id: open.id, now })
    event(open.id, now, 'resolved', webhookTimeline.resolved)
    return { id: open.id, change: 'resolve' }
  }

  function fireDue (req: FireEscalationsRequest, expiresAt: number): FireEscalationsResult {
    const { now } = req
    const fired: FiredEscalation[] = []
    for (const r of q.due.all({ now, limit: req.limit }) as IncidentRow[]) {
      const dueAt = r.next_escalation_at ?? now
      const number = r.escalations + 1
      const breach = r.breached_at === null
      const priority = priorityFromRank(r.priority)
      if (breach) event(r.id, dueAt, 'breached', `not acknowledged by the deadline ${utc(r.respond_by)}`)
      const body = JSON.stringify({ escalation: { incidentId: r.id, number, priority, respondBy: r.respond_by, firedAt: now, title: r.title, receiver: r.receiver, groupKey: r.group_key }, webhook: lastWebhook(r.group_key) })
      const deliveries: FiredEscalation['deliveries'] = []
      const targets = JSON.parse(r.escalate_to) as EscalationTarget[]
      const reply = { kind: `escalation-${number}`, text: escalationReply(number, r.respond_by, targets.map((t) => t.destination)), broadcast: true }
      const followed = slackFollowUps(r, req.isSlackApp, reply, expiresAt, now, deliveries)
      for (const t of targets) {
        // A bot-token channel told of the group hears it in its incident message's thread.
        if (followed.has(t.destination)) continue
        const idempotencyKey = `${incidentGroupKey(r.id)}:escalation:${number}:${t.destination}`
        if (!deps.takeKey(idempotencyKey, expiresAt, now)) continue
        const configured = req.isConfigured(t.destination)
        const state = configured ? 'pending' : 'skipped'
        const id = deps.insertDelivery({
          destination: t.destination, type: t.type, priority: r.priority, idempotencyKey, groupKey: incidentGroupKey(r.id), body,
          state, now, receivedAt: dueAt, lastReason: configured ? null : 'not_configured'
        })
        if (configured) q.remember.run({ groupKey: r.group_key, destination: t.destination, type: t.type, priority: r.priority, now })
        deliveries.push({ id, destination: t.destination, type: t.type, priority, state })
      }
      if (deliveries.length > 0) event(r.id, now, 'escalated', `escalation ${number} to ${deliveries.map((d) => d.destination).join(', ')}`)
      const repeat = r.repeat_every_ms !== null && r.repeats_left > 0
      // After a long outage a repeat is due one interval from now, not in a burst.
      const every = r.repeat_every_ms ?? 0
      const next = !repeat ? null : dueAt + every > now ? dueAt + every : now + every
      q.escalated.run({ id: r.id, number, dueAt, next, repeatsLeft: repeat ? r.repeats_left - 1 : r.repeats_left, now })
      fired.push({ incidentId: r.id, priority, number, breach, lateMs: Math.max(0, now - dueAt), deliveries })
    }
    return { fired, nextDueAt: (q.nextDue.get() as number | null) ?? null }
  }

  function acknowledge (req: AcknowledgementRequest, opts: AcknowledgeOptions, now: number): AcknowledgementResult {
    if (req.eventId !== undefined && !deps.takeKey(`pagerduty-event:${req.eventId}`, now + opts.eventKeyWindowMs, now)) {
      return { outcome: 'duplicate' }
    }
    const r = req.incidentId !== undefined ? row(q.byId, req.incidentId) : req.dedupKey !== undefined ? row(q.byDedupKey, req.dedupKey) : undefined
    if (r === undefined) return { outcome: 'unknown_incident' }
    const via = req.via === 'api' ? 'the API' : req.via === 'slack' ? 'Slack' : 'PagerDuty'
    let changed = false
    if (req.action === 'acknowledge') {
      changed = q.acknowledge.run({ id: r.id, by: req.by, via: req.via, at: req.at, now }).changes === 1
      if (changed) {
        event(r.id, req.at, 'acknowledged', `acknowledged by ${req.by} via ${via}`)
        if (req.via !== 'pagerduty') tellPagerDuty(r, req, opts, now)
      }
    } else if (req.action === 'unacknowledge') {
      const current = toIncident(r)
      changed = q.unacknowledge.run({ id: r.id, at: req.at, respondBy: opts.restartClock(current, req.at), repeats: MAX_ESCALATION_REPEATS, now }).changes === 1
      if (changed) event(r.id, req.at, 'unacknowledged', `unacknowledged by ${req.by} via ${via}; the response clock runs again`)
    } else {
      changed = q.resolve.run({ id: r.id, now: req.at }).changes === 1
      if (changed) event(r.id, req.at, 'resolved', `resolved by ${req.by} via ${via}`)
    }
    if (changed) {
      const reply = { kind: `${req.action}:${req.at}`, text: acknowledgementReply(req.action, req.by, req.via, req.at), broadcast: false }
      slackFollowUps(r, opts.isSlackApp, reply, now + opts.eventKeyWindowMs, now, [])
    }
    const incident = toIncident(row(q.byId, r.id) as IncidentRow)
    return { outcome: changed ? 'applied' : 'no_change', incident }
  }

  // For each bot-token Slack destination told of the group: an update of its incident message
  // (in the group's order) and a reply in its thread (the incident's own group). Returns the
  // destinations followed up; the replies are added to `out`.
  function slackFollowUps (r: IncidentRow, isSlackApp: ((d: string) => boolean) | undefined, reply: { kind: string, text: string, broadcast: boolean },
    expiresAt: number, now: number, out: FiredEscalation['deliveries']): Set<string> {
    const followed = new Set<string>()
    if (isSlackApp === undefined) return followed
    for (const destination of q.slackNotified.all(r.group_key) as string[]) {
      if (!isSlackApp(destination)) continue
      const latest = q.latestBody.get(r.group_key, destination) as { body: string, receivedAt: number } | undefined
      const refresh = latest === undefined ? undefined : slackRefreshBody(latest)
      if (refresh === undefined) continue
      followed.add(destination)
      const own = incidentGroupKey(r.id)
      const base = { destination, type: 'slack' as const, priority: r.priority, state: 'pending' as const, now, receivedAt: now, lastReason: null }
      const keys = slackFollowUpKeys(own, reply.kind, destination)
      if (deps.takeKey(keys.update, expiresAt, now)) deps.insertDelivery({ ...base, idempotencyKey: keys.update, groupKey: r.group_key, body: refresh })
      if (!deps.takeKey(keys.reply, expiresAt, now)) continue
      const id = deps.insertDelivery({ ...base, idempotencyKey: keys.reply, groupKey: own, body: replyBody(r.id, reply.text, reply.broadcast) })
      out.push({ id, destination, type: 'slack', priority: priorityFromRank(r.priority), state: 'pending' })
    }
    return followed
  }

  function slackMessage (incidentId: number, destination: string): SlackMessage | null {
    const m = q.slackMessage.get(incidentId, destination) as SlackMessageRow | undefined
    return m === undefined ? null : toSlackMessage(m)
  }

  function saveSlackMessage (m: SaveSlackMessage): void {
    q.saveSlackMessage.run(m)
  }

  // An Events v2 acknowledge for each PagerDuty destination told of the group.
  function tellPagerDuty (r: IncidentRow, req: AcknowledgementRequest, opts: AcknowledgeOptions, now: number): void {
    const body = JSON.stringify({ acknowledge: { incidentId: r.id, dedupKey: r.dedup_key, by: req.by, via: req.via } })
    for (const destination of q.pagerDutyNotified.all(r.group_key) as string[]) {
      const idempotencyKey = `${incidentGroupKey(r.id)}:acknowledge:${req.at}:${destination}`
      if (!deps.takeKey(idempotencyKey, now + opts.eventKeyWindowMs, now)) continue
      const configured = opts.isConfigured(destination)
      deps.insertDelivery({
        destination, type: 'pagerduty', priority: r.priority, idempotencyKey, groupKey: incidentGroupKey(r.id), body,
        state: configured ? 'pending' : 'skipped', now, receivedAt: now, lastReason: configured ? null : 'not_configured'
      })
    }
  }

  function list (opts: { state?: IncidentState, priority?: string, limit: number, offset?: number }): Incident[] {
    const { state, limit, offset = 0 } = opts
    const priority = opts.priority === undefined ? undefined : PRIORITIES.indexOf(opts.priority as Incident['priority'])
    const rows = state !== undefined && priority !== undefined
      ? q.listByBoth.all(state, priority, limit, offset)
      : state !== undefined
        ? q.listByState.all(state, limit, offset)
        : priority !== undefined ? q.listByPriority.all(priority, limit, offset) : q.listAll.all(limit, offset)
    return (rows as IncidentRow[]).map(toIncident)
  }

  function get (id: number): IncidentWithTimeline | null {
    const r = row(q.byId, id)
    if (r === undefined) return null
    type Stored = Omit<IncidentEvent, 'at'> & { at: number }
    const events = q.events.all(id) as Stored[]
    const notified = (q.notified.all({ groupKey: r.group_key, own: incidentGroupKey(id), from: r.opened_at, to: r.resolved_at ?? Number.MAX_SAFE_INTEGER }) as Array<{ destination: string, at: number }>)
      .map((n): Stored => ({ at: n.at, event: 'notified', detail: `notified ${n.destination}` }))
    const opened: Stored = { at: r.opened_at, event: 'opened', detail: 'opened by the group\'s first firing webhook' }
    const timeline = [opened, ...events, ...notified].sort((a, b) => a.at - b.at).map((e) => ({ ...e, at: iso(e.at) }))
    return { ...toIncident(r), timeline }
  }

  function stats (now: number): IncidentStats {
    const zero = (): Record<string, number> => ({ triggered: 0, acknowledged: 0, resolved: 0 })
    const incidents: IncidentStats['incidents'] = { P0: zero(), P1: zero(), P2: zero(), P3: zero() }
    for (const c of q.counts.all() as Array<{ state: string, priority: number, n: number }>) {
      const byState = incidents[priorityFromRank(c.priority)]
      byState[c.state] = c.n
    }
    const deferred: IncidentStats['deferred'] = { P0: 0, P1: 0, P2: 0, P3: 0 }
    for (const c of q.deferredCounts.all(now) as Array<{ priority: number, n: number }>) deferred[priorityFromRank(c.priority)] = c.n
    return { incidents, deferred }
  }

  function prune (before: number): number {
    q.pruneSlackMessages.run(before)
    q.pruneEvents.run(before)
    return q.pruneIncidents.run(before).changes
  }

  // The whole group as last queued ({alerts: null, payload}), or null once housekeeping removed it.
  function lastWebhook (groupKey: string): unknown {
    const body = q.lastBody.get(groupKey) as string | undefined
    if (body === undefined) return null
    const queued = JSON.parse(body) as { payload?: unknown }
    return queued.payload === undefined ? null : { alerts: null, payload: queued.payload }
  }

  function find (receiver: string, groupKey: string): Incident | null {
    const r = row(q.latest, sha256Hex(groupKey), receiver, groupKey)
    return r === undefined ? null : toIncident(r)
  }

  // Read-only: whether a timer is due, and the earliest armed one (an idle poll writes nothing).
  function peekDue (now: number): { due: boolean, nextDueAt: number | null } {
    return { due: q.anyDue.get(now) !== undefined, nextDueAt: (q.nextDue.get() as number | null) ?? null }
  }

  return { onWebhook, skipDeferred, fireDue, peekDue, acknowledge, list, get, find, stats, prune, slackMessage, saveSlackMessage }
}

