// Outbox + dispatcher figures, against in-process senders so the numbers are the
// outbox's own: SQLite in a temp DATA_DIR, synchronous=FULL, group commit, real timers.
//   drain      deliveries/s to a sender that never limits, each enriched and rendered from its
//              queued webhook first as the service does (goal ≥ 2,000/s)
//   p0-latency p99 time for a new P0 page to be sent with 5,000 P3s queued behind
//              PagerDuty's rate limit (goal < 1 s over 100 pages)
//   rss        peak RSS of a fresh process holding 100,000 pending deliveries (goal ≤ 200 MB)
// Each row's baseline is measured in the same run (sends from memory, a P0 with no queue, an
// empty outbox); the goal verdict is printed beside it.
// Run alone: `npm run build && node bench/outbox-bench.js`.
import { fork } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { setImmediate } from 'node:timers'
import { readFileSync } from 'node:fs'
import { parseCatalog } from '../dist/config/catalog.js'
import { createMetrics } from '../dist/metrics.js'
import { renderBody } from '../dist/notify/plan.js'
import { enrichQueuedWebhook, queuedWebhookJson } from '../dist/outbox/queued-webhook.js'
import { createDispatcher } from '../dist/outbox/dispatcher.js'
import { createRateLimiter, DEFAULT_RATE_LIMITS } from '../dist/outbox/rate-limit.js'
import { createSqliteStore } from '../dist/store/sqlite/store.js'

const silent = { debug () {}, info () {}, warn () {}, error () {} }
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// What /webhook queues: a captured 1-alert Alertmanager webhook as received, routed whole.
const catalogPath = fileURLToPath(new URL('../rules/catalog.yaml', import.meta.url))
const parsedCatalog = parseCatalog(readFileSync(catalogPath, 'utf8'), catalogPath)
if (!parsedCatalog.ok) throw new Error('bundled catalog invalid')
const catalog = parsedCatalog.catalog
const fixture = JSON.parse(readFileSync(new URL('../test/fixtures/alertmanager/firing-single-warning.json', import.meta.url), 'utf8'))

function item (n, over = {}) {
  const payload = { ...fixture, groupKey: `{}:{alertname="bench", n="${n}"}` }
  return { destination: 'pagerduty', type: 'pagerduty', priority: 'P3', status: 'firing', idempotencyKey: `bench-${n}`, groupKey: payload.groupKey, body: queuedWebhookJson(null, JSON.stringify(payload)), ...over }
}

// The service's limits: the catalog's defaults; `fast` never limits.
const limiter = () => createRateLimiter((destination, type) => destination === 'fast' ? null : DEFAULT_RATE_LIMITS[type])

// One webhook's worth: the items of one group in one enqueue.
function enqueue (store, items) {
  return store.enqueue({ groupKey: items[0].groupKey, receivedAt: Date.now(), resolved: false, plan: () => items })
}

// What the service does before the HTTP post: enrich the queued webhook, render the event.
function renderQueued (d) {
  const group = enrichQueuedWebhook(d.body, d.receivedAt, catalog)
  if (group === undefined) throw new Error(`delivery ${d.id} holds no queued webhook`)
  return renderBody(group, 'pagerduty-platform', { type: 'pagerduty', routingKey: { env: 'X' } }, { now: new Date() })
}

