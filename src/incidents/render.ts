import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { Catalog } from '../config/catalog.js'
import type { Destination } from '../config/catalog-schema.js'
import type { EnrichedGroup } from '../enrich/types.js'
import { formatUtc, viewGroup } from '../notify/group-view.js'
import { renderPagerDutyEvent, SEVERITY_BY_PRIORITY, type PagerDutyEvent } from '../notify/pagerduty/render.js'
import { sha256Hex } from '../sha256.js'
import { renderSlackMessage, slackChannelLabel, type SlackMessage } from '../notify/slack/render.js'
import { escapeTruncate, oneLine, truncate } from '../notify/text.js'
import { enrichQueuedWebhook } from '../outbox/queued-webhook.js'
import { formatSpan } from '../text.js'
import { AcknowledgeBody, EscalationBody, type Incident } from './types.js'

// Rendering of what incidents send (escalations, acknowledgements to PagerDuty) and the
// incident state line every message shows. Pure: clock and catalog come in as arguments.

const escalationBody = TypeCompiler.Compile(EscalationBody)
const acknowledgeBody = TypeCompiler.Compile(AcknowledgeBody)

export type IncidentRendering =
  | { kind: 'rendered', body: SlackMessage | PagerDutyEvent }
  | { kind: 'not_incident' }
  | { kind: 'invalid', error: string }

/** A stored delivery body an incident made, rendered for `dest`; not_incident for queued webhooks. */
export function renderIncidentDelivery (body: unknown, dest: { name: string, config: Destination }, catalog: Catalog, now: Date): IncidentRendering {
  if (acknowledgeBody.Check(body)) {
    if (dest.config.type !== 'pagerduty') return { kind: 'invalid', error: 'an acknowledgement goes to PagerDuty destinations only' }
    const event: PagerDutyEvent = { event_action: 'acknowledge', dedup_key: body.acknowledge.dedupKey } as PagerDutyEvent
    return { kind: 'rendered', body: event }
  }
  if (!escalationBody.Check(body)) return { kind: 'not_incident' }
  const e = body.escalation
  const group = body.webhook === null ? undefined : enrichQueuedWebhook(body.webhook, e.firedAt, catalog)
  if (group === undefined) return { kind: 'rendered', body: renderBare(e, dest, catalog, now) }
  const line = escalationLine(group, e, now)
  if (dest.config.type === 'slack') {
    const message = renderSlackMessage(group, { name: dest.name, channel: slackChannelLabel(dest.name, dest.config) }, { now })
    const header = `🚨 ESCALATION${e.number > 1 ? ` #${e.number}` : ''} ${e.priority}: not acknowledged`
    message.blocks.unshift(
      { type: 'header', text: { type: 'plain_text', text: escapeTruncate(header, 150), emoji: true } },
      { type: 'section', text: { type: 'mrkdwn', text: escapeTruncate(line, 3000) } })
    message.text = escapeTruncate(`${header} — ${line}`, 1000)
    return { kind: 'rendered', body: message }
  }
  const event = renderPagerDutyEvent(group, { name: dest.name }, { now })
  event.payload.summary = truncate(oneLine(`[${e.priority}] ESCALATION: ${line}`), 1024)
  event.payload.custom_details = { escalation: { incident: e.incidentId, number: e.number, deadline: new Date(e.respondBy).toISOString() }, ...event.payload.custom_details }
  return { kind: 'rendered', body: event }
}

// Without the group's webhook (housekeeping removed it): what the incident itself knows.
function renderBare (e: EscalationBody['escalation'], dest: { name: string, config: Destination }, catalog: Catalog, now: Date): SlackMessage | PagerDutyEvent {
  const policy = catalog.doc.priorities[e.priority]
  const line = `${e.title} (${e.priority}) not acknowledged by the deadline ${formatUtc(new Date(e.respondBy))}, ${lateBy(now.getTime() - e.respondBy)} late; primary ${policy.primary}; escalated to ${policy.escalation}`
  const header = `🚨 ESCALATION${e.number > 1 ? ` #${e.number}` : ''} ${e.priority}: not acknowledged`
  if (dest.config.type === 'slack') {
    return { text: escapeTruncate(`${header} — ${line}`, 1000), blocks: [{ type: 'section', text: { type: 'mrkdwn', text: escapeTruncate(line, 3000) } }] }
  }
  return {
    event_action: 'trigger',
    dedup_key: sha256Hex(e.groupKey),
    payload: {
      summary: truncate(oneLine(`[${e.priority}] ESCALATION: ${line}`), 1024),
      source: truncate(e.receiver === '' ? 'alert-enricher' : e.receiver, 1024),
      severity: SEVERITY_BY_PRIORITY[e.priority],
      timestamp: now.toISOString(),
      custom_details: { escalation: { incident: e.incidentId, number: e.number, deadline: new Date(e.respondBy).toISOString() } }
    },
    links: [],
    client: 'alert-enricher'
  }
}

const lateBy = (ms: number): string => ms < 60_000 ? 'under 1 min' : formatSpan(ms)

// "HighErrorRate (P0) not acknowledged by the deadline 14:05 UTC, 3 min late; primary
// On-call engineer; escalated to Engineering manager. Runbook: …"
export function escalationLine (group: EnrichedGroup, e: EscalationBody['escalation'], now: Date): string {
  const view = viewGroup(group)
  const lead = view.lead
  const late = now.getTime() - e.respondBy
  const parts = [
    `${view.names.join(', ')} (${e.priority}) not acknowledged by the deadline ${formatUtc(new Date(e.respondBy))}, ${lateBy(late)} late`
  ]
  if (lead !== undefined) {
    parts.push(`primary ${lead.escalation.primary}; escalated to ${lead.escalation.escalation}`)
    parts.push(`runbook ${lead.runbookUrl}`)
  }
  return parts.join('; ')
}

/**
 * The incident state line messages, preview and explain show: "Acknowledged by X via
 * PagerDuty at 14:02 UTC — 2 min, within SLA" or "Not acknowledged: escalated to Engineering
 * manager at 14:05 UTC (deadline 14:05)". Null while triggered and within the deadline.
 */
export function incidentStateLine (incident: Incident, escalationContact: string): string | null {
  const hhmm = (t: string): string => formatUtc(new Date(t)).slice(11)
  const respondBy = Date.parse(incident.respondBy)
  if (incident.acknowledgedAt !== null && incident.acknowledgedBy !== null) {
    const at = Date.parse(incident.acknowledgedAt)
    const took = at - Date.parse(incident.triggeredAt)
    const within = at <= respondBy ? 'within SLA' : `SLA breached (deadline ${hhmm(incident.respondBy).replace(' UTC', '')})`
    return `Acknowledged by ${incident.acknowledgedBy} via ${VIA[incident.acknowledgedVia ?? 'api']} at ${hhmm(incident.acknowledgedAt)} — ${took < 60_000 ? '<1 min' : formatSpan(took)}, ${within}`
  }
  if (incident.breachedAt !== null && incident.state !== 'resolved') {
    return `Not acknowledged: escalated to ${escalationContact} at ${hhmm(incident.breachedAt)} (deadline ${hhmm(incident.respondBy).replace(' UTC', '')})`
  }
  return null
}

/** The state line for a group's incident, with the escalation contact its lead alert names. */
export function describeIncident (incident: Incident | null, group: EnrichedGroup): string | undefined {
  if (incident === null) return undefined
  return incidentStateLine(incident, viewGroup(group).lead?.escalation.escalation ?? 'the escalation contact') ?? undefined
}

const VIA = { pagerduty: 'PagerDuty', api: 'the API', slack: 'Slack' } as const
