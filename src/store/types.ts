import { Type, type Static } from '@sinclair/typebox'
import { PRIORITIES, PriorityName } from '../config/catalog-schema.js'
import { DestinationType } from '../enrich/types.js'
import { FailureReason } from '../notify/result.js'
import type {
  AcknowledgementRequest, AcknowledgementResult, EscalationTarget, Incident, IncidentState, IncidentWithTimeline
} from '../incidents/types.js'

// The store contract: everything the service keeps, behind one interface that an engine
// (sqlite/, later postgres/) implements with one statement per operation. Every method is
// async so a networked engine fits. Times are Unix milliseconds.

export const DELIVERY_STATES = ['pending', 'sending', 'sent', 'dead', 'skipped'] as const
export const DeliveryState = Type.Union(DELIVERY_STATES.map((s) => Type.Literal(s)))
export type DeliveryState = Static<typeof DeliveryState>

const Millis = (description: string) => Type.Integer({ description: `${description} (Unix ms)` })
const NullableMillis = (description: string) => Type.Union([Millis(description), Type.Null()])

export const Delivery = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  destination: Type.String(),
  type: DestinationType,
  priority: PriorityName,
  idempotencyKey: Type.String(),
  groupKey: Type.String(),
  body: Type.Unknown({ description: 'the queued webhook; never holds secrets (added at send time)' }),
  state: DeliveryState,
  attempts: Type.Integer({ minimum: 0, description: 'claims so far; also the claim token of outcome marks' }),
  nextAttemptAt: Millis('earliest time of the next attempt'),
  claimedUntil: NullableMillis('while sending: when the claim lapses and another dispatcher may take it'),
  receivedAt: Millis('when the webhook that produced it was received'),
  createdAt: Millis('row created'),
  updatedAt: Millis('row last changed'),
  lastError: Type.Union([Type.String(), Type.Null()], { description: 'secret-free' }),
  lastReason: Type.Union([FailureReason, Type.Null()]),
  sentAt: NullableMillis('when the destination accepted it'),
  deferredUntil: NullableMillis('held for business hours until then; its age and latency count from then')
})
export type Delivery = Static<typeof Delivery>

// One notification to enqueue. `body` is JSON text (the queued webhook). `skip` marks a
// destination whose secret is unset: stored as `skipped` (not_configured), never sent.
export const EnqueueItem = Type.Object({
  destination: Type.String(),
  type: DestinationType,
  priority: PriorityName,
  status: Type.Union([Type.Literal('firing'), Type.Literal('resolved')], { description: 'of the alerts routed there' }),
  idempotencyKey: Type.String(),
  body: Type.String(),
  skip: Type.Optional(Type.Boolean()),
  // Held until then (`deliver: business-hours` outside business hours): a resolve of the group
  // meanwhile skips it (resolved_while_deferred) and the destination hears nothing.
  notBefore: Type.Optional(Type.Integer())
})
export type EnqueueItem = Static<typeof EnqueueItem>

// A destination that was told the group is firing and has not been told it resolved: it
// hears every later change of the group, whatever the catalog says by then.
export const NotifiedDestination = Type.Object({ destination: Type.String(), type: DestinationType, priority: PriorityName })
export type NotifiedDestination = Static<typeof NotifiedDestination>

// What a webhook does to its group's incident, decided inside the enqueue transaction.
export type IncidentChange =
  | { kind: 'open', dedupKey: string, title: string, priority: PriorityName, respondBy: number } & IncidentLead
  // A higher priority: respondBy becomes the sooner of the old one and `respondBy`.
  | { kind: 'raise', priority: PriorityName, respondBy: number } & IncidentLead
  | { kind: 'resolve' }

// The leading alert and what a breach does, from the webhook that opened or raised it.
export interface IncidentLead { alertname: string, team: string, escalation: EscalationPlan }

// Resolved from the catalog when the incident opens or rises, so a timer fires without it.
export interface EscalationPlan { escalateTo: EscalationTarget[], repeatEveryMs: number | null }

export interface IncidentIntake {
  receiver: string
  // Pure: given the group's open incident (or null), what this webhook changes.
  decide: (open: Incident | null) => IncidentChange | null
}

export interface EnqueueRequest {
  groupKey: string
  receivedAt: number
  // The whole group resolved: after this enqueue no destination counts as notified.
  resolved: boolean
  // Pure: what to enqueue, given the destinations already notified of this group. Runs inside
  // the transaction, so two webhooks of one group never plan from the same stale set.
  plan: (notified: readonly NotifiedDestination[]) => EnqueueItem[]
  // The deliveries are claimable: called once committed, before the wait for durability.
  onCommitted?: () => void
  // Opens, raises or resolves the group's incident in the same transaction.
  incident?: IncidentIntake
}

