import type { PriorityName } from '../../config/catalog-schema.js'
import type { EnrichedAlert, EnrichedGroup } from '../../enrich/types.js'
import type { LabelSet } from '../../alertmanager/webhook.js'
import { formatRelative, nonEmpty } from '../../text.js'
import { commonSource, formatUtc, viewGroup } from '../group-view.js'
import { distinct, oneLine, truncate } from '../text.js'

// PagerDuty Events API v2 event for one group, without routing_key: the notifier adds the
// key at send time so rendered bodies (stored, previewed) never hold a secret.

export type PagerDutySeverity = 'critical' | 'error' | 'warning' | 'info'
export interface PagerDutyLink { href: string, text: string }
export interface PagerDutyPayload {
  summary: string
  source: string
  severity: PagerDutySeverity
  timestamp: string
  component?: string
  group?: string
  class?: string
  custom_details: Record<string, unknown>
}
export interface PagerDutyEvent {
  event_action: 'trigger' | 'acknowledge' | 'resolve'
  dedup_key: string
  payload: PagerDutyPayload
  links: PagerDutyLink[]
  client: string
  client_url?: string
}

export const SEVERITY_BY_PRIORITY: Record<PriorityName, PagerDutySeverity> = { P0: 'critical', P1: 'error', P2: 'warning', P3: 'info' }

// PagerDuty's limits. "512 KB" is read as 512,000 bytes, the stricter of its two meanings,
// measured with a 32-char routing_key in place. Exported: the test fake enforces this same number.
export const PAGERDUTY_MAX_EVENT_BYTES = 512_000
const MAX_EVENT_BYTES = PAGERDUTY_MAX_EVENT_BYTES
const ROUTING_KEY_PLACEHOLDER = 'x'.repeat(32)
const MAX_SUMMARY = 1024
const MAX_FIELD = 1024          // source, component, group, class
const MAX_DETAIL_VALUE = 8192   // any one label/annotation value inside custom_details
const MAX_LINK_URL = 8192

