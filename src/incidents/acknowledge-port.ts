import { Type, type Static } from '@sinclair/typebox'

// The port every acknowledgement source (PagerDuty webhook, API, Slack button) calls to change
// an incident's state. The incident store implements it; sources only translate their input.
// The implementation deduplicates redeliveries by eventId durably, so a source may call it
// again with the same eventId (PagerDuty delivers at least once) and get 'duplicate'.

export const ACKNOWLEDGE_ACTIONS = ['acknowledge', 'unacknowledge', 'resolve'] as const
export const ACKNOWLEDGE_VIAS = ['pagerduty', 'api', 'slack'] as const
export const ACKNOWLEDGE_OUTCOMES = ['applied', 'duplicate', 'unknown_incident', 'no_change'] as const

export const AcknowledgementRequest = Type.Object({
  /** Our Events v2 dedup_key (what PagerDuty calls incident_key). */
  dedupKey: Type.Optional(Type.String()),
  incidentId: Type.Optional(Type.Integer()),
  action: Type.Union(ACKNOWLEDGE_ACTIONS.map((a) => Type.Literal(a))),
  by: Type.String(),
  via: Type.Union(ACKNOWLEDGE_VIAS.map((v) => Type.Literal(v))),
  /** When it happened at the source, Unix ms. */
  at: Type.Number(),
  /** The source's event id, for deduplicating redeliveries. */
  eventId: Type.Optional(Type.String())
})
export type AcknowledgementRequest = Static<typeof AcknowledgementRequest>

export const AcknowledgementResult = Type.Object({
  outcome: Type.Union(ACKNOWLEDGE_OUTCOMES.map((o) => Type.Literal(o)))
})
export type AcknowledgementResult = Static<typeof AcknowledgementResult>

/** Throws only when the store cannot answer (the caller answers 503 so the source retries). */
export type ApplyAcknowledgement = (req: AcknowledgementRequest) => Promise<AcknowledgementResult>
