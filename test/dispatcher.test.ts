import t from 'tap'
import { createMetrics } from '../src/metrics.js'
import type { SendResult } from '../src/notify/result.js'
import { createDispatcher, type DispatcherConfig, type Timer } from '../src/outbox/dispatcher.js'
import { createRateLimiter, DEFAULT_RATE_LIMITS, type RateLimit } from '../src/outbox/rate-limit.js'
import { createSqliteStore } from '../src/store/sqlite/store.js'
import type { Delivery, EnqueueItem, Store } from '../src/store/types.js'

const SECRET_MARKER = 'BODY-MARKER-must-not-be-logged'

type TestItem = EnqueueItem & { groupKey: string }

function item (key: string, over: Partial<TestItem> = {}): TestItem {
  return { destination: 'pagerduty', type: 'pagerduty', priority: 'P2', status: 'firing', idempotencyKey: key, groupKey: `g-${key}`, body: JSON.stringify({ text: SECRET_MARKER }), ...over }
}

// Each item as the only delivery of its own webhook; concurrent calls share one commit.
async function enqueue (store: Store, items: TestItem[], opts: { receivedAt: number }): Promise<{ inserted: Array<{ id: number }> }> {
  const results = await Promise.all(items.map(async ({ groupKey, ...it }) => await store.enqueue({ groupKey, receivedAt: opts.receivedAt, resolved: false, plan: () => [it] })))
  return { inserted: results.flatMap((r) => r.inserted) }
}

interface LogEntry { level: string, obj: object, msg: string | undefined }

// Timers that only fire when the test says so.
function manualTimers () {
  const timers = new Set<{ fn: () => void, ms: number }>()
  return {
    timers,
    setTimer (fn: () => void, ms: number): Timer {
      const entry = { fn, ms }
      timers.add(entry)
      return { clear: () => { timers.delete(entry) } }
    },
    fireAll () {
      const due = [...timers]
      timers.clear()
      for (const e of due) e.fn()
    }
  }
}

async function until (cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (cond()) return
    await new Promise((resolve) => setImmediate(resolve))
  }
  throw new Error(`timed out waiting for ${what}`)
}

function setup (t: { teardown: (fn: () => unknown) => void }, opts: {
  cfg?: Partial<DispatcherConfig>
  limits?: Record<string, RateLimit | null>
  send?: (d: Delivery) => Promise<SendResult>
} = {}) {
  const clock = { now: 10_000_000 }
  const store = createSqliteStore({ dataDir: ':memory:', idempotencyWindowMs: 600_000 }, { now: () => clock.now })
  const limits = opts.limits ?? {}
  const limiter = createRateLimiter((destination, type) => Object.hasOwn(limits, destination) ? limits[destination] ?? null : DEFAULT_RATE_LIMITS[type])
  const metrics = createMetrics({ defaultMetrics: false })
  const logs: LogEntry[] = []
  // Methods that need their receiver, as pino's do: an unbound call (`(c ? l.warn : l.debug)(…)`) throws.
  class ReceiverLogger {
    private readonly sink = logs
    debug (obj: object, msg?: string): void { this.sink.push({ level: 'debug', obj, msg }) }
    info (obj: object, msg?: string): void { this.sink.push({ level: 'info', obj, msg }) }
    warn (obj: object, msg?: string): void { this.sink.push({ level: 'warn', obj, msg }) }
    error (obj: object, msg?: string): void { this.sink.push({ level: 'error', obj, msg }) }
  }
  const sent: Delivery[] = []
  const timers = manualTimers()
  const dispatcher = createDispatcher(opts.cfg ?? {}, {
    store,
    limiter,
    metrics,
    now: () => clock.now,
    random: () => 0.5,
    setTimer: timers.setTimer,
    logger: new ReceiverLogger(),
    send: async (d) => {
      sent.push(d)
      return opts.send !== undefined ? await opts.send(d) : { ok: true, status: 200 }
    }
  })
  t.teardown(async () => {
    await dispatcher.stop({ timeoutMs: 0 })
    await store.close()
  })
  return { clock, store, metrics, logs, sent, timers, dispatcher }
}

async function counter (m: ReturnType<typeof createMetrics>['notifications'] | ReturnType<typeof createMetrics>['retries'] | ReturnType<typeof createMetrics>['rateLimitWaits'], labels: Record<string, string>): Promise<number> {
  const v = (await m.get()).values.find((x) => Object.entries(labels).every(([k, val]) => (x.labels as Record<string, unknown>)[k] === val))
  return v?.value ?? 0
}

