import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { parseCatalog } from '../../src/config/catalog.js'
import { createCatalogHolder, type CatalogHolder } from '../../src/config/catalog-holder.js'
import { createMetrics, type Metrics } from '../../src/metrics.js'
import { createIntake } from '../../src/outbox/intake.js'
import { createSqliteStore, type SqliteStoreDeps } from '../../src/store/sqlite/store.js'
import type { Store } from '../../src/store/types.js'
import type { WebhookAuthConfig } from '../../src/routes/auth.js'
import type { PagerDutyWebhookConfig } from '../../src/routes/pagerduty-webhook.js'
import type { ApplyAcknowledgement } from '../../src/incidents/types.js'

export const REPO = resolve(import.meta.dirname, '../..')
// Byte-for-byte copies of ../shared/fixtures/alertmanager, so a clone tests on its own.
export const FIXTURES = join(REPO, 'test/fixtures/alertmanager')
export const BUNDLED_CATALOG = join(REPO, 'rules/catalog.yaml')

export function fixture (name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as Record<string, unknown>
}

export interface TestApp {
  app: FastifyInstance
  store: Store
  metrics: Metrics
  catalog: CatalogHolder
  dataDir: string
  close: () => Promise<void>
}

const silentLogger = { info () {}, warn () {}, error () {} }

/** A full app on a real SQLite store in a temp dir; destinations configured per `configured`. */
export async function buildTestApp (opts: {
  catalogPath?: string
  auth?: WebhookAuthConfig
  adminToken?: string
  bodyLimit?: number
  now?: () => Date
  configured?: (destination: string) => boolean
  /** Wraps the real store, e.g. to simulate a storage failure. */
  wrapStore?: (store: Store) => Store
  idempotencyWindowMs?: number
  storeDeps?: Partial<SqliteStoreDeps>
  wakeDispatcher?: () => void
  logger?: FastifyBaseLogger
  pagerDuty?: PagerDutyWebhookConfig
  slackSigningSecret?: string
  acknowledge?: ApplyAcknowledgement
} = {}): Promise<TestApp> {
  const catalogPath = opts.catalogPath ?? BUNDLED_CATALOG
  const text = readFileSync(catalogPath, 'utf8')
  const parsed = parseCatalog(text, catalogPath)
  if (!parsed.ok) throw new Error(`test catalog invalid: ${JSON.stringify(parsed.problems)}`)
  const metrics = createMetrics({ defaultMetrics: false })
  const now = opts.now ?? (() => new Date())
  const catalog = createCatalogHolder(catalogPath, parsed.catalog, text, { metrics, logger: silentLogger, now })
  const dataDir = mkdtempSync(join(tmpdir(), 'ae-test-'))
  const real = createSqliteStore({ dataDir, idempotencyWindowMs: opts.idempotencyWindowMs ?? 600_000 }, {
    now: () => now().getTime(),
    onFailure: ({ operation }) => { metrics.storeErrors.inc({ operation }) },
    ...opts.storeDeps
  })
  const store = opts.wrapStore?.(real) ?? real
  const isConfigured = opts.configured ?? (() => true)
  const intake = createIntake({ store, metrics, runtime: () => ({ catalog: catalog.current(), isConfigured }), wakeDispatcher: opts.wakeDispatcher ?? (() => {}) })
  const app = await buildApp({
    auth: opts.auth ?? {},
    ...(opts.adminToken !== undefined ? { adminToken: opts.adminToken } : {}),
    bodyLimit: opts.bodyLimit ?? 4 * 1024 * 1024,
    runbooksDir: join(REPO, 'runbooks'),
    catalog,
    metrics,
    intake,
    store,
    now,
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    ...(opts.pagerDuty !== undefined ? { pagerDuty: opts.pagerDuty } : {}),
    ...(opts.slackSigningSecret !== undefined ? { slackSigningSecret: opts.slackSigningSecret } : {}),
    ...(opts.acknowledge !== undefined ? { acknowledge: opts.acknowledge } : {})
  })
  return {
    app, store, metrics, catalog, dataDir,
    close: async () => {
      await app.close()
      await store.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
