import type { FastifyInstance, onRequestHookHandler } from 'fastify'
import type { CatalogHolder } from '../config/catalog-holder.js'
import { formatProblem } from '../config/problems.js'
import type { Metrics } from '../metrics.js'
import { sendError } from './errors.js'

// Alertmanager/Prometheus lifecycle conventions: /-/healthy, /-/ready, POST /-/reload, /metrics.

export interface HealthRouteOptions {
  /** Guards POST /-/reload (the admin token) when set. */
  reloadAuth?: onRequestHookHandler
  catalog: CatalogHolder
  metrics: Metrics
  /** Why the service cannot take webhooks now (shutting down, store failing); null when it can. */
  notReady: () => string | null
}

export async function healthRoutes (app: FastifyInstance, opts: HealthRouteOptions): Promise<void> {
  // Alive while the process answers: a store failure is a readiness matter (it clears by
  // itself when the store recovers); restarting would not help it.
  app.get('/-/healthy', async (_request, reply) => reply.type('text/plain').send('OK'))

  app.get('/-/ready', async (_request, reply) => {
    const reason = opts.notReady()
    if (reason !== null) return sendError(reply, 503, 'not_ready', reason)
    return reply.type('text/plain').send('OK')
  })

  app.post('/-/reload', { ...(opts.reloadAuth !== undefined ? { onRequest: opts.reloadAuth } : {}) }, async (_request, reply) => {
    const result = await opts.catalog.reload()
    if (result.ok) return { status: 'success', changed: result.changed, entries: result.entries }
    // 400 rather than 5xx: the catalog on disk is wrong; retrying without fixing it won't help.
    return reply.code(400).send({ error: 'invalid_catalog', message: `catalog has ${result.problems.length} problem(s); the previous catalog keeps serving`, problems: result.problems.map(formatProblem) })
  })

  app.get('/metrics', async (_request, reply) => {
    return reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics())
  })
}