t.test('classification table: sent / retry / dead', async (t) => {
  const table: Array<{ result: SendResult | 'throw', state: string, reason: string | null, nextInMs?: number }> = [
    { result: { ok: true, status: 200 }, state: 'sent', reason: null },
    { result: { ok: true, status: 202 }, state: 'sent', reason: null },
    { result: { ok: false, retryable: true, reason: 'server_error', status: 503, error: 'HTTP 503' }, state: 'pending', reason: 'server_error', nextInMs: 500 },
    { result: { ok: false, retryable: true, reason: 'timeout', error: 'no answer in 10s' }, state: 'pending', reason: 'timeout', nextInMs: 500 },
    { result: { ok: false, retryable: true, reason: 'network', error: 'ECONNREFUSED' }, state: 'pending', reason: 'network', nextInMs: 500 },
    { result: { ok: false, retryable: true, reason: 'rate_limited', status: 429, retryAfterMs: 30_000, error: 'HTTP 429' }, state: 'pending', reason: 'rate_limited', nextInMs: 30_000 },
    { result: { ok: false, retryable: false, reason: 'client_error', status: 400, error: 'HTTP 400: invalid event' }, state: 'dead', reason: 'client_error' },
    { result: { ok: false, retryable: false, reason: 'rejected', status: 200, error: 'slack said invalid_blocks' }, state: 'dead', reason: 'rejected' },
    { result: 'throw', state: 'pending', reason: 'network', nextInMs: 500 }
  ]
  for (const [i, row] of table.entries()) {
    const label = row.result === 'throw' ? 'sender throws' : `${row.result.ok ? 'ok' : row.result.reason} ${row.result.status ?? ''}`
    await t.test(label, async (t) => {
      const { clock, store, dispatcher, metrics } = setup(t, {
        cfg: { backoff: { baseMs: 1_000, capMs: 60_000 } },
        send: async () => {
          if (row.result === 'throw') throw new Error(`https://hooks.slack.com/services/T/B/secret-${i}`)
          return row.result
        }
      })
      const { inserted } = await enqueue(store, [item(`k${i}`, { priority: 'P1' })], { receivedAt: clock.now - 2_000 })
      t.equal(await dispatcher.runOnce(), 1)
      const d = await store.get(inserted[0]!.id)
      t.equal(d?.state, row.state)
      t.equal(d?.lastReason, row.reason)
      t.equal(d?.attempts, 1)
      if (row.nextInMs !== undefined) t.equal(d?.nextAttemptAt, clock.now + row.nextInMs)
      const outcome = row.state === 'pending' ? 'retry' : row.state
      t.equal(await counter(metrics.notifications, { destination: 'pagerduty', outcome, reason: row.reason ?? '' }), 1, `notifications{outcome="${outcome}"}`)
      if (row.state === 'sent') {
        t.equal(d?.sentAt, clock.now)
        t.match(await metrics.registry.getSingleMetricAsString('alert_enricher_delivery_latency_seconds'),
          /alert_enricher_delivery_latency_seconds_bucket\{le="2.5",priority="P1"\} 1/)
      }
      if (row.state === 'pending') t.equal(await counter(metrics.retries, { destination: 'pagerduty' }), 1)
      if (row.result === 'throw') t.notMatch(d?.lastError ?? '', /hooks\.slack\.com/, 'a thrown error text never reaches the row')
    })
  }
})

t.test('a retryable failure past the maximum age is dead-lettered as expired', async (t) => {
  const { clock, store, dispatcher, metrics, logs } = setup(t, {
    cfg: { maxAgeMs: 60_000 },
    send: async () => ({ ok: false, retryable: true, reason: 'server_error', status: 502, error: 'HTTP 502' })
  })
  const young = await enqueue(store, [item('young')], { receivedAt: clock.now - 59_999 })
  const old = await enqueue(store, [item('old')], { receivedAt: clock.now - 60_000 })
  await dispatcher.runOnce()
  t.match(await store.get(young.inserted[0]!.id), { state: 'pending', lastReason: 'server_error' })
  t.match(await store.get(old.inserted[0]!.id), { state: 'dead', lastReason: 'expired', lastError: /server_error: HTTP 502/ })
  t.equal(await counter(metrics.notifications, { outcome: 'dead', reason: 'expired' }), 1)
  t.equal(logs.filter((l) => l.level === 'error').length, 1)
})

