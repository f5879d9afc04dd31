import type { WebhookPayload } from '../alertmanager/webhook.js'
import type { Catalog } from '../config/catalog.js'
import { highestPriority, priorityRank, type CatalogEntry, type PriorityName } from '../config/catalog-schema.js'
import { classifyAlert } from '../enrich/enrich.js'
import { businessHoursRelease, computeSla, parseIsoDuration } from '../enrich/sla.js'
import type { ClassifiedWebhook } from '../outbox/queued-webhook.js'
import { sha256Hex } from '../sha256.js'
import { nonEmpty } from '../text.js'
import type { EnqueueItem, EscalationPlan, IncidentChange } from '../store/types.js'
import type { Incident } from './types.js'

// The incident life cycle as pure functions of (webhook, open incident, catalog, clock); the
// store applies what they decide inside its transactions.
//
//   first firing webhook ──▶ triggered ──ack──▶ acknowledged ──unack──▶ triggered (clock re-runs)
//        respondBy passes while triggered: breach, escalate (then repeat, bounded)
//   group resolved (or resolved in PagerDuty) ──▶ resolved; the next firing opens a new one

export function decideIncident (
  open: Incident | null, payload: WebhookPayload, classified: ClassifiedWebhook, catalog: Catalog, receivedAt: number
): IncidentChange | null {
  if (payload.status === 'resolved') return open === null ? null : { kind: 'resolve' }
  // Alerts meant for no human (severity `ignore`) open nothing.
  const firing = classified.alerts.filter((a) => a.status === 'firing' && !a.ignored)
  if (firing.length === 0) return null
  const priority = highestPriority(firing.map((a) => a.priority))
  if (open !== null && priorityRank(priority) >= priorityRank(open.priority)) return null
  const top = firing.find((a) => a.priority === priority) ?? firing[0]
  const leadAlert = top === undefined ? undefined : payload.alerts[top.index]
  const entry = leadAlert === undefined ? undefined : classifyAlert(leadAlert.labels, catalog).entry
  const lead = {
    alertname: leadAlert?.labels.alertname ?? 'alert',
    team: entry?.team ?? nonEmpty(leadAlert?.labels.team) ?? catalog.doc.defaults.team,
    escalation: escalationPlan(catalog, priority, entry)
  }
  if (open !== null) {
    // A raise re-computes the deadline from the raise (the store keeps the sooner one).
    return { kind: 'raise', priority, respondBy: respondBy(catalog, priority, receivedAt), ...lead }
  }
  const earliest = Math.min(...firing.map((a) => startOf(payload.alerts[a.index]?.startsAt, receivedAt)))
  const names = [...new Set(firing.map((a) => payload.alerts[a.index]?.labels.alertname ?? 'alert'))]
  const summary = nonEmpty(leadAlert?.annotations.summary) ?? nonEmpty(payload.commonAnnotations.summary)
  const title = `${names.join(', ')}${summary !== undefined ? `: ${summary}` : ''}`.slice(0, 500)
  return { kind: 'open', dedupKey: sha256Hex(payload.groupKey), title, priority, respondBy: respondBy(catalog, priority, earliest), ...lead }
}

// Per catalog (immutable once loaded) and priority/entry: a memo, forgotten with its catalog.
const plans = new WeakMap<Catalog, Map<string, EscalationPlan>>()

// An entry's escalateTo / repeatEscalationEvery override its priority's.
export function escalationPlan (catalog: Catalog, priority: PriorityName, entry: CatalogEntry | undefined): EscalationPlan {
  let memo = plans.get(catalog)
  if (memo === undefined) plans.set(catalog, memo = new Map())
  const key = `${priority}|${entry?.id ?? ''}`
  let plan = memo.get(key)
  if (plan === undefined) memo.set(key, plan = planFor(catalog, priority, entry))
  return plan
}

function planFor (catalog: Catalog, priority: PriorityName, entry: CatalogEntry | undefined): EscalationPlan {
  const policy = catalog.doc.priorities[priority]
  const names = entry?.escalateTo ?? policy.escalateTo ?? []
  const escalateTo = names.flatMap((destination) => {
    const d = Object.hasOwn(catalog.doc.destinations, destination) ? catalog.doc.destinations[destination] : undefined
    return d === undefined ? [] : [{ destination, type: d.type }]
  })
  const every = entry?.repeatEscalationEvery ?? policy.repeatEscalationEvery
  const repeatEveryMs = every === undefined ? null : parseIsoDuration(every)
  return { escalateTo, repeatEveryMs: repeatEveryMs === 0 ? null : repeatEveryMs }
}

/** The deadline of a response clock started at `fromMs` for `priority`, on the catalog's calendar. */
export function respondBy (catalog: Catalog, priority: PriorityName, fromMs: number): number {
  return Date.parse(computeSla(catalog.doc.priorities[priority], catalog.doc.calendar, new Date(fromMs)).respondBy)
}

/** Unacknowledged: the clock runs again from then, at the incident's priority. */
export function restartClock (catalog: Catalog): (incident: Incident, at: number) => number {
  return (incident, at) => respondBy(catalog, incident.priority, at)
}

/**
 * `deliver: business-hours`: a firing notification outside business hours waits for the next
 * business-hours start. Resolves are never held (they tell of a trigger already sent).
 */
export function withDeferral<T extends Pick<EnqueueItem, 'priority' | 'status'>> (items: T[], catalog: Catalog, receivedAt: number): Array<T & { notBefore?: number }> {
  return items.map((item) => {
    if (item.status !== 'firing' || catalog.doc.priorities[item.priority].deliver !== 'business-hours') return item
    const release = businessHoursRelease(catalog.doc.calendar, receivedAt)
    return release > receivedAt ? { ...item, notBefore: release } : item
  })
}

function startOf (startsAt: string | undefined, fallback: number): number {
  const t = startsAt === undefined ? NaN : Date.parse(startsAt)
  return Number.isFinite(t) && t > 0 ? t : fallback
}
