import { Type, type Static, type StringOptions, type TString } from '@sinclair/typebox'
import { NUL_FREE } from '../text.js'

// Alertmanager webhook v4 (notify/webhook in Alertmanager). Only the fields we rely on are
// validated; additionalProperties stays open because Alertmanager adds fields across versions
// (notification_reason in 0.32, routeLabels in 0.34, ...).

// No string of the payload may hold a NUL (see NUL_FREE): groupKey, receiver, labels and
// annotations become columns, and the rest is rendered from the stored payload.
const Text = (options: StringOptions = {}): TString => Type.String({ ...options, pattern: NUL_FREE })

// Closed to keys outside the pattern: how a label name with a NUL is refused.
export const LabelSet = Type.Record(Text(), Text(), { additionalProperties: false })
export type LabelSet = Static<typeof LabelSet>

export const AlertStatus = Type.Union([Type.Literal('firing'), Type.Literal('resolved')])
export type AlertStatus = Static<typeof AlertStatus>

// A pattern rather than `format: 'date-time'`: TypeBox formats live in a process-global
// registry, and the same check must hold in the route, the CLI and the bare benchmark baseline.
const RFC3339 = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$' })

export const WebhookAlert = Type.Object({
  status: AlertStatus,
  labels: LabelSet,
  annotations: LabelSet,
  startsAt: RFC3339,
  endsAt: RFC3339,
  generatorURL: Text(),
  fingerprint: Text({ minLength: 1, maxLength: 64 })
})
export type WebhookAlert = Static<typeof WebhookAlert>

export const WebhookPayload = Type.Object({
  version: Type.Literal('4'),
  groupKey: Text({ minLength: 1 }),
  truncatedAlerts: Type.Optional(Type.Integer({ minimum: 0 })),
  status: AlertStatus,
  receiver: Text(),
  groupLabels: LabelSet,
  commonLabels: LabelSet,
  commonAnnotations: LabelSet,
  externalURL: Text(),
  alerts: Type.Array(WebhookAlert, { minItems: 1 })
})
export type WebhookPayload = Static<typeof WebhookPayload>