export const DeliveryRef = Type.Object({ id: Type.Integer(), destination: Type.String(), type: DestinationType, priority: PriorityName })
export type DeliveryRef = Static<typeof DeliveryRef>

export interface EnqueueResult {
  inserted: Array<DeliveryRef & { state: 'pending' | 'skipped' }>
  // Idempotency keys already taken within the window (retries, HA peers).
  duplicates: string[]
  // Older pending deliveries of the same destination and group, now skipped: the newer one
  // carries the whole group state (Alertmanager always sends all of it).
  superseded: DeliveryRef[]
  // Deferred deliveries of the group skipped because it resolved first (resolved_while_deferred),
  // and the resolves not sent for the same reason.
  resolvedWhileDeferred: DeliveryRef[]
  incident?: { id: number, change: IncidentChange['kind'] }
}

export const OutboxStats = Type.Object({
  // Not yet delivered (pending or sending), by priority.
  pending: Type.Record(PriorityName, Type.Integer()),
  oldestPendingAgeMs: Type.Record(PriorityName, Type.Integer()),
  dead: Type.Integer()
})
export type OutboxStats = Static<typeof OutboxStats>

export type RetryDeadResult =
  | { outcome: 'retried', delivery: Delivery }
  | { outcome: 'not_found' }
  | { outcome: 'not_dead', state: DeliveryState }

export interface ClaimRequest {
  now: number
  limit: number
  // A claim lapses after this long: a dispatcher that hung or died gives its work back.
  leaseMs: number
  // Destinations out of rate-limit tokens: not claimed at all this time.
  excludeDestinations: readonly string[]
  // Asked for each candidate in claim order: may one more go to this destination now (it
  // takes a rate-limit token)? A candidate refused stays pending.
  admit: (destination: string, type: DestinationType) => boolean
}

// Free dispatcher slots lent to a claim run inside another transaction: exactly one of
// launch (that transaction committed; these are now claimed) or release (it did not) follows.
export interface SlotLoan {
  limit: number
  // Built when the claim runs (its clock and rate-limit state as of then), up to `limit`.
  request: () => ClaimRequest
  launch: (claimed: Delivery[]) => void
  release: () => void
}

export type MarkResult = 'done' | 'lost_claim'

export interface FireEscalationsRequest {
  now: number
  limit: number
  // A destination without its secret gets a `skipped` (not_configured) delivery.
  isConfigured: (destination: string) => boolean
  // Bot-token Slack destinations (with their token): one told of the group has its incident
  // message edited and a broadcast thread reply instead of a new escalation post.
  isSlackApp?: (destination: string) => boolean
}

export interface FiredEscalation {
  incidentId: number
  priority: PriorityName
  number: number
  // The first escalation of a breach (its later repeats are false).
  breach: boolean
  // How late the timer fired (ms past its due time).
  lateMs: number
  deliveries: Array<DeliveryRef & { state: 'pending' | 'skipped' }>
}

export interface FireEscalationsResult {
  fired: FiredEscalation[]
  // The earliest armed timer left, or null: the dispatcher wakes for it.
  nextDueAt: number | null
}

export interface AcknowledgeOptions {
  // The response deadline when the clock runs again from `at` (unacknowledge).
  restartClock: (incident: Incident, at: number) => number
  // Acknowledgements made here (API, Slack) go to PagerDuty too, where configured.
  isConfigured: (destination: string) => boolean
  // How long a PagerDuty event.id is remembered.
  eventKeyWindowMs: number
  // Bot-token Slack destinations told of the group: their incident message is edited and the
  // change is replied in its thread.
  isSlackApp?: (destination: string) => boolean
}

// Where a bot-token Slack destination's message of an incident is: what chat.update edits.
export const SlackMessage = Type.Object({
  incidentId: Type.Integer({ minimum: 1 }),
  destination: Type.String(),
  channel: Type.String({ minLength: 1 }),
  ts: Type.String({ minLength: 1 }),
  postedAt: Millis('when this ts was posted'),
  lastUpdateAt: Millis('the last chat.postMessage or chat.update of it: the debounce counts from here')
})
export type SlackMessage = Static<typeof SlackMessage>

export interface SaveSlackMessage { incidentId: number, destination: string, channel: string, ts: string, at: number }

