import { Type, type Static } from '@sinclair/typebox'
import { PriorityName } from '../config/catalog-schema.js'
import { DestinationType } from '../enrich/types.js'

// Incidents: one per Alertmanager group (receiver + groupKey) from its first firing webhook
// until it resolves. The field names are public (GET /api/v1/incidents); extra fields are
// additions, never renames. Times are Unix milliseconds.

export const INCIDENT_STATES = ['triggered', 'acknowledged', 'resolved'] as const
export const IncidentState = Type.Union(INCIDENT_STATES.map((s) => Type.Literal(s)))
export type IncidentState = Static<typeof IncidentState>

export const ACK_SOURCES = ['pagerduty', 'api', 'slack'] as const
export const AckSource = Type.Union(ACK_SOURCES.map((s) => Type.Literal(s)))
export type AckSource = Static<typeof AckSource>

const Millis = (description: string) => Type.Integer({ description: `${description} (Unix ms)` })
const NullableString = (description: string) => Type.Union([Type.String(), Type.Null()], { description })

// Where a breach goes: the destinations resolved from the catalog when the incident opened
// (or its priority rose), so the timer fires without the catalog.
export const EscalationTarget = Type.Object({ destination: Type.String(), type: DestinationType })
export type EscalationTarget = Static<typeof EscalationTarget>

const Time = (description: string) => Type.String({ description: `${description} (RFC 3339 UTC)` })
const NullableTime = (description: string) => Type.Union([Time(description), Type.Null()])

// The public field names are interface.md's; the rest are additions.
export const Incident = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  receiver: Type.String(),
  groupKey: Type.String(),
  alertname: Type.String({ description: 'the leading alert when it opened (or last rose)' }),
  team: Type.String(),
  title: Type.String({ description: 'alert names and summary when it opened' }),
  dedupKey: Type.String({ description: 'the PagerDuty dedup_key of the group (sha256 hex of groupKey)' }),
  priority: PriorityName,
  state: IncidentState,
  startedAt: Time('first firing webhook received'),
  triggeredAt: Time('the response clock started (opened, or unacknowledged)'),
  respondBy: Time('response deadline'),
  acknowledgedAt: NullableTime('when acknowledged'),
  acknowledgedBy: NullableString('who acknowledged'),
  acknowledgedVia: Type.Union([AckSource, Type.Null()]),
  resolvedAt: NullableTime('when resolved'),
  breached: Type.Boolean({ description: 'respondBy passed while still triggered' }),
  breachedAt: NullableTime('when the deadline was breached (the first time)'),
  escalations: Type.Integer({ minimum: 0, description: 'escalations sent so far' }),
  escalateTo: Type.Array(EscalationTarget),
  nextEscalationAt: NullableTime('the escalation timer, while armed')
})
export type Incident = Static<typeof Incident>

export const INCIDENT_EVENT_KINDS = [
  'opened', 'priority_raised', 'notified', 'deferred', 'acknowledged', 'unacknowledged', 'breached', 'escalated', 'resolved'
] as const
export const IncidentEventKind = Type.Union(INCIDENT_EVENT_KINDS.map((s) => Type.Literal(s)))
export type IncidentEventKind = Static<typeof IncidentEventKind>

export const IncidentEvent = Type.Object({
  at: Time('when it happened'),
  event: IncidentEventKind,
  detail: Type.String({ description: 'what happened, for people (e.g. "acknowledged by ana via pagerduty")' })
})
export type IncidentEvent = Static<typeof IncidentEvent>

export const IncidentWithTimeline = Type.Composite([Incident, Type.Object({ timeline: Type.Array(IncidentEvent) })])
export type IncidentWithTimeline = Static<typeof IncidentWithTimeline>

// The port every acknowledgement source calls (PagerDuty webhooks, the API, Slack).
export const AckAction = Type.Union([Type.Literal('acknowledge'), Type.Literal('unacknowledge'), Type.Literal('resolve')])
export type AckAction = Static<typeof AckAction>

export const AcknowledgementRequest = Type.Object({
  dedupKey: Type.Optional(Type.String({ minLength: 1, description: 'PagerDuty incident_key = our dedup_key' })),
  incidentId: Type.Optional(Type.Integer({ minimum: 1 })),
  action: AckAction,
  by: Type.String({ minLength: 1, maxLength: 200 }),
  via: AckSource,
  at: Millis('when it was acknowledged'),
  eventId: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'PagerDuty event.id: a redelivery of one already applied is a duplicate' }))
})
export type AcknowledgementRequest = Static<typeof AcknowledgementRequest>

export const AckOutcome = Type.Union([Type.Literal('applied'), Type.Literal('duplicate'), Type.Literal('unknown_incident'), Type.Literal('no_change')])
export type AckOutcome = Static<typeof AckOutcome>

export const AcknowledgementResult = Type.Object({ outcome: AckOutcome, incident: Type.Optional(Incident) })
export type AcknowledgementResult = Static<typeof AcknowledgementResult>

export type ApplyAcknowledgement = (req: AcknowledgementRequest) => Promise<AcknowledgementResult>

// Bodies of the deliveries an incident makes (the outbox stores them next to queued webhooks).
// An escalation carries the group's latest queued webhook, so the message is rendered like any
// other from the catalog in force at send time; without one (removed by housekeeping) it says
// what the incident itself knows.
export const EscalationBody = Type.Object({
  escalation: Type.Object({
    incidentId: Type.Integer(),
    number: Type.Integer({ minimum: 1 }),
    priority: PriorityName,
    respondBy: Type.Integer(),
    firedAt: Type.Integer(),
    title: Type.String(),
    receiver: Type.String(),
    groupKey: Type.String()
  }),
  webhook: Type.Union([Type.Unknown({ description: 'a QueuedWebhook' }), Type.Null()])
})
export type EscalationBody = Static<typeof EscalationBody>

export const AcknowledgeBody = Type.Object({
  acknowledge: Type.Object({ incidentId: Type.Integer(), dedupKey: Type.String(), by: Type.String(), via: AckSource })
})
export type AcknowledgeBody = Static<typeof AcknowledgeBody>
