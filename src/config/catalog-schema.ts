import { Type, type Static } from '@sinclair/typebox'

// The alert catalog (rules/catalog.yaml). Secrets are never literal values here: a destination
// names the env var (or file) that holds its webhook URL / routing key.

export const PriorityName = Type.Union([Type.Literal('P0'), Type.Literal('P1'), Type.Literal('P2'), Type.Literal('P3')])
export type PriorityName = Static<typeof PriorityName>
export const PRIORITIES: readonly PriorityName[] = ['P0', 'P1', 'P2', 'P3']

/** 0 for P0 … 3 for P3: sorts most urgent first (also the outbox's stored order). */
export function priorityRank (p: PriorityName): number {
  return PRIORITIES.indexOf(p)
}

/** The most urgent of some priorities; `fallback` when there are none. */
export function highestPriority (priorities: Iterable<PriorityName>, fallback: PriorityName = 'P3'): PriorityName {
  let best: PriorityName | undefined
  for (const p of priorities) if (best === undefined || priorityRank(p) < priorityRank(best)) best = p
  return best ?? fallback
}

export const SlaClock = Type.Union([Type.Literal('always'), Type.Literal('business-hours'), Type.Literal('next-business-day')])
export type SlaClock = Static<typeof SlaClock>

const Id = Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$', maxLength: 64 })

