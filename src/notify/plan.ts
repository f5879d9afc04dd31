import type { AlertStatus } from '../alertmanager/webhook.js'
import { highestPriority, type Destination, type PriorityName } from '../config/catalog-schema.js'
import { sha256Hex } from '../sha256.js'
import type { EnrichedAlert, EnrichedGroup, Notification } from '../enrich/types.js'
import { renderPagerDutyEvent, type PagerDutyEvent } from './pagerduty/render.js'
import { renderSlackMessage, slackChannelLabel, type SlackMessage } from './slack/render.js'

// Step 3 of the flow, in two halves. Routing (routeAlerts) decides which alerts go to which
// destination and each delivery's idempotency key; the webhook path runs it on classified
// alerts and queues the webhook as received (outbox/queued-webhook.ts). renderBody turns an enriched
// sub-group into the wire body; the dispatcher runs it at send time (so "respond within N min"
// is relative to the send) and the preview runs both halves via planNotifications.

// What routing needs of an alert: enriched alerts (preview) and the webhook path's classified
// alerts (outbox/queued-webhook.ts) both have it, so both route through routeAlerts.
export type RoutableAlert = Pick<EnrichedAlert, 'fingerprint' | 'status' | 'startsAt' | 'priority' | 'destinations'>

// A destination already told that the group fires (the store remembers it until the group
// resolves): it hears every later notification of the group, even when the catalog has since
// routed the group elsewhere, so a resolve always reaches where its trigger went.
export interface NotifiedRoute { destination: string, type: Destination['type'], priority: PriorityName }

export interface Route<A extends RoutableAlert> {
  destination: string
  type: Destination['type']
  /** The alerts routed there, in payload order. */
  alerts: A[]
  /** Every alert of the group goes there (the usual case). */
  whole: boolean
  status: AlertStatus
  priority: PriorityName
  idempotencyKey: string
}

export function routeAlerts<A extends RoutableAlert> (
  groupKey: string, groupPriority: PriorityName, alerts: readonly A[], destinations: Record<string, Destination>,
  notified: readonly NotifiedRoute[] = []
): Array<Route<A>> {
  // Sorted ids: the same group always yields the same order, whatever the alert order.
  const ids = [...new Set(alerts.flatMap((a) => a.destinations))].sort()
  const out: Array<Route<A>> = []
  let wholeStates: string | undefined
  const keyFor = groupKeys(groupKey)
  for (const id of ids) {
    // Own-property lookup: an id like "constructor" must not find Object.prototype members.
    const dest = Object.prototype.hasOwnProperty.call(destinations, id) ? destinations[id] : undefined
    if (dest === undefined) continue // the catalog loader rejects unknown ids; nothing to send to
    const routed = alerts.filter((a) => a.destinations.includes(id))
    const whole = routed.length === alerts.length
    const states = whole ? (wholeStates ??= alertStates(routed)) : alertStates(routed)
    const { status, priority } = routedState(routed, groupPriority)
    out.push({ destination: id, type: dest.type, alerts: routed, whole, status, priority, idempotencyKey: keyFor(id, status, states) })
  }
  // A notified destination the catalog no longer routes to gets the whole group, at the
  // priority it was paged with.
  const { status } = routedState(alerts, groupPriority)
  for (const n of notified) {
    if (ids.includes(n.destination)) continue
    out.push({ destination: n.destination, type: n.type, alerts: [...alerts], whole: true, status, priority: n.priority, idempotencyKey: keyFor(n.destination, status, wholeStates ??= alertStates(alerts)) })
  }
  return out
}

// One delivery per destination an alert is routed to, carrying only that destination's
// alerts as an enriched sub-group (what the preview renders).
export function routeGroup (group: EnrichedGroup, destinations: Record<string, Destination>): Notification[] {
  return routeAlerts(group.groupKey, group.priority, group.alerts, destinations).map((r) => ({
    destination: r.destination,
    type: r.type,
    priority: r.priority,
    idempotencyKey: r.idempotencyKey,
    body: subGroup(group, r.alerts)
  }))
}

// `incident`: the group's incident state line ("Acknowledged by …"), when there is one to say.
// incidentId/acknowledgedBy: what a per-incident Slack message shows (Acknowledge button,
// "Acknowledged by").
export interface RenderOptions { now: Date, clientUrl?: string, incident?: string, incidentId?: number, acknowledgedBy?: string }

export function renderBody (sub: EnrichedGroup, id: string, dest: Destination, opts: RenderOptions): SlackMessage | PagerDutyEvent {
  const incident = opts.incident === undefined ? {} : { incident: opts.incident }
  return dest.type === 'slack'
    ? renderSlackMessage(sub, { name: id, channel: slackChannelLabel(id, dest) }, {
      now: opts.now,
      ...incident,
      ...(opts.incidentId !== undefined ? { incidentId: opts.incidentId } : {}),
      ...(opts.acknowledgedBy !== undefined ? { acknowledgedBy: opts.acknowledgedBy } : {})
    })
    : renderPagerDutyEvent(sub, { name: id }, { now: opts.now, ...incident, ...(opts.clientUrl === undefined ? {} : { clientUrl: opts.clientUrl }) })
}

/** Route and render: what the preview API and `explain` show. */
export function planNotifications (
  group: EnrichedGroup,
  destinations: Record<string, Destination>,
  opts: RenderOptions
): Notification[] {
  return routeGroup(group, destinations).map((n) => ({
    ...n,
    body: renderBody(n.body as EnrichedGroup, n.destination, destinations[n.destination] as Destination, opts)
  }))
}

// The alerts routed to one destination as a group, with status and priority recomputed for
// them alone. Labels common to the whole group are still common to any part of it, so they stay.
export function subGroup (group: EnrichedGroup, alerts: EnrichedAlert[]): EnrichedGroup {
  return { ...group, alerts, ...routedState(alerts, group.priority) }
}

function routedState (alerts: readonly RoutableAlert[], groupPriority: PriorityName): { status: AlertStatus, priority: PriorityName } {
  return {
    status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    priority: highestPriority(alerts.map((a) => a.priority), groupPriority)
  }
}

// The sorted alert states as JSON (computed once per sub-group, shared by its destinations).
// startsAt tells a re-fire from the first fire: Prometheus gives a re-fired alert a new one.
function alertStates (alerts: readonly RoutableAlert[]): string {
  return JSON.stringify(alerts.map((a) => `${a.fingerprint}:${a.status}:${a.startsAt}`).sort())
}

// Same destination, group, status and alert states → same key: Alertmanager retries and HA
// duplicates collapse in the outbox, while any change in what fires (an alert added,
// resolved, or resolved and fired again) makes a new delivery. The key starts with a hash of
// the group alone, so the keys of one webhook sort together in the store's unique index (one
// page written per webhook, not one per destination).
// The rest is byte-identical to hashing JSON.stringify([destination, groupKey, status, states]).
function groupKeys (groupKey: string): (destination: string, status: AlertStatus, states: string) => string {
  const prefix = sha256Hex(groupKey).slice(0, 16)
  return (destination, status, states) =>
    prefix + sha256Hex(`[${JSON.stringify(destination)},${JSON.stringify(groupKey)},${JSON.stringify(status)},${states}]`)
}
