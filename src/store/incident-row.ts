import type { EscalationTarget, Incident, IncidentState } from '../incidents/types.js'
import { priorityFromRank } from './types.js'

// An incidents row as both engines store it (times in Unix ms), and its API form. Shared so
// the SQLite and PostgreSQL engines cannot drift in what an incident reads as.

export interface IncidentRow {
  id: number, receiver: string, group_key: string, dedup_key: string, alertname: string, team: string, title: string, priority: number, state: IncidentState,
  opened_at: number, triggered_at: number, respond_by: number, acknowledged_by: string | null,
  acknowledged_via: Incident['acknowledgedVia'], acknowledged_at: number | null, breached_at: number | null,
  escalations: number, repeats_left: number, escalate_to: string, repeat_every_ms: number | null,
  next_escalation_at: number | null, resolved_at: number | null, updated_at: number
}

// Deliveries an incident makes are their own group in the outbox: an escalation or an
// acknowledgement must neither supersede nor be superseded by the group's own notifications.
export const incidentGroupKey = (id: number): string => `incident:${id}`

export const iso = (ms: number): string => new Date(ms).toISOString()
export const isoOrNull = (ms: number | null): string | null => ms === null ? null : iso(ms)
export const utc = (ms: number): string => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`

export const toIncident = (r: IncidentRow): Incident => ({
  id: r.id,
  receiver: r.receiver,
  groupKey: r.group_key,
  alertname: r.alertname,
  team: r.team,
  title: r.title,
  dedupKey: r.dedup_key,
  priority: priorityFromRank(r.priority),
  state: r.state,
  startedAt: iso(r.opened_at),
  triggeredAt: iso(r.triggered_at),
  respondBy: iso(r.respond_by),
  acknowledgedAt: isoOrNull(r.acknowledged_at),
  acknowledgedBy: r.acknowledged_by,
  acknowledgedVia: r.acknowledged_via,
  resolvedAt: isoOrNull(r.resolved_at),
  breached: r.breached_at !== null,
  breachedAt: isoOrNull(r.breached_at),
  escalations: r.escalations,
  escalateTo: JSON.parse(r.escalate_to) as EscalationTarget[],
  nextEscalationAt: isoOrNull(r.next_escalation_at)
})
