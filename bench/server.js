// A server for the webhook benchmark, run as a child process so the load generator does not
// share its event loop. Modes: `baseline` (bare Fastify: parse + schema-validate the same
// bodies), `service` (the real app: auth off, classify, route, durable outbox commit) and
// `no-outbox` (the real app with an intake that stores nothing); `service-memory` is `service`
// on an in-memory SQLite database (the same statements, no file, no WAL, no sync);
// `service-postgres` is `service` on PostgreSQL (DATABASE_URL from the environment).
import Fastify from 'fastify'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { performance } from 'node:perf_hooks'
import { join } from 'node:path'
import { buildApp } from '../dist/app.js'
import { WebhookPayload } from '../dist/alertmanager/webhook.js'
import { parseCatalog } from '../dist/config/catalog.js'
import { createCatalogHolder } from '../dist/config/catalog-holder.js'
import { createMetrics } from '../dist/metrics.js'
import { createIntake } from '../dist/outbox/intake.js'
import { classifyWebhook } from '../dist/outbox/queued-webhook.js'
import { createSqliteStore } from '../dist/store/sqlite/store.js'
import { createPostgresStore } from '../dist/store/postgres/store.js'

const mode = process.argv[2]
const silent = { info () {}, warn () {}, error () {} }
let app
let cleanup = async () => {}

if (mode === 'baseline') {
  app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 })
  app.post('/webhook', { schema: { body: WebhookPayload } }, async () => ({ status: 'accepted' }))
} else if (['service', 'service-memory', 'no-outbox', 'service-postgres'].includes(mode)) {
  const path = 'rules/catalog.yaml'
  const text = readFileSync(path, 'utf8')
  const parsed = parseCatalog(text, path)
  if (!parsed.ok) throw new Error('bundled catalog invalid')
  const metrics = createMetrics()
  const catalog = createCatalogHolder(path, parsed.catalog, text, { metrics, logger: silent, now: () => new Date() })
  const dataDir = mkdtempSync(join(tmpdir(), 'ae-bench-'))
  // OUTBOX_SYNCHRONOUS=NORMAL measures the same path without the per-commit fsync.
  const store = mode === 'service-postgres'
    ? await createPostgresStore({ url: process.env.DATABASE_URL, idempotencyWindowMs: 600_000 }, { now: () => Date.now() })
    : createSqliteStore({ dataDir: mode === 'service-memory' ? ':memory:' : dataDir, idempotencyWindowMs: 600_000, ...(process.env.OUTBOX_SYNCHRONOUS === 'NORMAL' ? { synchronous: 'NORMAL' } : {}) }, { now: () => Date.now() })
  // no-outbox: the same app, but intake answers at once without storing anything — how close
  // a store that cost nothing would get (a diagnostic, not a mode the service has).
  const intake = mode === 'no-outbox'
    ? async (payload) => ({ ...classifyWebhook(payload, catalog.current()), enqueued: 1, duplicates: 0, skipped: 0 })
    : createIntake({ store, metrics, runtime: () => ({ catalog: catalog.current(), isConfigured: () => true }), wakeDispatcher: () => {} })
  app = await buildApp({ auth: {}, bodyLimit: 4 * 1024 * 1024, runbooksDir: 'runbooks', catalog, metrics, intake, store })
  cleanup = async () => { await store.close(); rmSync(dataDir, { recursive: true, force: true }) }
} else {
  throw new Error(`usage: server.js baseline|service|service-memory|no-outbox|service-postgres (got ${mode})`)
}

await app.listen({ port: 0, host: '127.0.0.1' })
process.send?.({ port: app.server.address().port })
process.on('message', async (msg) => {
  if (msg === 'rss') process.send?.({ rss: process.memoryUsage().rss })
  // CPU time this process has used, all threads (event loop, libuv pool), and the time its
  // event loop was busy, both in µs since it started.
  if (msg === 'cpu') {
    const { user, system } = process.cpuUsage()
    process.send?.({ cpuMicros: user + system, loopBusyMicros: performance.eventLoopUtilization().active * 1000 })
  }
  if (msg === 'stop') {
    await app.close()
    await cleanup()
    process.exit(0)
  }
})