async function withStore (fn) {
  const dir = mkdtempSync(join(tmpdir(), 'ae-outbox-bench-'))
  const store = createSqliteStore({ dataDir: dir, idempotencyWindowMs: 600_000 }, { now: Date.now })
  try {
    return await fn(store)
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

// Enqueue like webhooks do: one group per webhook, many concurrent webhooks (group commit).
async function fill (store, count, make) {
  const calls = []
  for (let i = 0; i < count; i++) {
    calls.push(enqueue(store, [make(i)]))
    if (calls.length >= 500) await Promise.all(calls.splice(0))
  }
  await Promise.all(calls)
}

export async function benchDrain ({ count = 20_000 } = {}) {
  return await withStore(async (store) => {
    await fill(store, count, (n) => item(n, { destination: 'fast' }))
    let sent = 0
    let resolveDone
    const done = new Promise((resolve) => { resolveDone = resolve })
    const dispatcher = createDispatcher({}, {
      store,
      limiter: limiter(),
      metrics: createMetrics({ defaultMetrics: false }),
      logger: silent,
      now: Date.now,
      send: async (d) => {
        renderQueued(d)
        await new Promise((resolve) => setImmediate(resolve))
        if (++sent === count) resolveDone()
        return { ok: true, status: 202 }
      }
    })
    const started = performance.now()
    await dispatcher.start()
    await done
    await dispatcher.stop({ timeoutMs: 5_000 })
    const seconds = (performance.now() - started) / 1000
    return count / seconds
  })
}

export async function benchP0Latency ({ noise = 5_000, pages = 100 } = {}) {
  return await withStore(async (store) => {
    await fill(store, noise, (n) => item(n))
    const waiting = new Map()
    const dispatcher = createDispatcher({}, {
      store,
      limiter: limiter(),
      metrics: createMetrics({ defaultMetrics: false }),
      logger: silent,
      now: Date.now,
      send: async (d) => {
        waiting.get(d.idempotencyKey)?.()
        return { ok: true, status: 202 }
      }
    })
    await dispatcher.start()
    await sleep(1_000) // the burst is spent: the P3s now sit behind an empty bucket
    const latencies = []
    for (let i = 0; i < pages; i++) {
      const key = `page-${i}`
      const sent = new Promise((resolve) => waiting.set(key, resolve))
      const t0 = performance.now()
      await enqueue(store, [item(noise + i, { priority: 'P0', idempotencyKey: key })])
      dispatcher.wake() // as the intake does once the enqueue committed
      await sent
      latencies.push(performance.now() - t0)
      await sleep(Math.random() * 100)
    }
    await dispatcher.stop({ timeoutMs: 5_000 })
    latencies.sort((a, b) => a - b)
    const left = (await store.stats(Date.now())).pending.P3
    return { p99: latencies[Math.ceil(0.99 * latencies.length) - 1], p50: latencies[Math.floor(latencies.length / 2)], p3Left: left }
  })
}

// Child process: 100,000 pending deliveries, a dispatcher running against a held destination,
// gauges and admin listing exercised; reports peak RSS.
async function rssChild (count) {
  return await withStore(async (store) => {
    const t0 = performance.now()
    await fill(store, count, (n) => item(n))
    const enqueueSeconds = (performance.now() - t0) / 1000
    const dispatcher = createDispatcher({ housekeepingIntervalMs: 500 }, {
      store,
      limiter: limiter(),
      metrics: createMetrics(),
      logger: silent,
      now: Date.now,
      send: async () => ({ ok: false, retryable: true, reason: 'server_error', status: 503, error: 'HTTP 503' })
    })
    await dispatcher.start()
    for (let i = 0; i < 10; i++) {
      await store.list({ state: 'pending', limit: 1000 })
      await dispatcher.refreshGauges()
      await sleep(200)
    }
    await dispatcher.stop({ timeoutMs: 5_000 })
    const pending = (await store.stats(Date.now())).pending
    return { maxRssMb: process.resourceUsage().maxRSS / 1024, enqueuePerSecond: count / enqueueSeconds, pending: pending.P3 }
  })
}

export async function benchPeakRss ({ count = 100_000 } = {}) {
  const child = fork(fileURLToPath(import.meta.url), ['rss-child', String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => { if (code !== 0) reject(new Error(`rss child exited ${code}`)) })
  })
}

// The same sends straight from memory with the dispatcher's concurrency: what the outbox costs.
async function drainFromMemory ({ count = 20_000, concurrency = 16 } = {}) {
  let next = 0
  const queued = item(0)
  const delivery = { id: 1, body: JSON.parse(queued.body), receivedAt: Date.now() }
  const started = performance.now()
  const worker = async () => {
    while (next < count) {
      next++
      renderQueued(delivery)
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return count / ((performance.now() - started) / 1000)
}

export async function benchOutbox () {
  const drain = await benchDrain()
  const memory = await drainFromMemory()
  const quiet = await benchP0Latency({ noise: 0, pages: 100 })
  const p0 = await benchP0Latency()
  const empty = await benchPeakRss({ count: 0 })
  const rss = await benchPeakRss()
  return [
    { name: 'outbox drain to a never-limiting sender vs the same sends from memory', value: drain, unit: 'deliveries/s', baseline: memory, ratio: drain / memory, goal: `≥ 2,000/s: ${drain >= 2_000 ? 'met' : 'MISSED'}` },
    { name: `P0 page p99 with 5,000 P3s queued behind PagerDuty's limit vs an empty queue (p50 ${Math.round(p0.p50)} ms)`, value: p0.p99, unit: 'ms', baseline: quiet.p99, ratio: quiet.p99 / p0.p99, goal: `< 1,000 ms: ${p0.p99 < 1_000 ? 'met' : 'MISSED'}` },
    { name: `peak RSS with 100,000 pending vs an empty outbox (enqueued at ${Math.round(rss.enqueuePerSecond)}/s)`, value: rss.maxRssMb, unit: 'MB', baseline: empty.maxRssMb, ratio: empty.maxRssMb / rss.maxRssMb, goal: `≤ 200 MB: ${rss.maxRssMb <= 200 ? 'met' : 'MISSED'}` }
  ]
}

if (process.argv[2] === 'rss-child') {
  const result = await rssChild(Number(process.argv[3]))
  process.send(result, () => process.disconnect())
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of await benchOutbox()) console.log(`${r.name}: ${r.value.toFixed(1)} ${r.unit} vs ${r.baseline.toFixed(1)} → ${r.ratio.toFixed(2)}× (goal ${r.goal})`)
}
