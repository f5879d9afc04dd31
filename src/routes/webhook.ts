import type { FastifyInstance } from 'fastify'
import type { CatalogHolder } from '../config/catalog-holder.js'
import { enrichGroup } from '../enrich/enrich.js'
import type { EnrichedGroup, Notification } from '../enrich/types.js'
import type { Metrics, WebhookOutcome } from '../metrics.js'
import { routeGroup } from '../notify/plan.js'
import { createAuthHook, type WebhookAuthConfig } from './auth.js'
import { sendError } from './errors.js'
import { parseWebhookBody, requireJson } from './ingest.js'

// POST /webhook — steps 1–4 of the data flow: authenticate, validate, enrich, plan, and make
// durable. 2xx only after `intake` has committed; 503 when it cannot (Alertmanager retries 5xx
// and treats every 4xx as permanent).

const REJECTION_OUTCOMES: Record<number, WebhookOutcome> = {
  400: 'bad_request', 401: 'unauthorized', 413: 'too_large', 415: 'unsupported_media_type'
}

export interface IntakeResult { enqueued: number, duplicates: number, skipped: number }
export type Intake = (group: EnrichedGroup, notifications: Notification[], receivedAt: number) => Promise<IntakeResult>

export interface WebhookRouteOptions {
  auth: WebhookAuthConfig
  bodyLimit: number
  catalog: CatalogHolder
  metrics: Metrics
  intake: Intake
  now: () => Date
}

export async function webhookRoutes (app: FastifyInstance, opts: WebhookRouteOptions): Promise<void> {
  const { metrics, catalog, intake, now } = opts
  const count = (outcome: WebhookOutcome): void => { metrics.webhooksReceived.inc({ outcome }) }

  app.post('/webhook', {
    bodyLimit: opts.bodyLimit,
    onRequest: [createAuthHook(opts.auth), requireJson],
    // Rejections happen in hooks, the body parser and the handler; count them in one place.
    onResponse: async (_request, reply) => {
      const outcome = REJECTION_OUTCOMES[reply.statusCode]
      if (outcome !== undefined) count(outcome)
    }
  }, async (request, reply) => {
    const payload = parseWebhookBody(request.body, reply)
    if (payload === undefined) return reply
    const receivedAt = now()
    const current = catalog.current()
    const group = enrichGroup(payload, current, receivedAt)
    const notifications = routeGroup(group, current.doc.destinations)
    let result: IntakeResult
    try {
      result = await intake(group, notifications, receivedAt.getTime())
    } catch (err) {
      count('unavailable')
      request.log.error({ err, groupKey: group.groupKey }, 'webhook not persisted; answered 503 so Alertmanager retries')
      reply.header('retry-after', '5')
      return sendError(reply, 503, 'unavailable', 'cannot persist the notification right now; retry')
    }
    const outcome: WebhookOutcome = result.enqueued === 0 && result.duplicates > 0 ? 'duplicate' : 'accepted'
    count(outcome)
    for (const a of group.alerts) metrics.alertsEnriched.inc({ priority: a.priority, status: a.status, matched: String(a.matched) })
    request.log.info({ groupKey: group.groupKey, receiver: group.receiver, status: group.status, alerts: group.alerts.length, priority: group.priority, deliveries: result.enqueued, duplicates: result.duplicates, skipped: result.skipped }, 'webhook accepted')
    return reply.code(200).send({ status: outcome, groupKey: group.groupKey, priority: group.priority, alerts: group.alerts.length, ...result })
  })
}
