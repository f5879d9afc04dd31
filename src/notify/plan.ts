import { highestPriority, type Destination } from '../config/catalog-schema.js'
import { sha256Hex } from '../sha256.js'
import type { EnrichedGroup, Notification } from '../enrich/types.js'
import { renderPagerDutyEvent, type PagerDutyEvent } from './pagerduty/render.js'
import { renderSlackMessage, type SlackMessage } from './slack/render.js'

// Step 3 of the flow, in two halves. routeGroup is what the webhook path runs: one delivery
// per destination an alert is routed to, carrying only that destination's alerts (cheap, so
// /webhook stays fast). renderBody turns a routed sub-group into the wire body; the dispatcher
// runs it at send time (so "respond within N min" is relative to the send) and the preview runs
// both halves via planNotifications.

export function routeGroup (group: EnrichedGroup, destinations: Record<string, Destination>): Notification[] {
  // Sorted ids: the same group always yields the same order, whatever the alert order.
  const ids = [...new Set(group.alerts.flatMap((a) => a.destinations))].sort()
  const out: Notification[] = []
  // Destinations routed every alert (the usual case) share one sub-group object, so the
  // outbox serialises it once. Bodies are read-only from here on.
  let whole: { sub: EnrichedGroup, states: string } | undefined
  for (const id of ids) {
    // Own-property lookup: an id like "constructor" must not find Object.prototype members.
    const dest = Object.prototype.hasOwnProperty.call(destinations, id) ? destinations[id] : undefined
    if (dest === undefined) continue // the catalog loader rejects unknown ids; nothing to send to
    let sub = subGroup(group, id)
    let states: string
    if (sub.alerts.length === group.alerts.length) {
      whole ??= { sub, states: alertStates(sub) }
      sub = whole.sub
      states = whole.states
    } else {
      states = alertStates(sub)
    }
    out.push({ destination: id, type: dest.type, priority: sub.priority, idempotencyKey: keyFor(id, sub, states), body: sub })
  }
  return out
}

export function renderBody (sub: EnrichedGroup, id: string, dest: Destination, opts: { now: Date, clientUrl?: string }): SlackMessage | PagerDutyEvent {
  return dest.type === 'slack'
    ? renderSlackMessage(sub, { name: id, channel: dest.channel }, { now: opts.now })
    : renderPagerDutyEvent(sub, { name: id }, { now: opts.now, ...(opts.clientUrl === undefined ? {} : { clientUrl: opts.clientUrl }) })
}

/** Route and render: what the preview API and `explain` show. */
export function planNotifications (
  group: EnrichedGroup,
  destinations: Record<string, Destination>,
  opts: { now: Date, clientUrl?: string }
): Notification[] {
  return routeGroup(group, destinations).map((n) => ({
    ...n,
    body: renderBody(n.body as EnrichedGroup, n.destination, destinations[n.destination] as Destination, opts)
  }))
}

// The alerts routed to one destination, with status and priority recomputed for them alone.
// Labels common to the whole group are still common to any part of it, so they stay.
export function subGroup (group: EnrichedGroup, destination: string): EnrichedGroup {
  const alerts = group.alerts.filter((a) => a.destinations.includes(destination))
  return {
    ...group,
    alerts,
    status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    priority: highestPriority(alerts.map((a) => a.priority), group.priority)
  }
}

// Same destination, group, status and alert states → same key: Alertmanager retries and HA
// duplicates collapse in the outbox, while any change in what fires makes a new delivery.
export function idempotencyKey (destination: string, group: EnrichedGroup): string {
  return keyFor(destination, group, alertStates(group))
}

// The sorted alert states as JSON (computed once per sub-group, shared by its destinations).
function alertStates (group: EnrichedGroup): string {
  return JSON.stringify(group.alerts.map((a) => `${a.fingerprint}:${a.status}`).sort())
}

// Byte-identical to hashing JSON.stringify([destination, groupKey, status, states]).
function keyFor (destination: string, group: EnrichedGroup, states: string): string {
  return sha256Hex(`[${JSON.stringify(destination)},${JSON.stringify(group.groupKey)},${JSON.stringify(group.status)},${states}]`)
}