t.test('a P0 is sent first even with 5,000 P3s queued behind a rate-limited destination', async (t) => {
  const { clock, store, dispatcher, sent, metrics } = setup(t, {
    cfg: { concurrency: 8 },
    limits: { 'slack-alerts': { perSecond: 1, burst: 1 } }
  })
  const noise: TestItem[] = []
  for (let i = 0; i < 5_000; i++) noise.push(item(`noise-${i}`, { destination: 'slack-alerts', type: 'slack', priority: 'P3' }))
  await enqueue(store, noise, { receivedAt: clock.now })
  await enqueue(store, [item('pd-p3', { priority: 'P3' })], { receivedAt: clock.now })
  clock.now += 1
  await enqueue(store, [
    item('slack-p0', { destination: 'slack-alerts', type: 'slack', priority: 'P0' }),
    item('pd-p0', { priority: 'P0' })
  ], { receivedAt: clock.now })

  await dispatcher.runOnce()
  t.same(sent.map((d) => d.idempotencyKey).sort(), ['pd-p0', 'pd-p3', 'slack-p0'],
    'both P0s (and the other destination) go; the Slack token goes to the P0, not to a P3')

  await dispatcher.runOnce()
  t.equal(sent.length, 3, 'Slack bucket empty: nothing claimed for it')
  await dispatcher.runOnce()
  t.equal(await counter(metrics.rateLimitWaits, { destination: 'slack-alerts' }), 1, 'one wait, however many claim rounds see it')
  t.equal((await store.list({ state: 'pending', limit: 10_000 })).length, 5_000, 'the P3s were never claimed: they wait as pending, holding no slot')

  clock.now += 1_000
  await dispatcher.runOnce()
  t.equal(sent.length, 4, 'one more Slack message per second')
  await dispatcher.runOnce()
  t.equal(await counter(metrics.rateLimitWaits, { destination: 'slack-alerts' }), 2, 'a new wait after a token was used')
})

t.test('a 429 holds its destination until Retry-After', async (t) => {
  let first = true
  const { clock, store, dispatcher, sent } = setup(t, {
    cfg: { concurrency: 1 },
    send: async () => {
      if (!first) return { ok: true, status: 202 }
      first = false
      return { ok: false, retryable: true, reason: 'rate_limited', status: 429, retryAfterMs: 10_000, error: 'HTTP 429' }
    }
  })
  await enqueue(store, [item('a', { priority: 'P0' }), item('b', { priority: 'P3' })], { receivedAt: clock.now })
  await dispatcher.runOnce()
  t.equal(sent.length, 1)
  clock.now += 5_000
  await dispatcher.runOnce()
  t.equal(sent.length, 1, 'b is due but the destination is held')
  clock.now += 5_000
  await dispatcher.runOnce()
  t.same(sent.map((d) => d.idempotencyKey), ['a', 'a'], 'after the hold the P0 retry goes before b')
})

t.test('logging: warn when the failure changes, debug when it repeats, error on dead; never bodies', async (t) => {
  const results: SendResult[] = [
    { ok: false, retryable: true, reason: 'server_error', status: 503, error: 'HTTP 503' },
    { ok: false, retryable: true, reason: 'server_error', status: 503, error: 'HTTP 503' },
    { ok: false, retryable: true, reason: 'timeout', error: 'no answer in 10s' },
    { ok: false, retryable: false, reason: 'client_error', status: 400, error: 'HTTP 400' }
  ]
  const { clock, store, dispatcher, logs } = setup(t, { send: async () => results.shift() ?? { ok: true, status: 200 } })
  await enqueue(store, [item('x')], { receivedAt: clock.now })
  for (let i = 0; i < 4; i++) {
    await dispatcher.runOnce()
    clock.now += 3_600_000 / 4 // past any backoff, inside the 24 h max age
  }
  const notes = logs.filter((l) => l.msg?.startsWith('notification')).map((l) => `${l.level}:${(l.obj as { reason?: string }).reason}`)
  t.same(notes, ['warn:server_error', 'debug:server_error', 'warn:timeout', 'error:client_error'])
  t.notMatch(JSON.stringify(logs), SECRET_MARKER)
})

