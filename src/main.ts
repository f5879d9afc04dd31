import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import pino, { type Logger } from 'pino'
import { buildApp, LOG_REDACT_PATHS } from './app.js'
import { catalogReadProblem, parseCatalog, withOverrides, type Catalog, type CatalogResult } from './config/catalog.js'
import { createCatalogHolder } from './config/catalog-holder.js'
import { formatProblem } from './config/problems.js'
import { loadSettings, type Env, type Settings } from './config/settings.js'
import { createMetrics, initDestinationLabels, type Metrics } from './metrics.js'
import { createDestinationRegistry, type DestinationRegistry } from './notify/destinations.js'
import { createDispatcher } from './outbox/dispatcher.js'
import { createIntake } from './outbox/intake.js'
import { createDeliverySender } from './outbox/send.js'
import { createIncidentMessages } from './notify/slack/incident-message.js'
import { createRateLimiter, DEFAULT_RATE_LIMITS, type LimitFor } from './outbox/rate-limit.js'
import { describeUrl } from './store/postgres/connection.js'
import { openPostgresStore, type PostgresStore } from './store/postgres/store.js'
import { startWithRetry } from './store/postgres/start-with-retry.js'
import { createSqliteStore } from './store/sqlite/store.js'
import type { Store, StoreFailure } from './store/types.js'

// The composition root: settings → catalog → store → dispatcher → HTTP, and the process
// lifecycle. Start-up order: the store (which locks the data directory), then the listener,
// and only then the dispatcher and the catalog watch, so a start that fails sends nothing. On
// PostgreSQL the listener comes first and the dispatcher waits for the database.
// SIGTERM drains in-flight sends; SIGHUP reloads the catalog.

