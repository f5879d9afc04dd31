import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import pino, { type Logger } from 'pino'
import { buildApp, LOG_REDACT_PATHS } from './app.js'
import { catalogReadProblem, parseCatalog, withOverrides, type CatalogResult } from './config/catalog.js'
import { createCatalogHolder } from './config/catalog-holder.js'
import { formatProblem } from './config/problems.js'
import { loadSettings, type Env } from './config/settings.js'
import { countSkipped, createMetrics, initDestinationLabels } from './metrics.js'
import { createDestinationRegistry, type DestinationRegistry } from './notify/destinations.js'
import { createDispatcher } from './outbox/dispatcher.js'
import type { RateLimit } from './outbox/rate-limit.js'
import { createSqliteStore } from './outbox/sqlite-store.js'
import { createIntake } from './outbox/intake.js'
import { materialise } from './notify/queued.js'

// The composition root: settings → catalog → store → notifiers → dispatcher → HTTP, and the
// process lifecycle (SIGTERM drains in-flight sends, SIGHUP reloads the catalog).

export async function serve (env: Env): Promise<void> {
  const settings = loadSettings(env)
  const logger: Logger = pino({ level: settings.logLevel, redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' } })
  const now = (): Date => new Date()

  const catalogText = await readFile(settings.catalogPath, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(formatProblem(catalogReadProblem(settings.catalogPath, err)))
  })
  const parse = (text: string, file: string): CatalogResult => withOverrides(parseCatalog(text, file), { runbookBaseUrl: settings.runbookBaseUrl })
  const parsed = parse(catalogText, settings.catalogPath)
  if (!parsed.ok) {
    for (const p of parsed.problems) console.error(formatProblem(p))
    throw new Error(`${settings.catalogPath}: ${parsed.problems.length} problem(s); refusing to start`)
  }

  const metrics = createMetrics()
  const bindDestinations = (doc: typeof parsed.catalog.doc): DestinationRegistry => {
    const registry = createDestinationRegistry(doc.destinations, {
      env,
      readFile: (p) => readFileSync(p, 'utf8'),
      fetch: globalThis.fetch,
      timeoutMs: settings.notifyTimeoutMs,
      pagerDutyEventsUrl: settings.pagerDutyEventsUrl,
      now,
      onSecretError: (message) => { logger.error({ error: message }, 'cannot read a destination secret; that destination is skipped') }
    })
    initDestinationLabels(metrics, registry.labels())
    for (const d of registry.labels()) {
      if (registry.get(d.destination)?.configured !== true) logger.warn({ destination: d.destination }, 'destination secret not set; its notifications are recorded as skipped')
    }
    return registry
  }
  let destinations = bindDestinations(parsed.catalog.doc)
  // Per-destination rate limits from the catalog; the limiter re-reads this on every call, so
  // a reload that changes one takes effect at once.
  const rateLimitsByDestination: Record<string, RateLimit> = {}
  const applyRateLimits = (doc: typeof parsed.catalog.doc): void => {
    for (const key of Object.keys(rateLimitsByDestination)) Reflect.deleteProperty(rateLimitsByDestination, key)
    for (const [name, d] of Object.entries(doc.destinations)) if (d.rateLimit !== undefined) rateLimitsByDestination[name] = d.rateLimit
  }
  applyRateLimits(parsed.catalog.doc)
  const catalog = createCatalogHolder(settings.catalogPath, parsed.catalog, catalogText, {
    metrics, logger, now, parse, onChange: (c) => {
      destinations = bindDestinations(c.doc)
      applyRateLimits(c.doc)
    }
  })
  // Registered before anything slow: SIGHUP's default action would end the process.
  process.on('SIGHUP', () => { void catalog.reload() })

  // The store is opened before the dispatcher it wakes once new deliveries are claimable.
  let wakeDispatcher = (): void => {}
  const store = createSqliteStore({ dataDir: settings.dataDir, idempotencyWindowMs: settings.idempotencyWindowSeconds * 1000, synchronous: settings.outboxSynchronous }, {
    now: () => Date.now(),
    onCheckpointError: (message) => { logger.warn({ err: message }, 'background WAL checkpoint failed; SQLite checkpoints on commit instead') },
    onSuperseded: (deliveries) => { countSkipped(metrics, deliveries, 'superseded') },
    onClaimable: () => { wakeDispatcher() }
  })
  const dispatcher = createDispatcher({ maxAgeMs: settings.maxDeliveryAgeSeconds * 1000, rateLimits: { byDestination: rateLimitsByDestination } }, {
    store,
    send: async (delivery) => {
      const d = destinations.get(delivery.destination)
      if (d === undefined) return { ok: false, retryable: false, reason: 'not_configured', error: `destination ${delivery.destination} is not in the catalog` }
      const group = materialise(delivery.body, delivery.receivedAt, catalog.current())
      if (group === undefined) return { ok: false, retryable: false, reason: 'client_error', error: `delivery ${delivery.id} does not hold a queued webhook (written by an older build?); nothing to render` }
      return await d.send(group)
    },
    now: () => Date.now(),
    metrics,
    logger
  })
  wakeDispatcher = () => { dispatcher.notify() }
  const intake = createIntake({ store, metrics, isConfigured: (name) => destinations.get(name)?.configured === true })

  if (settings.webhookBearerToken === undefined && settings.webhookBasicAuth === undefined) {
    logger.warn('no WEBHOOK_BEARER_TOKEN or WEBHOOK_BASIC_AUTH_* set: /webhook accepts unauthenticated requests')
  }
  if (settings.adminToken === undefined) {
    logger.warn('no ADMIN_BEARER_TOKEN set: /api/v1/deliveries, replay and /-/reload are open to anyone who reaches the port')
  }
  let closing = false
  const app = await buildApp({
    auth: { ...(settings.webhookBearerToken !== undefined ? { bearerToken: settings.webhookBearerToken } : {}), ...(settings.webhookBasicAuth !== undefined ? { basic: settings.webhookBasicAuth } : {}) },
    ...(settings.adminToken !== undefined ? { adminToken: settings.adminToken } : {}),
    bodyLimit: settings.webhookBodyLimitBytes,
    runbooksDir: settings.runbooksDir,
    catalog,
    metrics,
    intake,
    store,
    now,
    logger,
    notReady: () => closing ? 'shutting down' : null,
    onDeliveryRetry: () => { dispatcher.notify() }
  })

  await dispatcher.start()
  catalog.watch()
  await app.listen({ port: settings.port, host: settings.host })
  logger.info({ catalog: settings.catalogPath, entries: parsed.catalog.entries.length, dataDir: settings.dataDir }, 'alert-enricher serving')

  const shutdown = async (signal: string): Promise<void> => {
    if (closing) return
    closing = true
    logger.info({ signal }, 'shutting down: finishing in-flight sends, leaving the rest pending')
    catalog.close()
    await app.close()
    await dispatcher.stop({ timeoutMs: 10_000 })
    await store.close()
    logger.flush()
    process.exit(0)
  }
  process.on('SIGTERM', () => { void shutdown('SIGTERM') })
  process.on('SIGINT', () => { void shutdown('SIGINT') })
}
