// Escalation timers with 10,000 open incidents, against an in-process sender so the numbers
// are the store's and the dispatcher's own: SQLite in a temp DATA_DIR, synchronous=FULL, real
// timers, the dispatcher's default 1 s poll.
//   lateness  p99 of (escalation sent − its deadline) for the escalations falling due in a
//             window, deadlines spread over an hour (goal ≤ 1 s); baseline: ordinary
//             deliveries enqueued during the same window, enqueue → sent
//   idle cpu  CPU time of an idle dispatcher process holding 10,000 open incidents (none due)
//             vs the same process with none (goal ≤ 1.2×: no scanning loop)
// Run alone: `npm run build && node bench/escalation-bench.js`.
import { fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMetrics } from '../dist/metrics.js'
import { createDispatcher } from '../dist/outbox/dispatcher.js'
import { queuedWebhookJson } from '../dist/outbox/queued-webhook.js'
import { createRateLimiter } from '../dist/outbox/rate-limit.js'
import { createSqliteStore } from '../dist/store/sqlite/store.js'

const silent = { debug () {}, info () {}, warn () {}, error () {} }
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const INCIDENTS = 10_000
const HOUR = 3_600_000
const fixture = readFileSync(new URL('../test/fixtures/alertmanager/firing-two-critical.json', import.meta.url), 'utf8')
const WEBHOOK = queuedWebhookJson(null, fixture)

function open (n, respondBy) {
  return {
    kind: 'open', dedupKey: `dk-${n}`, title: 'HighErrorRate', priority: 'P0', respondBy: respondBy(n), alertname: 'HighErrorRate', team: 'platform',
    escalation: { escalateTo: [{ destination: 'fast', type: 'pagerduty' }], repeatEveryMs: null }, webhook: WEBHOOK
  }
}

// Opens `count` incidents like first firing webhooks do, many at once (group commit).
async function fill (store, count, respondBy) {
  const calls = []
  for (let n = 0; n < count; n++) {
    calls.push(store.enqueue({ groupKey: `g-${n}`, receivedAt: Date.now(), resolved: false, plan: () => [], incident: { receiver: 'bench', decide: () => open(n, respondBy) } }))
    if (calls.length >= 500) await Promise.all(calls.splice(0))
  }
  await Promise.all(calls)
}

async function withDispatcher (send, fn) {
  const dir = mkdtempSync(join(tmpdir(), 'ae-escalation-bench-'))
  const store = createSqliteStore({ dataDir: dir, idempotencyWindowMs: 600_000 }, { now: Date.now })
  const dispatcher = createDispatcher({}, { store, limiter: createRateLimiter(() => null), send, now: Date.now, metrics: createMetrics({ defaultMetrics: false }), logger: silent })
  try {
    return await fn(store, dispatcher)
  } finally {
    await dispatcher.stop({ timeoutMs: 1000 })
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const p = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
}

export async function benchLateness ({ windowSeconds = Number(process.env.BENCH_ESCALATION_SECONDS ?? 60) } = {}) {
  const late = []
  const ordinary = []
  const enqueuedAt = new Map()
  const send = async (d) => {
    const now = Date.now()
    if (d.body.escalation !== undefined) late.push(now - d.body.escalation.respondBy)
    else ordinary.push(now - (enqueuedAt.get(d.idempotencyKey) ?? now))
    return { ok: true, status: 202 }
  }
  return await withDispatcher(send, async (store, dispatcher) => {
    const start = Date.now() + 5_000
    // Deadlines spread evenly over the hour from `start`.
    await fill(store, INCIDENTS, (n) => start + Math.floor(n * HOUR / INCIDENTS))
    await dispatcher.start()
    const end = Date.now() + windowSeconds * 1000
    for (let i = 0; Date.now() < end; i++) {
      const key = `ordinary-${i}`
      enqueuedAt.set(key, Date.now())
      await store.enqueue({ groupKey: `o-${i}`, receivedAt: Date.now(), resolved: false, plan: () => [{ destination: 'fast', type: 'pagerduty', priority: 'P0', status: 'firing', idempotencyKey: key, body: '{}' }], onCommitted: dispatcher.wake })
      await sleep(HOUR / INCIDENTS)
    }
    await sleep(1_500)
    return { p99: p(late, 0.99), p50: p(late, 0.5), fired: late.length, baselineP99: p(ordinary, 0.99) }
  })
}

// In a fresh process: CPU time while idle (dispatcher polling, housekeeping refreshing gauges).
async function idleChild (incidents, seconds) {
  return await withDispatcher(async () => ({ ok: true, status: 202 }), async (store, dispatcher) => {
    const start = Date.now() + 10 * 60_000
    await fill(store, incidents, (n) => start + Math.floor(n * HOUR / Math.max(1, incidents)))
    await dispatcher.start()
    // The fill's garbage is collected before the window, so the window sees the steady state.
    globalThis.gc?.()
    await sleep(5_000)
    globalThis.gc?.()
    const before = process.cpuUsage()
    await sleep(seconds * 1000)
    const used = process.cpuUsage(before)
    return { cpuMs: (used.user + used.system) / 1000 }
  })
}

async function idleCpu (incidents, seconds) {
  const child = fork(fileURLToPath(import.meta.url), ['idle-child', String(incidents), String(seconds)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--expose-gc'] })
  return await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => { if (code !== 0) reject(new Error(`idle child exited ${code}`)) })
  })
}

export async function benchEscalation () {
  const seconds = Number(process.env.BENCH_IDLE_SECONDS ?? 30)
  // Alternated pairs: the machine's noise lands on both sides; the median pair is reported.
  const pairs = []
  for (let i = 0; i < Number(process.env.BENCH_IDLE_PAIRS ?? 3); i++) {
    const none = (await idleCpu(0, seconds)).cpuMs
    const many = (await idleCpu(INCIDENTS, seconds)).cpuMs
    pairs.push({ none, many, ratio: many / none })
  }
  pairs.sort((a, b) => a.ratio - b.ratio)
  const median = pairs[Math.floor(pairs.length / 2)]
  const idleNone = median.none
  const idleMany = median.many
  const spread = `${pairs[0].ratio.toFixed(2)}–${pairs[pairs.length - 1].ratio.toFixed(2)}×`
  const l = await benchLateness()
  return [
    { name: `escalation lateness p99, ${INCIDENTS.toLocaleString('en-US')} open incidents due over an hour (${l.fired} fired, p50 ${Math.round(l.p50)} ms) vs an ordinary delivery's enqueue → sent p99`, value: l.p99, unit: 'ms', baseline: l.baselineP99, ratio: l.baselineP99 / l.p99, goal: `≤ 1,000 ms: ${l.p99 <= 1_000 ? 'met' : 'MISSED'}` },
    { name: `idle CPU over ${seconds} s with ${INCIDENTS.toLocaleString('en-US')} open incidents vs none (median of ${pairs.length} alternated pairs; ${spread})`, value: idleMany, unit: 'ms CPU', baseline: idleNone, ratio: idleMany / idleNone, goal: `≤ 1.2×: ${idleMany / idleNone <= 1.2 ? 'met' : 'MISSED'}` }
  ]
}

if (process.argv[2] === 'idle-child') {
  const result = await idleChild(Number(process.argv[3]), Number(process.argv[4]))
  process.send(result, () => process.disconnect())
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of await benchEscalation()) console.log(`${r.name}: ${r.value.toFixed(1)} ${r.unit} vs ${r.baseline.toFixed(1)} → ${r.ratio.toFixed(2)}× (goal ${r.goal})`)
}
