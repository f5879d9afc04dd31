import { Type } from '@sinclair/typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { actionFor, parseEvent, PagerDutyWebhookBody, verifySignature, type SignatureCheck } from '../acknowledge/pagerduty-webhook.js'
import type { AcknowledgementResult, ApplyAcknowledgement } from '../incidents/types.js'
import type { Metrics, PagerDutyWebhookOutcome } from '../metrics.js'
import { errorResponses, sendError } from './errors.js'
import { validatedInHandler } from './request-body.js'

// POST /integrations/pagerduty — PagerDuty webhooks v3 in: acknowledgements, un-acknowledgements
// and resolves of the incidents we opened. PagerDuty drops a delivery answered with a 4xx other
// than 429 and disables the subscription after three in a row, so only a bad signature (401) and
// a body that is not JSON at all (400) are 4xx; events we do not use, or for incidents that are
// not ours, are answered 200 and counted. 503 when the acknowledgement cannot be recorded:
// PagerDuty retries for up to 48 h. Nothing here calls out, so the answer comes well within
// PagerDuty's 5 s.

export interface PagerDutyWebhookConfig {
  /** Signing secrets of the subscription (several while one is rotated). */
  secrets: readonly string[]
  acknowledge: ApplyAcknowledgement
}

export interface PagerDutyWebhookRouteOptions {
  /** Unset: the route answers 404, so an unsigned event is never accepted. */
  pagerDuty: PagerDutyWebhookConfig | undefined
  bodyLimit: number
  metrics: Metrics
  now: () => Date
}

const HANDLED = ['applied', 'duplicate', 'unknown_incident', 'no_change', 'ignored_type', 'unrecognized'] as const

export const PagerDutyWebhookAnswer = Type.Object({
  outcome: Type.Union(HANDLED.map((o) => Type.Literal(o)), { description: 'ignored_type: an event type we do not act on; unrecognized: not shaped like a v3 event, or a NUL character in its id, incident_key or agent; both are ignored' }),
  eventId: Type.Optional(Type.String())
})

const SIGNATURE_PROBLEMS: Record<Exclude<SignatureCheck, 'valid'>, string> = {
  missing: 'missing X-PagerDuty-Signature header',
  no_v1: 'X-PagerDuty-Signature holds no v1 signature',
  mismatch: 'X-PagerDuty-Signature matches none of the signing secrets in PAGERDUTY_WEBHOOK_SECRET'
}

export async function pagerDutyWebhookRoutes (app: FastifyInstance, opts: PagerDutyWebhookRouteOptions): Promise<void> {
  const { pagerDuty, metrics, now } = opts
  const count = (outcome: PagerDutyWebhookOutcome): void => { metrics.pagerDutyWebhooks.inc({ outcome }) }

  // The signature covers the exact bytes received, so this route (and only this one: the plugin
  // is encapsulated) takes every body as a Buffer and parses JSON itself after verifying.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })

  app.withTypeProvider<TypeBoxTypeProvider>().post('/integrations/pagerduty', {
    ...validatedInHandler,
    schema: {
      summary: 'PagerDuty webhooks v3 (signed): acknowledges, un-acknowledges and resolves our incidents by incident_key (= our dedup_key)',
      headers: Type.Object({ 'x-pagerduty-signature': Type.Optional(Type.String({ description: 'v1=<hex HMAC-SHA256 of the raw body>[,v1=…]' })) }),
      body: PagerDutyWebhookBody,
      response: { 200: PagerDutyWebhookAnswer, ...errorResponses(400, 401, 404, 413, 503) }
    },
    bodyLimit: opts.bodyLimit,
    onResponse: async (_request, reply) => {
      // Rejected by the body parser, before the handler counts.
      if (reply.statusCode === 413) count('too_large')
    }
  }, async (request, reply) => {
    if (pagerDuty === undefined) {
      count('not_configured')
      return sendError(reply, 404, 'not_configured', 'PagerDuty webhooks are not enabled here: set PAGERDUTY_WEBHOOK_SECRET to the signing secret of the webhook subscription')
    }
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)
    const header = request.headers['x-pagerduty-signature']
    const signature = verifySignature(raw, Array.isArray(header) ? header.join(',') : header, pagerDuty.secrets)
    if (signature !== 'valid') {
      count('bad_signature')
      request.log.warn({ problem: signature }, 'PagerDuty webhook rejected: bad signature')
      return sendError(reply, 401, 'unauthorized', SIGNATURE_PROBLEMS[signature])
    }

    let json: unknown
    try {
      json = JSON.parse(raw.toString('utf8'))
    } catch (err) {
      count('invalid_json')
      return sendError(reply, 400, 'invalid_json', `body is not valid JSON: ${(err as Error).message}`)
    }
    const event = parseEvent(json)
    if (event === undefined) {
      count('unrecognized')
      request.log.warn('PagerDuty webhook ignored: not shaped like a v3 event ({event: {id, event_type, data}}), or a NUL character in its id, incident_key or agent')
      return reply.code(200).send({ outcome: 'unrecognized' as const })
    }
    const { eventId, eventType, incidentKey } = event
    const action = actionFor(eventType)
    if (action === undefined) {
      count('ignored_type')
      request.log.debug({ eventId, eventType }, 'PagerDuty webhook ignored: event type not used')
      return reply.code(200).send({ outcome: 'ignored_type' as const, eventId })
    }
    if (incidentKey === null) {
      // Opened in PagerDuty without a dedup_key, so not one of ours.
      count('unknown_incident')
      request.log.info({ eventId, eventType }, 'PagerDuty webhook for an incident without incident_key: not ours')
      return reply.code(200).send({ outcome: 'unknown_incident' as const, eventId })
    }

    const by = event.agent?.name ?? 'PagerDuty'
    let result: AcknowledgementResult
    try {
      result = await pagerDuty.acknowledge({ dedupKey: incidentKey, action, by, via: 'pagerduty', at: event.occurredAt ?? now().getTime(), eventId })
    } catch (err) {
      count('unavailable')
      request.log.error({ err: err instanceof Error ? err.message : String(err), eventId, eventType }, 'PagerDuty webhook not recorded; answered 503 so PagerDuty retries')
      reply.header('retry-after', '5')
      return sendError(reply, 503, 'unavailable', 'cannot record the acknowledgement right now; retry')
    }
    const { outcome } = result
    count(outcome)
    request.log.info({ eventId, eventType, action, incidentKey, by, outcome }, 'PagerDuty webhook handled')
    return reply.code(200).send({ outcome, eventId })
  })
}
