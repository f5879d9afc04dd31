import type { DestinationType } from '../enrich/types.js'
import type { FailureReason } from '../notify/result.js'
import { priorityFromRank, type Delivery, type DeliveryRef, type DeliveryState } from './types.js'

// A deliveries row as both engines store it (times in Unix ms, priority as its rank), and
// its contract form. Shared so the SQLite and PostgreSQL engines read a row the same way.

export interface DeliveryRow {
  id: number, destination: string, type: DestinationType, priority: number, idempotency_key: string,
  group_key: string, body: string, state: DeliveryState, attempts: number, next_attempt_at: number,
  claimed_until: number | null, received_at: number, created_at: number, updated_at: number,
  last_error: string | null, last_reason: FailureReason | null, sent_at: number | null, deferred_until: number | null
}
export interface RefRow { id: number, destination: string, type: DestinationType, priority: number }

export const toRef = (r: RefRow): DeliveryRef => ({ id: r.id, destination: r.destination, type: r.type, priority: priorityFromRank(r.priority) })

export const toDelivery = (r: DeliveryRow): Delivery => ({
  ...toRef(r),
  idempotencyKey: r.idempotency_key,
  groupKey: r.group_key,
  body: JSON.parse(r.body) as unknown,
  state: r.state,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  claimedUntil: r.claimed_until,
  receivedAt: r.received_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  lastError: r.last_error,
  lastReason: r.last_reason,
  sentAt: r.sent_at,
  deferredUntil: r.deferred_until
})
