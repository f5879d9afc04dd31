import { Type, type Static } from '@sinclair/typebox'

// Alertmanager webhook v4 (notify/webhook in Alertmanager). Only the fields we rely on are
// validated; additionalProperties stays open because Alertmanager adds fields across versions
// (notification_reason in 0.32, routeLabels in 0.34, ...).

export const LabelSet = Type.Record(Type.String(), Type.String())
export type LabelSet = Static<typeof LabelSet>

export const AlertStatus = Type.Union([Type.Literal('firing'), Type.Literal('resolved')])
export type AlertStatus = Static<typeof AlertStatus>

export const WebhookAlert = Type.Object({
  status: AlertStatus,
  labels: LabelSet,
  annotations: LabelSet,
  startsAt: Type.String({ format: 'date-time' }),
  endsAt: Type.String({ format: 'date-time' }),
  generatorURL: Type.String(),
  fingerprint: Type.String({ minLength: 1, maxLength: 64 })
})
export type WebhookAlert = Static<typeof WebhookAlert>

export const WebhookPayload = Type.Object({
  version: Type.Literal('4'),
  groupKey: Type.String({ minLength: 1 }),
  truncatedAlerts: Type.Optional(Type.Integer({ minimum: 0 })),
  status: AlertStatus,
  receiver: Type.String(),
  groupLabels: LabelSet,
  commonLabels: LabelSet,
  commonAnnotations: LabelSet,
  externalURL: Type.String(),
  alerts: Type.Array(WebhookAlert, { minItems: 1 })
})
export type WebhookPayload = Static<typeof WebhookPayload>
