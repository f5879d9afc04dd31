import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { WebhookPayload } from '../alertmanager/webhook.js'
import type { Catalog } from '../config/catalog.js'
import type { PriorityName } from '../config/catalog-schema.js'
import { classifyAlert, enrichGroup, groupPriority } from '../enrich/enrich.js'
import type { EnrichedAlert, EnrichedGroup, Notification } from '../enrich/types.js'
import { routeAlerts, subGroup } from './plan.js'

// What the outbox holds for a delivery: the webhook exactly as Alertmanager sent it, plus
// which of its alerts go to that destination. /webhook only classifies and routes (the
// catalog lookup) before the durable commit; full enrichment — SLA clock, links, runbook,
// escalation — runs when the delivery is sent, from the same payload and the same receivedAt
// (so deadlines are what enriching at intake gives) with the catalog in force then: a reload
// between intake and send changes what the message says (runbook, priority, deadline) but not
// where it goes nor its place in the queue, both decided at intake. Storing the received text
// as is costs no serialisation and about half the bytes of the enriched group.
export const QueuedWebhook = Type.Object({
  alerts: Type.Union([Type.Array(Type.Integer({ minimum: 0 })), Type.Null()], {
    description: 'indexes into payload.alerts routed to this destination; null = all of them'
  }),
  payload: WebhookPayload
})
export type QueuedWebhook = Static<typeof QueuedWebhook>

/** A notification for the outbox whose body is already JSON (a QueuedWebhook). */
export type QueuedNotification = Omit<Notification, 'body'> & { body: undefined, bodyJson: string }

export interface RoutedWebhook {
  priority: PriorityName
  alerts: Array<{ status: EnrichedAlert['status'], priority: PriorityName, matched: boolean }>
  notifications: QueuedNotification[]
}

/**
 * Classifies and routes a validated payload. `receivedJson` is the request body the payload
 * was parsed from; it is embedded verbatim in each delivery body.
 */
export function routeWebhook (payload: WebhookPayload, receivedJson: string, catalog: Catalog): RoutedWebhook {
  const alerts = payload.alerts.map((alert, index) => {
    const c = classifyAlert(alert.labels, catalog)
    return { index, fingerprint: alert.fingerprint, status: alert.status, priority: c.priority, destinations: c.destinations, matched: c.entry !== undefined }
  })
  const priority = groupPriority(alerts)
  let wholeJson: string | undefined
  const notifications = routeAlerts(payload.groupKey, priority, alerts, catalog.doc.destinations).map((r): QueuedNotification => ({
    destination: r.destination,
    type: r.type,
    priority: r.priority,
    idempotencyKey: r.idempotencyKey,
    body: undefined,
    bodyJson: r.whole ? (wholeJson ??= queuedWebhookJson(null, receivedJson)) : queuedWebhookJson(r.alerts.map((a) => a.index), receivedJson)
  }))
  return { priority, alerts, notifications }
}

// Concatenated, not stringified: the received text is valid JSON already (it was parsed).
export function queuedWebhookJson (alerts: number[] | null, receivedJson: string): string {
  // JSON.parse accepts no byte-order mark inside a document; the request parser skipped it.
  const text = receivedJson.charCodeAt(0) === 0xfeff ? receivedJson.slice(1) : receivedJson
  return `{"alerts":${JSON.stringify(alerts)},"payload":${text}}`
}

const queuedWebhook = TypeCompiler.Compile(QueuedWebhook)

/**
 * The enriched sub-group a queued delivery renders, with today's catalog and the webhook's
 * own receive time; undefined when the body is not a QueuedWebhook or routes no alert.
 */
export function materialise (body: unknown, receivedAt: number, catalog: Catalog): EnrichedGroup | undefined {
  if (!queuedWebhook.Check(body)) return undefined
  const group = enrichGroup(body.payload, catalog, new Date(receivedAt))
  const alerts = body.alerts === null ? group.alerts : body.alerts.flatMap((i) => group.alerts[i] ?? [])
  // Only a corrupted body routes nothing; an empty message would read as "resolved".
  return alerts.length === 0 ? undefined : subGroup(group, alerts)
}
