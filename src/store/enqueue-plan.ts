import type { PriorityName } from '../config/catalog-schema.js'
import { utc } from './incident-row.js'
import { priorityFromRank, type DeliveryRef, type EnqueueItem, type NotifiedDestination } from './types.js'

// What both engines decide for a webhook's notifications from what they read under the
// group's lock (pure); each engine writes the outcome with its own SQL.

// A resolve goes nowhere a held notification was the group's only news: the destinations of
// the held deliveries just skipped that heard nothing else of the group.
export function heldBackDestinations (skippedHeld: readonly DeliveryRef[], notified: readonly NotifiedDestination[]): Set<string> {
  return new Set(skippedHeld.filter((d) => !notified.some((n) => n.destination === d.destination)).map((d) => d.destination))
}

export interface ItemOutcome {
  state: 'pending' | 'skipped'
  // A resolve held back (resolved_while_deferred): reported with the skipped held ones.
  held: boolean
  // Held for business hours: not yet told, so not remembered as notified.
  deferred: boolean
  lastReason: 'resolved_while_deferred' | 'not_configured' | null
  nextAttemptAt: number
  deferredUntil: number | null
}

export function itemOutcome (item: EnqueueItem, heldBack: ReadonlySet<string>, now: number): ItemOutcome {
  const held = item.status === 'resolved' && heldBack.has(item.destination)
  const state = item.skip === true || held ? 'skipped' : 'pending'
  const deferUntil = state === 'pending' && item.notBefore !== undefined && item.notBefore > now ? item.notBefore : null
  return {
    state,
    held,
    deferred: deferUntil !== null,
    lastReason: held ? 'resolved_while_deferred' : item.skip === true ? 'not_configured' : null,
    nextAttemptAt: deferUntil ?? now,
    deferredUntil: deferUntil
  }
}

// Timeline details a webhook writes to its incident.
export const webhookTimeline = {
  deferred: (destination: string, until: number): string => `held for business hours: ${destination} at ${utc(until)}`,
  raised: (fromRank: number, to: PriorityName, respondBy: number): string =>
    `priority raised from ${priorityFromRank(fromRank)} to ${to}; respond by ${utc(respondBy)}`,
  resolved: 'resolved (Alertmanager)'
}
