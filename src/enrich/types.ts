import { Type, type Static } from '@sinclair/typebox'
import { AlertStatus, LabelSet } from '../alertmanager/webhook.js'
import { Escalation, Link, PriorityName, SlaClock } from '../config/catalog-schema.js'

// What enrichment produces. The field names are the public preview/explain surface
// (shared/design/interface.md); extra fields are additions, never renames.

export const Sla = Type.Object({
  responseTime: Type.String({ description: 'ISO 8601 duration' }),
  clock: SlaClock,
  respondBy: Type.String({ description: 'RFC 3339 UTC' })
})
export type Sla = Static<typeof Sla>

export const EnrichedAlert = Type.Object({
  fingerprint: Type.String(),
  status: AlertStatus,
  alertname: Type.String(),
  matched: Type.Boolean(),
  entry: Type.Union([Type.String(), Type.Null()]),
  priority: PriorityName,
  severity: Type.Union([Type.String(), Type.Null()]),
  summary: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  sla: Sla,
  runbookUrl: Type.String(),
  team: Type.String(),
  escalation: Escalation,
  dashboards: Type.Array(Link),
  links: Type.Array(Link),
  silenceUrl: Type.String(),
  sourceUrl: Type.Union([Type.String(), Type.Null()]),
  destinations: Type.Array(Type.String()),
  ignored: Type.Boolean({ description: 'its severity maps to `ignore` in severityPriority: sent nowhere (priority shows P3)' }),
  labels: LabelSet,
  annotations: LabelSet,
  startsAt: Type.String(),
  endsAt: Type.String()
})
export type EnrichedAlert = Static<typeof EnrichedAlert>

export const EnrichedGroup = Type.Object({
  groupKey: Type.String(),
  groupKeyHash: Type.String({ description: 'sha256 hex of groupKey, safe as an external id' }),
  receiver: Type.String(),
  status: AlertStatus,
  externalURL: Type.String(),
  truncatedAlerts: Type.Integer(),
  groupLabels: LabelSet,
  commonLabels: LabelSet,
  commonAnnotations: LabelSet,
  priority: PriorityName,
  alerts: Type.Array(EnrichedAlert)
})
export type EnrichedGroup = Static<typeof EnrichedGroup>

export const DestinationType = Type.Union([Type.Literal('slack'), Type.Literal('pagerduty')])
export type DestinationType = Static<typeof DestinationType>

// One message for one destination, as the preview and `explain` show it: `body` is the
// routed sub-group (EnrichedGroup) before rendering, the wire body after. Bodies never hold
// secrets: the PagerDuty routing_key and the Slack webhook URL are added at send time.
export const Notification = Type.Object({
  destination: Type.String(),
  type: DestinationType,
  priority: PriorityName,
  idempotencyKey: Type.String(),
  body: Type.Unknown()
})
export type Notification = Static<typeof Notification>

export const PreviewResult = Type.Object({
  alerts: Type.Array(EnrichedAlert),
  notifications: Type.Array(Notification),
  incident: Type.Optional(Type.String({ description: 'the group\'s incident state line, e.g. "Acknowledged by ana via PagerDuty at 14:02 UTC — 2 min, within SLA"' }))
})
export type PreviewResult = Static<typeof PreviewResult>
