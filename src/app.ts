import fastifySwagger from '@fastify/swagger'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { CatalogHolder } from './config/catalog-holder.js'
import type { Metrics } from './metrics.js'
import type { Intake } from './outbox/intake.js'
import type { Store } from './store/types.js'
import { createAuthHook, type WebhookAuthConfig } from './routes/auth.js'
import { deliveriesRoutes } from './routes/deliveries.js'
import { registerErrorHandlers } from './routes/errors.js'
import { healthRoutes } from './routes/health.js'
import { incidentsRoutes } from './routes/incidents.js'
import { createAcknowledger } from './incidents/acknowledge.js'
import type { ApplyAcknowledgement } from './incidents/types.js'
import { pagerDutyWebhookRoutes, type PagerDutyWebhookConfig } from './routes/pagerduty-webhook.js'
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
  /** PagerDuty webhooks v3 intake; unset: /integrations/pagerduty answers 404. */
  // The acknowledgement port defaults to the app's own (the incident store).
  pagerDuty?: Omit<PagerDutyWebhookConfig, 'acknowledge'> & Partial<Pick<PagerDutyWebhookConfig, 'acknowledge'>>
  /** Wakes the dispatcher (a dead letter replayed). */
  wakeDispatcher?: () => void
  /** Whether a destination has its secret (an acknowledgement to PagerDuty is skipped otherwise). */
  isConfigured?: (destination: string) => boolean
  /** Bot-token Slack destinations (with their token): an acknowledgement edits their incident message. */
  isSlackApp?: (destination: string) => boolean
  /** The acknowledgement port (built from the store by default); PagerDuty webhooks and Slack call it too. */
  acknowledge?: ApplyAcknowledgement
  /** Verifies Slack interactivity requests; unset turns POST /integrations/slack/interactions off (404). */
  slackSigningSecret?: string
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

  const acknowledge = deps.acknowledge ?? createAcknowledger({
    store: deps.store,
    metrics: deps.metrics,
    catalog: () => deps.catalog.current(),
    isConfigured: deps.isConfigured ?? (() => true),
    ...(deps.isSlackApp !== undefined ? { isSlackApp: deps.isSlackApp } : {}),
    ...(deps.wakeDispatcher !== undefined ? { wakeDispatcher: deps.wakeDispatcher } : {})
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
  await app.register(pagerDutyWebhookRoutes, { pagerDuty: deps.pagerDuty === undefined ? undefined : { secrets: deps.pagerDuty.secrets, acknowledge: deps.pagerDuty.acknowledge ?? acknowledge }, bodyLimit: deps.bodyLimit, metrics: deps.metrics, now })
  await app.register(previewRoutes, { catalog: deps.catalog, bodyLimit: deps.bodyLimit, now, findIncident: deps.store.findIncident })
  const adminAuth = deps.adminToken !== undefined ? createAuthHook({ bearerToken: deps.adminToken }) : undefined
  await app.register(async (admin) => {
    // Encapsulated: the hook guards only the routes registered in here.
    if (adminAuth !== undefined) admin.addHook('onRequest', adminAuth)
    await admin.register(deliveriesRoutes, { store: deps.store, ...(deps.wakeDispatcher !== undefined ? { wakeDispatcher: deps.wakeDispatcher } : {}) })
    await admin.register(incidentsRoutes, { store: deps.store, acknowledge, now })
  })
  await app.register(runbooksRoutes, { runbooksDir: deps.runbooksDir })
  await app.register(slackInteractionsRoutes, {
    ...(deps.slackSigningSecret !== undefined ? { signingSecret: deps.slackSigningSecret } : {}),
    acknowledge,
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