t.test('metrics: gauges from store stats after known outcomes', async (t) => {
  const { clock, store, dispatcher, metrics } = setup(t, {
    send: async (d) => d.idempotencyKey === 'bad'
      ? { ok: false, retryable: false, reason: 'client_error', status: 400, error: 'HTTP 400' }
      : { ok: false, retryable: true, reason: 'server_error', status: 500, error: 'HTTP 500' }
  })
  await enqueue(store, [item('bad', { priority: 'P0' }), item('later', { priority: 'P1' })], { receivedAt: clock.now - 90_000 })
  await enqueue(store, [item('p3', { priority: 'P3' })], { receivedAt: clock.now })
  await dispatcher.runOnce()
  await dispatcher.refreshGauges()
  const pending = await metrics.registry.getSingleMetricAsString('alert_enricher_outbox_pending')
  t.match(pending, /outbox_pending\{priority="P0"\} 0/)
  t.match(pending, /outbox_pending\{priority="P1"\} 1/)
  t.match(pending, /outbox_pending\{priority="P3"\} 1/)
  t.match(await metrics.registry.getSingleMetricAsString('alert_enricher_outbox_oldest_pending_age_seconds'), /\{priority="P1"\} 90\n/)
  t.match(await metrics.registry.getSingleMetricAsString('alert_enricher_outbox_dead_letters'), /dead_letters 1$/)
  t.equal(await counter(metrics.notifications, { outcome: 'retry', reason: 'server_error' }), 2)
  t.equal(await counter(metrics.notifications, { outcome: 'dead', reason: 'client_error' }), 1)
  t.match(await metrics.registry.getSingleMetricAsString('alert_enricher_notification_attempt_duration_seconds'),
    /_count\{destination="pagerduty",type="pagerduty"\} 3/)
})

const claimAll = (now: number) => ({ now, limit: 10, leaseMs: 60_000, excludeDestinations: [], admit: () => true })

t.test('start releases claims and wake() runs the loop without waiting for the poll', async (t) => {
  const { clock, store, dispatcher, sent } = setup(t)
  await enqueue(store, [item('orphan')], { receivedAt: clock.now })
  await store.claim(claimAll(clock.now)) // left `sending` by a "crashed" process
  await dispatcher.start()
  await until(() => sent.length === 1, 'the released delivery to be sent')
  await enqueue(store, [item('fresh', { priority: 'P0' })], { receivedAt: clock.now })
  dispatcher.wake()
  await until(() => sent.length === 2, 'the new delivery to be sent') // no timer fired
  t.same(sent.map((d) => d.idempotencyKey), ['orphan', 'fresh'])
})

t.test('graceful stop lets in-flight sends finish and leaves the rest pending', async (t) => {
  const releases: Array<() => void> = []
  const { clock, store, dispatcher, sent } = setup(t, {
    cfg: { concurrency: 2 },
    send: async () => await new Promise<SendResult>((resolve) => releases.push(() => resolve({ ok: true, status: 200 })))
  })
  await enqueue(store, ['a', 'b', 'c', 'd', 'e'].map((k) => item(k)), { receivedAt: clock.now })
  await dispatcher.start()
  await until(() => releases.length === 2, 'two sends in flight')
  const stopping = dispatcher.stop({ timeoutMs: 5_000 })
  for (const r of releases) r()
  t.same(await stopping, { drained: true, inFlight: 0 })
  t.equal(sent.length, 2, 'nothing new claimed after stop')
  t.equal((await store.list({ state: 'sent', limit: 10 })).length, 2)
  t.equal((await store.list({ state: 'pending', limit: 10 })).length, 3)
})

t.test('stop is bounded: a hung send stays `sending` and is released at the next start', async (t) => {
  const { clock, store, dispatcher, timers, sent } = setup(t, {
    send: async () => await new Promise<SendResult>(() => {})
  })
  await enqueue(store, [item('hung')], { receivedAt: clock.now })
  await dispatcher.start()
  await until(() => sent.length === 1, 'the send to start')
  const stopping = dispatcher.stop({ timeoutMs: 100 })
  await until(() => [...timers.timers].some((x) => x.ms === 100), 'the stop timeout timer')
  timers.fireAll()
  t.same(await stopping, { drained: false, inFlight: 1 })
  t.equal((await store.list({ state: 'sending', limit: 10 })).length, 1)
  t.equal(await store.releaseClaims(), 1)
})

