import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { WebhookPayload } from '../alertmanager/webhook.js'
import type { Catalog } from '../config/catalog.js'
import type { PriorityName } from '../config/catalog-schema.js'
import { classifyAlert, enrichGroup, groupPriority, type AlertClass } from '../enrich/enrich.js'
import type { EnrichedGroup } from '../enrich/types.js'
import { routeAlerts, subGroup, type NotifiedRoute } from '../notify/plan.js'
import type { EnqueueItem } from '../store/types.js'

// What the outbox stores for a delivery: the webhook exactly as Alertmanager sent it, plus
// which of its alerts go to that destination. /webhook only classifies and routes (the
// catalog lookup) before the durable commit; full enrichment (SLA clock, links, runbook,
// escalation) runs when the delivery is sent, from the same payload and the same receivedAt,
// so deadlines are what enriching at intake gives, with the catalog in force then: a reload
// between intake and send changes what the message says, not where it goes nor its place in
// the queue, both decided at intake.
export const QueuedWebhook = Type.Object({
  alerts: Type.Union([Type.Array(Type.Integer({ minimum: 0 })), Type.Null()], {
    description: 'indexes into payload.alerts routed to this destination; null = all of them'
  }),
  payload: WebhookPayload
})
export type QueuedWebhook = Static<typeof QueuedWebhook>

export interface ClassifiedWebhook {
  priority: PriorityName
  alerts: Array<{ index: number, fingerprint: string, status: 'firing' | 'resolved', startsAt: string, priority: PriorityName, destinations: string[], matched: boolean } & Pick<AlertClass, 'ignored' | 'unmappedSeverity'>>
}

export function classifyWebhook (payload: WebhookPayload, catalog: Catalog): ClassifiedWebhook {
  const alerts = payload.alerts.map((alert, index) => {
    const c = classifyAlert(alert.labels, catalog)
    return { index, fingerprint: alert.fingerprint, status: alert.status, startsAt: alert.startsAt, priority: c.priority, destinations: c.destinations, matched: c.entry !== undefined, ignored: c.ignored, unmappedSeverity: c.unmappedSeverity }
  })
  return { priority: groupPriority(alerts), alerts }
}

/**
 * The deliveries of a classified webhook: one per destination the catalog routes its alerts
 * to, and one per destination already notified of the group (so it hears the resolve).
 * `receivedJson` is the request body the payload was parsed from, embedded verbatim.
 */
export function queueWebhook (
  payload: WebhookPayload, receivedJson: string, classified: ClassifiedWebhook, catalog: Catalog, notified: readonly NotifiedRoute[]
): Array<Omit<EnqueueItem, 'skip'>> {
  let wholeJson: string | undefined
  return routeAlerts(payload.groupKey, classified.priority, classified.alerts, catalog.doc.destinations, notified).map((r) => ({
    destination: r.destination,
    type: r.type,
    priority: r.priority,
    status: r.status,
    idempotencyKey: r.idempotencyKey,
    body: r.whole ? (wholeJson ??= queuedWebhookJson(null, receivedJson)) : queuedWebhookJson(r.alerts.map((a) => a.index), receivedJson)
  }))
}

// Concatenated, not stringified: the received text is valid JSON already (it was parsed).
export function queuedWebhookJson (alerts: number[] | null, receivedJson: string): string {
  // JSON.parse accepts no byte-order mark inside a document; the request parser skipped it.
  const text = receivedJson.charCodeAt(0) === 0xfeff ? receivedJson.slice(1) : receivedJson
  return `{"alerts":${JSON.stringify(alerts)},"payload":${text}}`
}

const queuedWebhook = TypeCompiler.Compile(QueuedWebhook)

/**
 * Enriches a stored delivery body for sending: the sub-group it routes, with today's catalog
 * and the webhook's own receive time; undefined when the body is not a QueuedWebhook or
 * routes no alert (an empty message would read as "resolved").
 */
export function enrichQueuedWebhook (body: unknown, receivedAt: number, catalog: Catalog): EnrichedGroup | undefined {
  if (!queuedWebhook.Check(body)) return undefined
  const group = enrichGroup(body.payload, catalog, new Date(receivedAt))
  const alerts = body.alerts === null ? group.alerts : body.alerts.flatMap((i) => group.alerts[i] ?? [])
  return alerts.length === 0 ? undefined : subGroup(group, alerts)
}