// What a catalog reload swaps, as one object: a reader takes it once and sees one catalog
// with the destinations bound from it, never a mix.
interface Runtime { catalog: Catalog, destinations: DestinationRegistry }

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
  const bind = (catalog: Catalog): Runtime => ({ catalog, destinations: bindDestinations(catalog, settings, env, metrics, logger, now) })
  let runtime = bind(parsed.catalog)
  const catalog = createCatalogHolder(settings.catalogPath, parsed.catalog, catalogText, {
    metrics, logger, now, parse, onChange: (next) => { runtime = bind(next) }
  })
  // Registered before anything slow: SIGHUP's default action would end the process.
  process.on('SIGHUP', () => { void catalog.reload() })

  // A bot-token Slack destination with its token: acknowledgements and escalations edit its
  // incident message and reply in the message's thread.
  const isSlackApp = (name: string): boolean => runtime.destinations.get(name)?.slackBot !== undefined
  const limitFor: LimitFor = (destination, type) => runtime.catalog.doc.destinations[destination]?.rateLimit ?? DEFAULT_RATE_LIMITS[type]
  const onFailure = ({ operation, error }: StoreFailure): void => {
    metrics.storeErrors.inc({ operation })
    logger.error({ operation, err: error.message }, 'store operation failed')
  }
  // DATABASE_URL: PostgreSQL, shared by every replica; otherwise SQLite, owned by this process.
  // Not connected yet: start() is retried below, once the HTTP probes answer.
  const shared: PostgresStore | null = settings.databaseUrl === undefined
    ? null
    : openPostgresStore({ url: settings.databaseUrl, idempotencyWindowMs: settings.idempotencyWindowSeconds * 1000 }, {
      now: () => Date.now(),
      onFailure,
      limitFor,
      onListenerState: (state, detail) => {
        if (state === 'lost') logger.error({ err: detail }, 'database LISTEN connection lost; reconnecting')
        else logger.info('database LISTEN connection restored')
      }
    })
  const store: Store = shared ?? createSqliteStore({
    dataDir: settings.dataDir,
    idempotencyWindowMs: settings.idempotencyWindowSeconds * 1000,
    synchronous: settings.outboxSynchronous
  }, { now: () => Date.now(), onFailure })
  // On PostgreSQL the limits hold deployment-wide in the database (the engine's token buckets);
  // this process's limiter then only holds a destination that answered 429 + Retry-After.
  const limiter = createRateLimiter(shared === null ? limitFor : () => null)
  const dispatcher = createDispatcher({
    maxAgeMs: settings.maxDeliveryAgeSeconds * 1000,
    // Longer than a send can take (its timeout), with room for a slow mark; on PostgreSQL it
    // is also how long a killed replica's claims wait before another replica takes them.
    leaseMs: 2 * settings.notifyTimeoutMs + 10_000,
    // A shared database: another replica's claims may be sends in flight; leases return them.
    releaseClaimsAtStart: shared === null
  }, {
    store,
    limiter,
    send: createDeliverySender({
      store,
      runtime: () => runtime,
      now,
      incidentMessages: createIncidentMessages({
        store,
        now: () => Date.now(),
        debounceMs: settings.slackUpdateDebounceMs,
        onSaveError: (_err, where) => { logger.error(where, 'Slack message posted but its ts could not be stored; the next change posts a new message') }
      })
    }),
    now: () => Date.now(),
    metrics,
    logger,
    isConfigured: (name) => runtime.destinations.get(name)?.configured === true,
    isSlackApp
  })
  // Work committed through any replica wakes this one; this replica's own enqueues claim
  // their pages in their transaction when it has a free slot.
  shared?.onWork(dispatcher.wake)
  shared?.lendSlotsFrom(dispatcher.lendSlots)
  const intake = createIntake({
    store,
    metrics,
    runtime: () => ({ catalog: runtime.catalog, isConfigured: (name) => runtime.destinations.get(name)?.configured === true }),
    wakeDispatcher: dispatcher.wake
  })

  if (settings.webhookBearerToken === undefined && settings.webhookBasicAuth === undefined) {
    logger.warn('no WEBHOOK_BEARER_TOKEN or WEBHOOK_BASIC_AUTH_* set: /webhook accepts unauthenticated requests')
  }
  if (settings.adminToken === undefined) {
    logger.warn('no ADMIN_BEARER_TOKEN set: /api/v1/deliveries, replay and /-/reload are open to anyone who reaches the port')
  }
  const botDestinations = parsedBotIds(parsed.catalog)
  if (botDestinations.length > 0 && settings.slackSigningSecret === undefined) {
    logger.warn({ destinations: botDestinations }, 'no SLACK_SIGNING_SECRET set: Slack button clicks (POST /integrations/slack/interactions) are refused with 404')
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
    ...(settings.pagerDutyWebhookSecrets !== undefined ? { pagerDuty: { secrets: settings.pagerDutyWebhookSecrets } } : {}),
    ...(settings.slackSigningSecret !== undefined ? { slackSigningSecret: settings.slackSigningSecret } : {}),
    notReady: () => closing ? 'shutting down' : null,
    wakeDispatcher: dispatcher.wake,
    isConfigured: (name) => runtime.destinations.get(name)?.configured === true,
    isSlackApp
  })

  let address: string
  try {
    address = await app.listen({ port: settings.port, host: settings.host })
  } catch (err) {
    await store.close()
    const code = (err as NodeJS.ErrnoException).code
    throw new Error(`cannot listen on ${settings.host}:${settings.port}: ${code === 'EADDRINUSE' ? 'address already in use' : (err as Error).message}`)
  }
  if (shared === null) await dispatcher.start()
  catalog.watch()
  const storeInfo = settings.databaseUrl === undefined ? { dataDir: settings.dataDir } : { database: describeUrl(settings.databaseUrl) }
  logger.info({ address, catalog: settings.catalogPath, entries: parsed.catalog.entries.length, ...storeInfo }, 'alert-enricher serving')

  const shutdown = async (signal: string, exitCode = 0): Promise<void> => {
    if (closing) return
    closing = true
    logger.info({ signal }, 'shutting down: finishing in-flight sends, leaving the rest pending')
    catalog.close()
    // Sends drain first, while /-/ready answers 503 "shutting down" (Kubernetes stops routing
    // here) and webhooks that still arrive are committed as pending for the next start.
    await dispatcher.stop({ timeoutMs: 10_000 })
    await app.close()
    await store.close()
    logger.flush()
    process.exit(exitCode)
  }
  process.on('SIGTERM', () => { void shutdown('SIGTERM') })
  process.on('SIGINT', () => { void shutdown('SIGINT') })

  // PostgreSQL: while the database cannot be reached, /-/ready and /webhook answer 503 naming
  // it and /-/healthy stays 200 (an outage is no reason to restart); once it answers, the
  // dispatcher starts and readiness turns 200 by itself.
  if (shared !== null) {
    startWithRetry(shared.start, {
      stopped: () => closing,
      onFailure: (error, attempt, retryInMs) => {
        metrics.storeErrors.inc({ operation: 'connect' })
        logger.error({ err: error.message, attempt, retryInMs }, 'cannot start on the database; retrying')
      }
    }).then(async (started) => {
      if (!started || closing) return
      await dispatcher.start()
      logger.info(storeInfo, 'database connected; dispatching')
    }).catch((err: unknown) => {
      // A schema newer than this build (not transient): refusing to run.
      const message = err instanceof Error ? err.message : String(err)
      logger.fatal({ err: message }, 'cannot start on the database')
      console.error(message)
      void shutdown('database schema', 1)
    })
  }
}

// The catalog's destinations bound to their secrets (start and every reload, which is also
// how a rotated secret file is picked up).
function bindDestinations (catalog: Catalog, settings: Settings, env: Env, metrics: Metrics, logger: Logger, now: () => Date): DestinationRegistry {
  const registry = createDestinationRegistry(catalog.doc.destinations, {
    env,
    readFile: (p) => readFileSync(p, 'utf8'),
    fetch: globalThis.fetch,
    timeoutMs: settings.notifyTimeoutMs,
    pagerDutyEventsUrl: settings.pagerDutyEventsUrl,
    slackApiUrl: settings.slackApiUrl,
    now,
    onSecretError: (message) => { logger.error({ error: message }, 'cannot read a destination secret; that destination is skipped') }
  })
  initDestinationLabels(metrics, registry.labels())
  for (const d of registry.labels()) {
    if (registry.get(d.destination)?.configured !== true) logger.warn({ destination: d.destination }, 'destination secret not set; its notifications are recorded as skipped')
  }
  return registry
}

function parsedBotIds (catalog: Catalog): string[] {
  return Object.entries(catalog.doc.destinations).filter(([, d]) => 'botToken' in d).map(([id]) => id)
}
