import { Type } from '@sinclair/typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, onRequestHookHandler } from 'fastify'
import type { CatalogHolder } from '../config/catalog-holder.js'
import { formatProblem } from '../config/problems.js'
import type { Metrics } from '../metrics.js'
import { ErrorBody, errorResponses, sendError } from './errors.js'

// Alertmanager/Prometheus lifecycle conventions: /-/healthy, /-/ready, POST /-/reload, /metrics.

export interface HealthRouteOptions {
  /** Guards POST /-/reload (the admin token) when set. */
  reloadAuth?: onRequestHookHandler
  catalog: CatalogHolder
  metrics: Metrics
  /** A failure only a restart clears; null when alive. */
  fatal: () => string | null
  /** Why the service cannot take webhooks now (shutting down, store failing); null when it can. */
  notReady: () => string | null
}

export const ReloadSucceeded = Type.Object({
  status: Type.Literal('success'),
  changed: Type.Boolean({ description: 'false when the file was unchanged' }),
  entries: Type.Integer({ minimum: 0 })
})

// 400 is also Fastify's answer to a malformed request body, which has no problems list.
export const ReloadRefused = Type.Composite([ErrorBody, Type.Object({
  problems: Type.Optional(Type.Array(Type.String(), { description: 'invalid_catalog: file:line:col message, one per problem' }))
})])

// A plain-text body (the Prometheus conventions answer "OK"; /metrics is the text exposition).
export function textResponse (description: string, mediaType = 'text/plain') {
  return { description, content: { [mediaType]: { schema: Type.String() } } }
}

export async function healthRoutes (fastify: FastifyInstance, opts: HealthRouteOptions): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.get('/-/healthy', {
    // A store failure that clears by itself is a readiness matter; only one a restart clears
    // (the log could not be synced) fails liveness.
    schema: { summary: 'Liveness: 503 only for a failure a restart clears', response: { 200: textResponse('OK'), 503: ErrorBody, ...errorResponses() } }
  }, async (_request, reply) => {
    const fatal = opts.fatal()
    if (fatal !== null) return sendError(reply, 503, 'unhealthy', fatal)
    return reply.type('text/plain').send('OK')
  })

  app.get('/-/ready', {
    schema: { summary: 'Readiness: 503 while webhooks cannot be made durable', response: { 200: textResponse('OK'), 503: ErrorBody, ...errorResponses() } }
  }, async (_request, reply) => {
    const reason = opts.notReady()
    if (reason !== null) return sendError(reply, 503, 'not_ready', reason)
    return reply.type('text/plain').send('OK')
  })

  app.post('/-/reload', {
    ...(opts.reloadAuth !== undefined ? { onRequest: opts.reloadAuth } : {}),
    schema: { summary: 'Re-read the catalog; the previous one keeps serving if the new one is invalid', response: { 200: ReloadSucceeded, 400: ReloadRefused, ...errorResponses(401) } }
  }, async (_request, reply) => {
    const result = await opts.catalog.reload()
    if (result.ok) return { status: 'success' as const, changed: result.changed, entries: result.entries }
    // 400 rather than 5xx: the catalog on disk is wrong; retrying without fixing it won't help.
    return reply.code(400).send({ error: 'invalid_catalog', message: `catalog has ${result.problems.length} problem(s); the previous catalog keeps serving`, problems: result.problems.map(formatProblem) })
  })

  app.get('/metrics', {
    schema: { summary: 'Prometheus metrics', response: { 200: textResponse('Prometheus text exposition format 0.0.4'), ...errorResponses() } }
  }, async (_request, reply) => {
    return reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics())
  })
}