export const IncidentStats = Type.Object({
  incidents: Type.Record(PriorityName, Type.Record(Type.String(), Type.Integer()), { description: 'by priority and state' }),
  deferred: Type.Record(PriorityName, Type.Integer(), { description: 'deliveries held for business hours' })
})
export type IncidentStats = Static<typeof IncidentStats>

// Every operation the store reports failures of: the `operation` label of
// alert_enricher_store_errors_total. `connect`: a start on PostgreSQL that could not reach or
// migrate the database (retried).
export const STORE_OPERATIONS = ['connect', 'enqueue', 'claim', 'mark', 'replay', 'read', 'housekeeping', 'escalate', 'acknowledge'] as const
export type StoreOperation = typeof STORE_OPERATIONS[number]

export interface StoreFailure { operation: StoreOperation, error: Error }

export interface Store {
  // Resolves once committed (durably); the deliveries are claimable from then on.
  enqueue: (req: EnqueueRequest) => Promise<EnqueueResult>
  // Due deliveries (and those whose claim lapsed), highest priority first, then oldest due;
  // within one destination and group only the oldest unsettled one. Marks them sending.
  claim: (req: ClaimRequest) => Promise<Delivery[]>
  // Outcome marks apply only while `d` still holds its claim (same attempts, still sending).
  markSent: (d: Delivery, sentAt: number) => Promise<MarkResult>
  // 'superseded' when a newer delivery of the same destination and group is waiting: this
  // one is skipped instead of retried (the newer one carries the whole state).
  markRetry: (d: Delivery, nextAttemptAt: number, reason: FailureReason, error: string) => Promise<MarkResult | 'superseded'>
  markDead: (d: Delivery, reason: FailureReason, error: string) => Promise<MarkResult>
  // Nothing to send (a thread reply with no message yet): `skipped` with the reason.
  markSkipped: (d: Delivery, reason: FailureReason, error: string) => Promise<MarkResult>
  // Returns every claim to pending. Only for an engine one process owns (SQLite, under its
  // data-directory lock): at start, nothing can still be sending.
  releaseClaims: () => Promise<number>
  list: (opts: { state?: DeliveryState, limit: number, offset?: number }) => Promise<Delivery[]>
  get: (id: number) => Promise<Delivery | null>
  retryDead: (id: number, now: number) => Promise<RetryDeadResult>
  stats: (now: number) => Promise<OutboxStats>
  // Bounded housekeeping: deletes sent/skipped deliveries last changed before `sentBefore`,
  // expired idempotency keys, and notified-destination records untouched since `sentBefore`;
  // its write also proves the store writable again after a failure.
  housekeeping: (now: number, sentBefore: number) => Promise<{ deliveries: number, keys: number }>
  // Claims due escalation timers and, in one transaction per call, records each breach,
  // inserts the escalation deliveries (idempotency key incident:<id>:escalation:<n>:<dest>)
  // and re-arms or clears the timer: a restart never skips or doubles one.
  fireDueEscalations: (req: FireEscalationsRequest) => Promise<FireEscalationsResult>
  // Applies an acknowledge / unacknowledge / resolve (idempotent; eventId deduplicated).
  applyAcknowledgement: (req: AcknowledgementRequest, opts: AcknowledgeOptions) => Promise<AcknowledgementResult>
  listIncidents: (opts: { state?: IncidentState, priority?: PriorityName, limit: number, offset?: number }) => Promise<Incident[]>
  getIncident: (id: number) => Promise<IncidentWithTimeline | null>
  // The group's latest incident (open, or the last resolved one), or null: what messages say of it.
  findIncident: (receiver: string, groupKey: string) => Promise<Incident | null>
  incidentStats: (now: number) => Promise<IncidentStats>
  // The incident's message in a bot-token Slack destination, or null before its first post.
  slackMessage: (incidentId: number, destination: string) => Promise<SlackMessage | null>
  // Records a post (a new ts) or an update (same ts: only lastUpdateAt moves).
  saveSlackMessage: (m: SaveSlackMessage) => Promise<void>
  // Why the store cannot take writes now (the last failure, until a write the size of a
  // webhook's succeeds: an enqueue, a replay, housekeeping's probe), or null: /-/ready reports it.
  unavailable: () => string | null
  // A failure only a restart clears (the log could not be synced: what is on disk is unknown
  // until the engine recovers from its files), or null: /-/healthy reports it.
  fatal: () => string | null
  close: () => Promise<void>
}

// Stored as an integer (priorityRank) so ORDER BY priority puts P0 first.
export function priorityFromRank (rank: number): PriorityName {
  const p = PRIORITIES[rank]
  if (p === undefined) throw new Error(`invalid priority rank ${rank}`)
  return p
}
