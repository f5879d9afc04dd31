import { Type, type Static } from '@sinclair/typebox'
import { PRIORITIES, PriorityName, priorityRank } from '../config/catalog-schema.js'
import { DestinationType, Notification } from '../enrich/types.js'
import { FailureReason } from '../notify/result.js'

// The outbox contract. Every method is async so a PostgreSQL implementation can sit behind
// the same interface; the embedded one is sqlite-store.ts. Times are Unix milliseconds.

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
  body: Type.Unknown({ description: 'rendered message; never holds secrets (added at send time)' }),
  state: DeliveryState,
  attempts: Type.Integer({ minimum: 0 }),
  nextAttemptAt: Millis('earliest time of the next attempt'),
  receivedAt: Millis('when the webhook that produced it was received'),
  createdAt: Millis('row created'),
  updatedAt: Millis('row last changed'),
  lastError: Type.Union([Type.String(), Type.Null()], { description: 'secret-free' }),
  lastReason: Type.Union([FailureReason, Type.Null()]),
  sentAt: NullableMillis('when the destination accepted it')
})
export type Delivery = Static<typeof Delivery>

// A planned notification plus what the outbox needs besides it. `skip` marks a destination
// whose secret is unset: stored directly as `skipped` (reason not_configured), never sent.
export const EnqueueItem = Type.Composite([
  Notification,
  Type.Object({
    groupKey: Type.String(),
    skip: Type.Optional(Type.Boolean()),
    bodyJson: Type.Optional(Type.String({ description: 'the body already serialised as JSON; stored instead of `body`' }))
  })
])
export type EnqueueItem = Static<typeof EnqueueItem>

export const EnqueueResult = Type.Object({
  inserted: Type.Array(Type.Object({
    id: Type.Integer(),
    destination: Type.String(),
    type: DestinationType,
    priority: PriorityName,
    state: Type.Union([Type.Literal('pending'), Type.Literal('skipped')])
  })),
  duplicates: Type.Array(Type.String(), { description: 'idempotency keys already enqueued within the window' })
})
export type EnqueueResult = Static<typeof EnqueueResult>

export const SupersededDelivery = Type.Object({ id: Type.Integer(), destination: Type.String(), type: DestinationType }, {
  description: 'an older pending delivery of the same destination and group, now skipped: the newer one carries the whole state'
})
export type SupersededDelivery = Static<typeof SupersededDelivery>

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

export interface ClaimOptions {
  // Destinations not to claim at all this time.
  excludeDestinations?: readonly string[]
  // Called once per claim for each destination that has due deliveries; returns how many of
  // them may be claimed now (its rate-limit tokens). 0 holds the destination; omitted = no cap.
  budgetFor?: (destination: string, type: DestinationType) => number
}

export interface ListOptions { state?: DeliveryState, limit: number, offset?: number }

export interface Store {
  // Resolves only once the rows are committed (durable); rejects if they cannot be. Pending
  // rows become claimable shortly after (the SQLite store folds them in in batches).
  enqueue: (items: readonly EnqueueItem[], opts: { receivedAt: number }) => Promise<EnqueueResult>
  // Marks due pending rows `sending` and returns them, highest priority first, then by
  // nextAttemptAt.
  claimDue: (now: number, limit: number, opts?: ClaimOptions) => Promise<Delivery[]>
  markSent: (id: number, sentAt: number) => Promise<void>
  // 'superseded' when a newer delivery of the same destination and group exists: this one is
  // then skipped (lastReason superseded) instead of rescheduled.
  markRetry: (id: number, nextAttemptAt: number, reason: FailureReason, error: string) => Promise<'retry' | 'superseded'>
  markDead: (id: number, reason: FailureReason, error: string) => Promise<void>
  // Returns rows a crashed process left `sending` to `pending`; call before dispatching.
  recoverClaims: () => Promise<number>
  list: (opts: ListOptions) => Promise<Delivery[]>
  get: (id: number) => Promise<Delivery | null>
  retryDead: (id: number) => Promise<RetryDeadResult>
  stats: (now: number) => Promise<OutboxStats>
  // Earliest nextAttemptAt among pending rows (null when none), so a dispatcher can sleep.
  nextDueAt: () => Promise<number | null>
  // Deletes sent/skipped rows last updated before `olderThan`, at most `limit` per call
  // (bounded housekeeping). Idempotency keys expire with the window, not with their rows.
  pruneSent: (olderThan: number, limit?: number) => Promise<number>
  close: () => Promise<void>
  // Why the store cannot accept writes right now (null when it can): /-/ready reports it, so
  // Kubernetes stops routing webhooks to a replica that would only answer 503.
  unavailable: () => string | null
  // A failure only a restart clears (e.g. a failed fsync); /-/healthy reports it so the
  // liveness probe restarts the process and SQLite recovers from its file.
  fatal: () => string | null
}

// Stored as an integer (priorityRank) so ORDER BY priority puts P0 first.
export { priorityRank }

export function priorityFromRank (rank: number): PriorityName {
  const p = PRIORITIES[rank]
  if (p === undefined) throw new Error(`invalid priority rank ${rank}`)
  return p
}