t.test('a claim left by a stopped dispatcher is sent by another once its lease lapses', async (t) => {
  const { clock, store, dispatcher, sent } = setup(t, { cfg: { leaseMs: 30_000, releaseClaimsAtStart: false } })
  await enqueue(store, [item('stranded')], { receivedAt: clock.now })
  t.equal((await store.claim({ ...claimAll(clock.now), leaseMs: 30_000 })).length, 1, 'claimed by a dispatcher that then hung')
  t.equal(await dispatcher.runOnce(), 0, 'not claimable while the lease holds')
  clock.now += 29_999
  t.equal(await dispatcher.runOnce(), 0, 'still held a millisecond before it lapses')
  clock.now += 1
  t.equal(await dispatcher.runOnce(), 1, 'claimable once claimed_until has passed')
  t.same(sent.map((d) => [d.idempotencyKey, d.attempts]), [['stranded', 2]])
  t.match(await store.get(1), { state: 'sent' })
})

t.test('a held destination wakes the loop when its next token is due, not at the poll interval', async (t) => {
  const { clock, store, dispatcher, sent, timers } = setup(t, {
    cfg: { pollIntervalMs: 30_000, housekeepingIntervalMs: 60_000 },
    limits: { 'slack-alerts': { perSecond: 4, burst: 1 } }
  })
  await enqueue(store, [item('a', { destination: 'slack-alerts', type: 'slack' }), item('b', { destination: 'slack-alerts', type: 'slack' })], { receivedAt: clock.now })
  await dispatcher.start()
  await until(() => sent.length === 1 && [...timers.timers].some((x) => x.ms === 250), 'a wake-up at the next token (250 ms)')
  clock.now += 250
  timers.fireAll()
  await until(() => sent.length === 2, 'the second message after the token')
  t.same(sent.map((d) => d.idempotencyKey), ['a', 'b'])
})

t.test('lent slots: none before start; while lent, claim rounds leave them alone; launch sends, release returns them', async (t) => {
  const releases: Array<() => void> = []
  const { clock, store, dispatcher, sent } = setup(t, {
    cfg: { concurrency: 3 },
    send: async () => await new Promise<SendResult>((resolve) => releases.push(() => resolve({ ok: true, status: 200 })))
  })
  t.equal(dispatcher.lendSlots(), null, 'a stopped dispatcher lends nothing')
  await dispatcher.start()
  const loan = dispatcher.lendSlots()
  if (loan === null) throw new Error('expected a loan')
  t.equal(loan.limit, 3, 'every free slot is lent')
  t.equal(loan.request().limit, 3, 'and the claim it builds asks for as many')
  t.equal(dispatcher.lendSlots(), null, 'no slot left to lend twice')
  await enqueue(store, ['a', 'b', 'c', 'd'].map((k) => item(k)), { receivedAt: clock.now })
  t.equal(await dispatcher.runOnce(), 0, 'a claim round finds no free slot while they are lent')
  // The borrower claimed two in its own transaction; one slot comes back with the launch.
  const claimed = await store.claim({ ...loan.request(), limit: 2 })
  loan.launch(claimed)
  loan.release() // settling twice changes nothing
  await until(() => sent.length === 2, 'the two lent claims to be sent')
  const next = dispatcher.lendSlots()
  t.equal(next?.limit, 1, 'the two sends in flight hold their slots; one is free again')
  next?.release()
  dispatcher.wake()
  await until(() => sent.length === 3, 'the free slot to be used by the loop')
  t.same(sent.map((d) => d.idempotencyKey), ['a', 'b', 'c'])
  for (const r of releases) r()
  await until(() => sent.length === 4, 'the rest to go as slots free up')
})

t.test('a drain waits for a lent claim to settle and for the sends it launches', async (t) => {
  const releases: Array<() => void> = []
  const { clock, store, dispatcher, sent } = setup(t, {
    send: async () => await new Promise<SendResult>((resolve) => releases.push(() => resolve({ ok: true, status: 200 })))
  })
  await dispatcher.start()
  const loan = dispatcher.lendSlots()
  if (loan === null) throw new Error('expected a loan')
  let stopped: { drained: boolean, inFlight: number } | null = null
  const stopping = dispatcher.stop({ timeoutMs: 60_000 }).then((r) => { stopped = r })
  await enqueue(store, [item('lent')], { receivedAt: clock.now })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(stopped, null, 'still draining: the loan has not settled')
  t.equal(dispatcher.lendSlots(), null, 'a stopping dispatcher lends nothing more')
  loan.launch(await store.claim(loan.request()))
  await until(() => sent.length === 1, 'the lent claim to be sent')
  t.equal(stopped, null, 'still draining: its send is in flight')
  for (const r of releases) r()
  await stopping
  t.same(stopped, { drained: true, inFlight: 0 })
  t.match(await store.get(1), { state: 'sent' }, 'recorded before the drain ended')
})
