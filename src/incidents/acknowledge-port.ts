import { Type, type Static } from '@sinclair/typebox'

// The one way an acknowledgement reaches an incident, whichever edge it came in by
// (PagerDuty webhook, API, Slack button). Defined here for the Slack edge; the incidents
// module implements it (and defines the same port: the two are merged as one).

export const AcknowledgementRequest = Type.Object({
  dedupKey: Type.Optional(Type.String()),
  incidentId: Type.Optional(Type.Integer()),
  action: Type.Union([Type.Literal('acknowledge'), Type.Literal('unacknowledge'), Type.Literal('resolve')]),
  by: Type.String(),
  via: Type.Union([Type.Literal('pagerduty'), Type.Literal('api'), Type.Literal('slack')]),
  at: Type.Number({ description: 'Unix milliseconds' }),
  eventId: Type.Optional(Type.String({ description: 'idempotency key of the source event (redeliveries repeat it)' }))
})
export type AcknowledgementRequest = Static<typeof AcknowledgementRequest>

export const AcknowledgementOutcome = Type.Union([
  Type.Literal('applied'), Type.Literal('duplicate'), Type.Literal('unknown_incident'), Type.Literal('no_change')
])
export type AcknowledgementOutcome = Static<typeof AcknowledgementOutcome>

export interface AcknowledgePort {
  applyAcknowledgement: (req: AcknowledgementRequest) => Promise<{ outcome: AcknowledgementOutcome }>
}
