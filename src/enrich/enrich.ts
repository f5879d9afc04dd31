import type { WebhookAlert, WebhookPayload } from '../alertmanager/webhook.js'
import type { Catalog } from '../config/catalog.js'
import { sha256Hex } from '../sha256.js'
import { nonEmpty } from '../text.js'
import { highestPriority, type CatalogEntry, type PriorityName } from '../config/catalog-schema.js'
import { resolveRunbookUrl, silenceUrl, sourceUrl } from './links.js'
import { computeSla } from './sla.js'
import type { EnrichedAlert, EnrichedGroup, Sla } from './types.js'

// Step 2 of the data flow: a pure function of (payload, catalog, clock). No I/O, so the
// webhook route, the preview route and `alert-enricher explain` all run exactly this.

export function enrichGroup (payload: WebhookPayload, catalog: Catalog, now: Date): EnrichedGroup {
  const memo = newEnrichMemo()
  const alerts = payload.alerts.map((alert) => enrichAlert(alert, payload, catalog, now, memo))
  return {
    groupKey: payload.groupKey,
    groupKeyHash: sha256Hex(payload.groupKey),
    receiver: payload.receiver,
    status: payload.status,
    externalURL: payload.externalURL,
    truncatedAlerts: payload.truncatedAlerts ?? 0,
    groupLabels: payload.groupLabels,
    commonLabels: payload.commonLabels,
    commonAnnotations: payload.commonAnnotations,
    priority: groupPriority(alerts),
    alerts
  }
}

// A group's priority: the highest among its firing alerts, or among all of them once resolved.
export function groupPriority (alerts: ReadonlyArray<{ status: string, priority: PriorityName }>): PriorityName {
  const firing = alerts.filter((a) => a.status === 'firing')
  return highestPriority((firing.length > 0 ? firing : alerts).map((a) => a.priority))
}

// The routing half of enrichment: which entry matches, the priority it gives and where it
// goes. /webhook needs only this before answering; the rest is derived when the delivery is
// sent (outbox/queued-webhook.ts).
export interface AlertClass {
  entry: CatalogEntry | undefined
  priority: PriorityName
  destinations: string[]
  /** severityPriority maps the alert's severity to `ignore`: no destination, priority P3. */
  ignored: boolean
  /** Why the default priority applied, when no entry set one and the severity is not in severityPriority. */
  unmappedSeverity: typeof UNMAPPED_SEVERITY_REASONS[number] | undefined
}

/** Why an alert got the default priority; also a metric label (alerts_unknown_severity_total). */
export const UNMAPPED_SEVERITY_REASONS = ['missing', 'unknown'] as const

// An ignored alert is P3 so that it never raises the priority of a group it shares.
const IGNORED_PRIORITY: PriorityName = 'P3'

export function classifyAlert (labels: WebhookAlert['labels'], catalog: Catalog): AlertClass {
  const doc = catalog.doc
  const entry = catalog.findEntry(labels)?.entry
  if (entry?.priority !== undefined) {
    return { entry, priority: entry.priority, destinations: entry.destinations ?? doc.priorities[entry.priority].destinations, ignored: false, unmappedSeverity: undefined }
  }
  const severity = labels.severity?.toLowerCase()
  // Own-property lookup: a severity like "constructor" must not find Object.prototype members.
  const mapped = severity !== undefined && Object.hasOwn(doc.severityPriority, severity) ? doc.severityPriority[severity] : undefined
  if (mapped === 'ignore') return { entry, priority: IGNORED_PRIORITY, destinations: [], ignored: true, unmappedSeverity: undefined }
  const priority = mapped ?? doc.defaults.priority
  const unmappedSeverity = mapped !== undefined ? undefined : nonEmpty(severity) === undefined ? 'missing' : 'unknown'
  return { entry, priority, destinations: entry?.destinations ?? doc.priorities[priority].destinations, ignored: false, unmappedSeverity }
}

// Work shared by the alerts of one group: they usually share a start time (business-hours
// maths is the costly part) and a runbook (URL resolution allocates a URL object).
export interface EnrichMemo { sla: Map<string, Sla>, runbookUrl: Map<string, string> }

export function newEnrichMemo (): EnrichMemo {
  return { sla: new Map(), runbookUrl: new Map() }
}

export function enrichAlert (alert: WebhookAlert, payload: WebhookPayload, catalog: Catalog, now: Date, memo = newEnrichMemo()): EnrichedAlert {
  const doc = catalog.doc
  const labels = alert.labels
  const { entry: matchedEntry, priority, destinations, ignored } = classifyAlert(labels, catalog)
  const severity = labels.severity ?? null
  const policy = doc.priorities[priority]
  const start = alertStart(alert.startsAt, now)
  const slaKey = `${priority}|${start.getTime()}`
  let sla = memo.sla.get(slaKey)
  if (sla === undefined) {
    sla = computeSla(policy, doc.calendar, start)
    memo.sla.set(slaKey, sla)
  }
  // `runbook_url` is the Prometheus convention; some rule sets (and older mixins) say `runbook`.
  const runbookRef = matchedEntry?.runbook ?? nonEmpty(alert.annotations.runbook_url) ?? nonEmpty(alert.annotations.runbook) ?? doc.defaults.runbook
  let runbookUrl = memo.runbookUrl.get(runbookRef)
  if (runbookUrl === undefined) {
    runbookUrl = resolveRunbookUrl(runbookRef, doc.runbookBaseUrl)
    memo.runbookUrl.set(runbookRef, runbookUrl)
  }
  return {
    fingerprint: alert.fingerprint,
    status: alert.status,
    alertname: labels.alertname ?? '',
    matched: matchedEntry !== undefined,
    entry: matchedEntry?.id ?? null,
    priority,
    severity,
    summary: nonEmpty(alert.annotations.summary) ?? nonEmpty(payload.commonAnnotations.summary) ?? labels.alertname ?? 'alert',
    description: nonEmpty(alert.annotations.description) ?? null,
    sla,
    runbookUrl,
    team: matchedEntry?.team ?? nonEmpty(labels.team) ?? doc.defaults.team,
    escalation: {
      primary: matchedEntry?.escalation?.primary ?? policy.primary,
      escalation: matchedEntry?.escalation?.escalation ?? policy.escalation
    },
    dashboards: matchedEntry?.dashboards ?? [],
    links: matchedEntry?.links ?? [],
    silenceUrl: silenceUrl(payload.externalURL, labels),
    sourceUrl: sourceUrl(alert.generatorURL),
    destinations,
    ignored,
    labels,
    annotations: alert.annotations,
    startsAt: alert.startsAt,
    endsAt: alert.endsAt
  }
}

// The SLA clock starts when the alert started; a missing/zero start (seen from some
// senders) falls back to the time we received it rather than year 1.
function alertStart (startsAt: string, now: Date): Date {
  const t = Date.parse(startsAt)
  return Number.isFinite(t) && t > 0 ? new Date(t) : now
}
