// One replica for the drain benchmark: the PostgreSQL store and the real dispatcher, sending
// to an in-process sender that enriches and renders each delivery as the service does. Starts
// on 'go', stops on 'stop'.
import { readFileSync } from 'node:fs'
import { setImmediate } from 'node:timers'
import { fileURLToPath } from 'node:url'
import { parseCatalog } from '../dist/config/catalog.js'
import { createMetrics } from '../dist/metrics.js'
import { renderBody } from '../dist/notify/plan.js'
import { createDispatcher } from '../dist/outbox/dispatcher.js'
import { enrichQueuedWebhook } from '../dist/outbox/queued-webhook.js'
import { createRateLimiter } from '../dist/outbox/rate-limit.js'
import { createPostgresStore } from '../dist/store/postgres/store.js'

const silent = { debug () {}, info () {}, warn () {}, error () {} }
const catalogPath = fileURLToPath(new URL('../rules/catalog.yaml', import.meta.url))
const parsed = parseCatalog(readFileSync(catalogPath, 'utf8'), catalogPath)
if (!parsed.ok) throw new Error('bundled catalog invalid')

const store = await createPostgresStore({ url: process.env.DATABASE_URL, idempotencyWindowMs: 600_000 }, { now: Date.now, limitFor: () => null })
const dispatcher = createDispatcher({ releaseClaimsAtStart: false }, {
  store,
  limiter: createRateLimiter(() => null),
  metrics: createMetrics({ defaultMetrics: false }),
  logger: silent,
  now: Date.now,
  send: async (d) => {
    const group = enrichQueuedWebhook(d.body, d.receivedAt, parsed.catalog)
    renderBody(group, 'pagerduty-platform', { type: 'pagerduty', routingKey: { env: 'X' } }, { now: new Date() })
    await new Promise((resolve) => setImmediate(resolve))
    return { ok: true, status: 202 }
  }
})
store.onWork(dispatcher.wake)
process.send?.('ready')
process.on('message', async (m) => {
  if (m === 'go') await dispatcher.start()
  if (m === 'stop') {
    await dispatcher.stop({ timeoutMs: 5_000 })
    await store.close()
    process.exit(0)
  }
})