export const SecretRef = Type.Union([
  Type.Object({ env: Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$' }) }, { additionalProperties: false }),
  Type.Object({ file: Type.String({ minLength: 1 }) }, { additionalProperties: false })
])
export type SecretRef = Static<typeof SecretRef>

export const Escalation = Type.Object({
  primary: Type.String({ minLength: 1 }),
  escalation: Type.String({ minLength: 1 })
}, { additionalProperties: false })
export type Escalation = Static<typeof Escalation>

const IsoDuration = (description: string) => Type.String({ pattern: '^P(?!$)(\\d+D)?(T(?=\\d)(\\d+H)?(\\d+M)?(\\d+S)?)?$', description })

// Escalation on breach: where a still-triggered incident goes once respondBy passes, and how
// often it goes there again while nobody acknowledges (at most MAX_ESCALATION_REPEATS times).
export const MAX_ESCALATION_REPEATS = 3
const EscalateTo = Type.Array(Id, { description: 'destinations told of a breach' })
const RepeatEscalationEvery = IsoDuration('ISO 8601 duration: re-escalate this often while unacknowledged')

export const PriorityPolicy = Type.Object({
  responseTime: IsoDuration('ISO 8601 duration'),
  clock: SlaClock,
  primary: Type.String({ minLength: 1 }),
  escalation: Type.String({ minLength: 1 }),
  destinations: Type.Array(Id),
  escalateTo: Type.Optional(EscalateTo),
  repeatEscalationEvery: Type.Optional(RepeatEscalationEvery),
  deliver: Type.Optional(Type.Union([Type.Literal('always'), Type.Literal('business-hours')], {
    description: 'business-hours: a firing notification outside business hours waits for the next business-hours start'
  }))
}, { additionalProperties: false })
export type PriorityPolicy = Static<typeof PriorityPolicy>

const HHMM = Type.String({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' })
export const Weekday = Type.Union(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => Type.Literal(d)))

export const Calendar = Type.Object({
  timezone: Type.String({ minLength: 1, description: 'IANA zone, e.g. Europe/Berlin' }),
  businessDays: Type.Array(Weekday, { minItems: 1, uniqueItems: true }),
  businessHours: Type.Object({ start: HHMM, end: HHMM }, { additionalProperties: false }),
  holidays: Type.Array(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }), { default: [] })
}, { additionalProperties: false })
export type Calendar = Static<typeof Calendar>

// Overrides the per-type default (Slack 1/s burst 3 per webhook; PagerDuty 2/s burst 10 per
// routing key, i.e. its documented 120 events/min).
export const RateLimitSetting = Type.Object({
  perSecond: Type.Number({ exclusiveMinimum: 0 }),
  burst: Type.Integer({ minimum: 1 })
}, { additionalProperties: false })

// Two forms. An incoming webhook (its URL is the secret; it can only post). A bot token
// (Slack app, scope chat:write) posting with chat.postMessage to a channel *id*: chat.update
// and thread replies need the id, which a channel rename does not change.
export const SlackWebhookDestination = Type.Object({
  type: Type.Literal('slack'),
  channel: Type.String({ minLength: 1 }),
  webhookUrl: SecretRef,
  rateLimit: Type.Optional(RateLimitSetting)
}, { additionalProperties: false })

export const SLACK_CHANNEL_ID_PATTERN = '^[CGD][A-Z0-9]{8,20}$'

export const SlackBotDestination = Type.Object({
  type: Type.Literal('slack'),
  channelId: Type.String({ pattern: SLACK_CHANNEL_ID_PATTERN, description: 'Slack channel id, e.g. C0123ABCD (not #name)' }),
  // Shown in messages and explain output only; the id is what is posted to.
  channel: Type.Optional(Type.String({ minLength: 1 })),
  botToken: SecretRef,
  rateLimit: Type.Optional(RateLimitSetting)
}, { additionalProperties: false })

export const SlackDestination = Type.Union([SlackWebhookDestination, SlackBotDestination])
export type SlackDestination = Static<typeof SlackDestination>

export const PagerDutyDestination = Type.Object({
  type: Type.Literal('pagerduty'),
  routingKey: SecretRef,
  rateLimit: Type.Optional(RateLimitSetting)
}, { additionalProperties: false })

export const Destination = Type.Union([SlackWebhookDestination, SlackBotDestination, PagerDutyDestination])
export type Destination = Static<typeof Destination>

export const Link = Type.Object({
  title: Type.String({ minLength: 1 }),
  url: Type.String({ minLength: 1 })
}, { additionalProperties: false })
export type Link = Static<typeof Link>

export const CatalogEntry = Type.Object({
  id: Id,
  description: Type.Optional(Type.String()),
  matchers: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Alertmanager matchers, ANDed' }),
  priority: Type.Optional(PriorityName),
  runbook: Type.Optional(Type.String({ minLength: 1, description: 'file.md#anchor relative to runbookBaseUrl, or an absolute URL' })),
  team: Type.Optional(Type.String({ minLength: 1 })),
  dashboards: Type.Optional(Type.Array(Link)),
  links: Type.Optional(Type.Array(Link)),
  destinations: Type.Optional(Type.Array(Id, { description: 'replaces the priority default' })),
  escalation: Type.Optional(Type.Partial(Escalation)),
  escalateTo: Type.Optional(EscalateTo),
  repeatEscalationEvery: Type.Optional(RepeatEscalationEvery)
}, { additionalProperties: false })
export type CatalogEntry = Static<typeof CatalogEntry>

export const CatalogDocument = Type.Object({
  runbookBaseUrl: Type.String({ minLength: 1 }),
  defaults: Type.Object({
    team: Type.String({ minLength: 1 }),
    runbook: Type.String({ minLength: 1 }),
    priority: PriorityName
  }, { additionalProperties: false }),
  calendar: Calendar,
  // `ignore`: alerts meant for no human (kube-prometheus' Watchdog, InfoInhibitor) are
  // accepted and counted but routed nowhere.
  severityPriority: Type.Record(Type.String(), Type.Union([PriorityName, Type.Literal('ignore')])),
  priorities: Type.Object({ P0: PriorityPolicy, P1: PriorityPolicy, P2: PriorityPolicy, P3: PriorityPolicy }, { additionalProperties: false }),
  destinations: Type.Record(Id, Destination),
  entries: Type.Array(CatalogEntry)
}, { additionalProperties: false })
export type CatalogDocument = Static<typeof CatalogDocument>