export function renderPagerDutyEvent (group: EnrichedGroup, dest: { name: string }, opts: { now: Date, clientUrl?: string, incident?: string }): PagerDutyEvent {
  const view = viewGroup(group)
  const { lead, deadline, firing, resolved: resolvedCount, names } = view
  const resolved = group.status === 'resolved'
  const more = group.alerts.length + group.truncatedAlerts > 1 ? ` (${firing} firing, ${resolvedCount} resolved)` : ''
  const summary = truncate(oneLine(truncate(`[${group.priority}] ${names.join(', ')}: ${view.summary}${more}`, 4 * MAX_SUMMARY)), MAX_SUMMARY)

  const payload: PagerDutyPayload = {
    summary,
    source: field(eventSource(group)),
    severity: SEVERITY_BY_PRIORITY[group.priority],
    timestamp: eventTimestamp(group, opts.now),
    custom_details: {}
  }
  const component = nonEmpty(group.commonLabels.component ?? group.commonLabels.service)
  const groupName = nonEmpty(group.commonLabels.group ?? group.commonLabels.namespace ?? group.commonLabels.job)
  const klass = nonEmpty(group.commonLabels.class ?? (names.length === 1 ? names[0] : undefined))
  if (component !== undefined) payload.component = field(component)
  if (groupName !== undefined) payload.group = field(groupName)
  if (klass !== undefined) payload.class = field(klass)

  const event: PagerDutyEvent = {
    event_action: resolved ? 'resolve' : 'trigger',
    dedup_key: group.groupKeyHash,
    payload,
    links: view.links
      .filter((l) => l.url.length <= MAX_LINK_URL && /^https?:\/\//i.test(l.url))
      .map((l) => ({ href: l.url, text: truncate(oneLine(l.title), 256) })),
    client: 'alert-enricher'
  }
  const clientUrl = nonEmpty(opts.clientUrl ?? group.externalURL)
  if (clientUrl !== undefined && clientUrl.length <= MAX_LINK_URL) event.client_url = clientUrl

  payload.custom_details = {
    priority: group.priority,
    status: group.status,
    respond_by: deadline === null ? null : `${formatUtc(deadline)} (${formatRelative(deadline, opts.now)})`,
    escalation: lead === undefined ? null : { primary: field(lead.escalation.primary), escalation: field(lead.escalation.escalation) },
    team: field(distinct(group.alerts.map((a) => a.team)).join(', ')),
    runbook: lead === undefined ? null : truncate(lead.runbookUrl, MAX_LINK_URL),
    ...(opts.incident !== undefined ? { incident: truncate(opts.incident, MAX_DETAIL_VALUE) } : {}),
    receiver: field(group.receiver),
    destination: dest.name,
    num_firing: firing,
    num_resolved: resolvedCount,
    truncated_alerts: group.truncatedAlerts,
    firing: [],
    resolved: []
  }
  fitAlerts(event, view.sorted)
  return event
}

// Adds alert details in order until the next one would push the event over the size limit;
// the rest are counted in a note. Sizes are measured, not estimated. The usual case (all fit)
// costs one serialization.
function fitAlerts (event: PagerDutyEvent, alerts: EnrichedAlert[]): void {
  const details = event.payload.custom_details
  const all = alerts.map(alertDetail)
  const firing: unknown[] = []
  const resolved: unknown[] = []
  all.forEach((d, i) => (alerts[i]?.status === 'firing' ? firing : resolved).push(d))
  details.firing = firing
  details.resolved = resolved
  if (eventBytes(event) <= MAX_EVENT_BYTES) return

  firing.length = 0
  resolved.length = 0
  // Reserve room for the note before measuring, so adding it later cannot overflow.
  details.more = `+${alerts.length} more alerts not shown (event size limit)`
  let size = eventBytes(event)
  let shown = 0
  for (const [i, detail] of all.entries()) {
    const bytes = Buffer.byteLength(JSON.stringify(detail)) + 1
    if (size + bytes > MAX_EVENT_BYTES) break
    ;(alerts[i]?.status === 'firing' ? firing : resolved).push(detail)
    size += bytes
    shown++
  }
  details.more = `+${alerts.length - shown} more alerts not shown (event size limit)`
}

export function eventBytes (event: PagerDutyEvent): number {
  return Buffer.byteLength(JSON.stringify({ routing_key: ROUTING_KEY_PLACEHOLDER, ...event }))
}

function alertDetail (a: EnrichedAlert): Record<string, unknown> {
  return {
    fingerprint: a.fingerprint,
    alertname: truncate(a.alertname, MAX_FIELD),
    priority: a.priority,
    severity: a.severity === null ? null : truncate(a.severity, MAX_FIELD),
    summary: truncate(a.summary, MAX_DETAIL_VALUE),
    description: a.description === null ? null : truncate(a.description, MAX_DETAIL_VALUE),
    starts_at: a.startsAt,
    ends_at: a.status === 'resolved' ? a.endsAt : null,
    respond_by: a.status === 'firing' ? a.sla.respondBy : null,
    source: a.sourceUrl === null ? null : truncate(a.sourceUrl, MAX_LINK_URL),
    labels: capValues(a.labels),
    annotations: capValues(a.annotations)
  }
}

function capValues (set: LabelSet): LabelSet {
  const out: LabelSet = {}
  for (const [k, v] of Object.entries(set)) out[truncate(k, MAX_FIELD)] = truncate(v, MAX_DETAIL_VALUE)
  return out
}

// What PagerDuty shows as "source": the affected system, as its docs ask. The group's common
// instance, cluster, job or service; alerts on several hosts with nothing coarser in common
// name those hosts; never empty.
function eventSource (group: EnrichedGroup): string {
  const common = commonSource(group)
  if (common !== undefined) return common
  const instances = distinct(group.alerts.map((a) => a.labels.instance).filter(nonEmpty))
  if (instances.length > 0) return instances.length <= 3 ? instances.join(', ') : `${instances.slice(0, 3).join(', ')} +${instances.length - 3}`
  if (nonEmpty(group.receiver)) return group.receiver
  return 'alert-enricher'
}

// Trigger: when the oldest firing alert started. Resolve: when the last one ended.
function eventTimestamp (group: EnrichedGroup, now: Date): string {
  const firing = group.status === 'firing'
  const times = firing
    ? group.alerts.filter((a) => a.status === 'firing').map((a) => Date.parse(a.startsAt))
    : group.alerts.map((a) => Date.parse(a.endsAt))
  // Firing alerts carry endsAt 0001-01-01: anything before 1970 is "no time".
  const valid = times.filter((t) => Number.isFinite(t) && t > 0)
  if (valid.length === 0) return now.toISOString()
  const pick = valid.reduce((best, t) => (firing ? Math.min(best, t) : Math.max(best, t)))
  return new Date(pick).toISOString()
}

function field (value: string): string {
  const v = truncate(oneLine(truncate(value, 4 * MAX_FIELD)), MAX_FIELD)
  return v === '' ? 'unknown' : v
}
