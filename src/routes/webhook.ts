import { Type } from '@sinclair/typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { WebhookPayload } from '../alertmanager/webhook.js'
import { PriorityName } from '../config/catalog-schema.js'
import type { Metrics, WebhookOutcome } from '../metrics.js'
import { truncate } from '../notify/text.js'
import type { Intake, IntakeResult } from '../outbox/intake.js'
import { createAlertReport } from './alert-report.js'
import { createAuthHook, type WebhookAuthConfig } from './auth.js'
import { errorResponses, JSON_BODY_ERRORS, sendError } from './errors.js'
import { parseWebhookBody, requireJson, validatedInHandler } from './request-body.js'

// POST /webhook — steps 1–4 of the data flow: authenticate, validate, classify and route, and
// make durable. 2xx only after `intake` has committed; 503 when it cannot (Alertmanager retries
// 5xx and treats every 4xx as permanent). The rest of enrichment runs at send time from the
// queued payload (outbox/queued-webhook.ts): before answering, only what decides where a page goes.

// A group key holds the group's label values and has no length limit of its own: a log line
// carries its start, so one huge group cannot make every line of it huge.
const LOGGED_GROUP_KEY_MAX = 500
const loggedGroupKey = (groupKey: string): string => truncate(groupKey, LOGGED_GROUP_KEY_MAX)

const REJECTION_OUTCOMES: Record<number, WebhookOutcome> = {
  400: 'bad_request', 401: 'unauthorized', 413: 'too_large', 415: 'unsupported_media_type'
}

export const WebhookAccepted = Type.Object({
  status: Type.Union([Type.Literal('accepted'), Type.Literal('duplicate')], { description: 'duplicate: every notification was already queued' }),
  groupKey: Type.String(),
  priority: PriorityName,
  alerts: Type.Integer({ minimum: 1 }),
  enqueued: Type.Integer({ minimum: 0 }),
  duplicates: Type.Integer({ minimum: 0 }),
  skipped: Type.Integer({ minimum: 0 }),
  ignored: Type.Integer({ minimum: 0, description: 'alerts whose severity the catalog ignores (severityPriority: ignore): sent nowhere' })
})

export interface WebhookRouteOptions {
  auth: WebhookAuthConfig
  bodyLimit: number
  metrics: Metrics
  intake: Intake
  now: () => Date
}

export async function webhookRoutes (app: FastifyInstance, opts: WebhookRouteOptions): Promise<void> {
  const { metrics, intake, now } = opts
  const count = (outcome: WebhookOutcome): void => { metrics.webhooksReceived.inc({ outcome }) }
  const reportAlerts = createAlertReport(metrics)

  // The received text is kept (it becomes the queued delivery body, see outbox/queued-webhook.ts),
  // parsed by Fastify's own JSON parser: same limits, same prototype-poisoning refusal.
  const receivedText = new WeakMap<object, string>()
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, text, done) => {
    receivedText.set(request, text as string)
    parseJson(request, text as string, done)
  })

  app.withTypeProvider<TypeBoxTypeProvider>().post('/webhook', {
    ...validatedInHandler,
    schema: {
      summary: 'Alertmanager webhook receiver: 200 once the notifications are durable',
      body: WebhookPayload,
      response: { 200: WebhookAccepted, ...errorResponses(...JSON_BODY_ERRORS, 401, 503) }
    },
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
    const receivedAt = now().getTime()
    let result: IntakeResult
    try {
      result = await intake(payload, receivedText.get(request) ?? JSON.stringify(payload), receivedAt)
    } catch (err) {
      count('unavailable')
      request.log.error({ err: (err as Error).message, groupKey: loggedGroupKey(payload.groupKey) }, 'webhook not persisted; answered 503 so Alertmanager retries')
      reply.header('retry-after', '5')
      return sendError(reply, 503, 'unavailable', 'cannot persist the notification right now; retry')
    }
    const outcome: WebhookOutcome = result.enqueued === 0 && result.duplicates > 0 ? 'duplicate' : 'accepted'
    count(outcome)
    reportAlerts(payload, result.alerts, request.log)
    const { enqueued, duplicates, skipped, priority } = result
    const ignored = result.alerts.filter((a) => a.ignored).length
    request.log.info({ groupKey: loggedGroupKey(payload.groupKey), receiver: payload.receiver, status: payload.status, alerts: payload.alerts.length, priority, deliveries: enqueued, duplicates, skipped, ignored }, 'webhook accepted')
    return reply.code(200).send({ status: outcome, groupKey: payload.groupKey, priority, alerts: payload.alerts.length, enqueued, duplicates, skipped, ignored })
  })
}
