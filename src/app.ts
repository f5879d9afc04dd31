import fastifySwagger from '@fastify/swagger'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { CatalogHolder } from './config/catalog-holder.js'
import type { Metrics } from './metrics.js'
import type { AcknowledgePort } from './incidents/acknowledge-port.js'
import type { Intake } from './outbox/intake.js'
import type { Store } from './store/types.js'
import { createAuthHook, type WebhookAuthConfig } from './routes/auth.js'
import { deliveriesRoutes } from './routes/deliveries.js'
import { registerErrorHandlers } from './routes/errors.js'
import { healthRoutes } from './routes/health.js'
import { OPENAPI_OPTIONS, openapiRoutes } from './routes/openapi.js'
import { previewRoutes } from './routes/preview.js'
import { runbooksRoutes } from './routes/runbooks.js'
import { slackInteractionsRoutes } from './routes/slack-interactions.js'
import { webhookRoutes } from './routes/webhook.js'

// buildApp wires the HTTP edge from injected parts; it opens no files and starts no timers,
// so tests build as many apps as they like and main.ts owns the process lifecycle.

export interface AppDeps {
  auth: WebhookAuthConfig
  /** Bearer token for the admin routes (deliveries, replay, reload); unset leaves them open. */
  adminToken?: string
  bodyLimit: number
  runbooksDir: string
  catalog: CatalogHolder
  metrics: Metrics
  intake: Intake
  store: Store
  now?: () => Date
  logger?: FastifyBaseLogger
  /** Extra readiness condition (e.g. shutting down); the store's own state is always checked. */
  notReady?: () => string | null
  /** Wakes the dispatcher (a dead letter replayed). */
  wakeDispatcher?: () => void
  /** Verifies Slack interactivity requests; unset turns POST /integrations/slack/interactions off (404). */
  slackSigningSecret?: string
  /** Where a Slack Acknowledge click goes (the incidents module). */
  acknowledge?: AcknowledgePort
}

// Secret-bearing fields that must never reach a log line, at any level.
export const LOG_REDACT_PATHS = [
  'req.headers.authorization', 'headers.authorization', '*.webhookUrl', '*.routingKey', '*.routing_key', '*.token', '*.password', '*.botToken', '*.signingSecret', '*.response_url'
]

export async function buildApp (deps: AppDeps): Promise<FastifyInstance> {
  const now = deps.now ?? (() => new Date())
  const app = Fastify({
    ...(deps.logger !== undefined ? { loggerInstance: deps.logger } : { logger: false }),
    requestIdHeader: 'x-request-id',
    // Per-request logs come from the routes themselves (webhook accepted, …).
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    bodyLimit: deps.bodyLimit
  })

  registerErrorHandlers(app)
  app.addHook('onResponse', async (request, reply) => {
    deps.metrics.httpRequestSeconds.observe({
      route: request.routeOptions.url ?? 'unmatched',
      method: request.method,
      status_code: String(reply.statusCode)
    }, reply.elapsedTime / 1000)
  })

  // Before the routes: it collects each route's schema as the route is added.
  await app.register(fastifySwagger, OPENAPI_OPTIONS)
  await app.register(openapiRoutes)
  await app.register(webhookRoutes, { auth: deps.auth, bodyLimit: deps.bodyLimit, metrics: deps.metrics, intake: deps.intake, now })
  await app.register(previewRoutes, { catalog: deps.catalog, bodyLimit: deps.bodyLimit, now })
  const adminAuth = deps.adminToken !== undefined ? createAuthHook({ bearerToken: deps.adminToken }) : undefined
  await app.register(async (admin) => {
    // Encapsulated: the hook guards only the routes registered in here.
    if (adminAuth !== undefined) admin.addHook('onRequest', adminAuth)
    await admin.register(deliveriesRoutes, { store: deps.store, ...(deps.wakeDispatcher !== undefined ? { wakeDispatcher: deps.wakeDispatcher } : {}) })
  })
  await app.register(runbooksRoutes, { runbooksDir: deps.runbooksDir })
  await app.register(slackInteractionsRoutes, {
    ...(deps.slackSigningSecret !== undefined ? { signingSecret: deps.slackSigningSecret } : {}),
    ...(deps.acknowledge !== undefined ? { acknowledge: deps.acknowledge } : {}),
    metrics: deps.metrics,
    now
  })
  await app.register(healthRoutes, {
    ...(adminAuth !== undefined ? { reloadAuth: adminAuth } : {}),
    catalog: deps.catalog,
    metrics: deps.metrics,
    fatal: () => deps.store.fatal(),
    notReady: () => deps.notReady?.() ?? deps.store.unavailable()
  })
  return app
}
