import { countSkipped, type Metrics } from '../metrics.js'
import type { SendResult } from '../notify/result.js'
import { backoffDelayMs, DEFAULT_BACKOFF, type BackoffConfig } from './backoff.js'
import { createRateLimiter, type RateLimiterConfig } from './rate-limit.js'
import type { Delivery, Store } from './store.js'

// The background loop that empties the outbox: claim due deliveries highest priority first,
// within each destination's rate limit, send them concurrently, record the outcome.
// At-least-once: a crash between a send and its markSent re-sends on restart (PagerDuty
// dedup_key makes that harmless; Slack may show a duplicate, never a lost page).

export interface DispatcherConfig {
  pollIntervalMs?: number
  batchSize?: number
  concurrency?: number
  rateLimits?: RateLimiterConfig
  backoff?: Partial<BackoffConfig>
  // A delivery still failing (retryably) this long after its webhook was received is
  // dead-lettered with reason `expired`.
  maxAgeMs?: number
  // How often outbox gauges are refreshed and old sent rows pruned.
  statsIntervalMs?: number
  retainSentMs?: number
}

export const DISPATCHER_DEFAULTS = {
  pollIntervalMs: 1_000,
  batchSize: 100,
  concurrency: 16,
  maxAgeMs: 24 * 60 * 60_000,
  statsIntervalMs: 5_000,
  retainSentMs: 7 * 24 * 60 * 60_000
}

type LogFn = (obj: object, msg?: string) => void
export interface DispatcherLogger { debug: LogFn, info: LogFn, warn: LogFn, error: LogFn }

export interface Timer { clear: () => void }

export interface DispatcherDeps {
  store: Store
  // Resolves the notifier for delivery.destination and sends; returns a result, never throws.
  send: (delivery: Delivery) => Promise<SendResult>
  now: () => number
  metrics: Metrics
  logger: DispatcherLogger
  random?: () => number
  setTimer?: (fn: () => void, ms: number) => Timer
}

export interface Dispatcher {
  // Recovers a crashed process's claims, then dispatches until stop().
  start: () => Promise<void>
  // New work was enqueued: claim now rather than at the next poll.
  notify: () => void
  // One claim round; waits for the sends it started. Returns how many were claimed.
  runOnce: () => Promise<number>
  refreshGauges: () => Promise<void>
  // Stops claiming, waits (bounded) for in-flight sends; unclaimed work stays pending.
  stop: (opts?: { timeoutMs?: number }) => Promise<{ drained: boolean, inFlight: number }>
}

// Timers keep the process alive between start() and stop(), as a worker loop should.
function defaultSetTimer (fn: () => void, ms: number): Timer {
  const t = setTimeout(fn, ms)
  return { clear: () => clearTimeout(t) }
}

// Errors thrown by a sender may embed a URL (and so a secret): log the class name only.
function errorName (err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}

export function createDispatcher (cfg: DispatcherConfig, deps: DispatcherDeps): Dispatcher {
  const c = { ...DISPATCHER_DEFAULTS, ...cfg }
  const backoff = { ...DEFAULT_BACKOFF, ...cfg.backoff }
  const { store, metrics, logger } = deps
  const random = deps.random ?? Math.random
  const setTimer = deps.setTimer ?? defaultSetTimer
  const limiter = createRateLimiter(cfg.rateLimits)

  // Every started settle (send + recording its outcome), for stop() to wait on.
  const inFlight = new Set<Promise<void>>()
  // Requests in progress: what the concurrency limit counts.
  let sending = 0
  let started = false
  let stopping = false
  let pumping: Promise<void> | null = null
  let pumpAgain = false
  let wakeTimer: Timer | null = null
  let statsTimer: Timer | null = null
  let msUntilToken = Infinity
  // Destinations with due work currently waiting for a token.
  const held = new Set<string>()

  async function settle (d: Delivery): Promise<void> {
    const { destination, type } = d
    const startedAt = deps.now()
    let result: SendResult
    try {
      result = await deps.send(d)
    } catch (err) {
      result = { ok: false, retryable: true, reason: 'network', error: `sender threw ${errorName(err)}` }
    }
    const now = deps.now()
    // The slot is free once the request is over: claiming the next batch now lets the claim
    // share a group commit with this outcome's mark.
    sending--
    if (started && !stopping) kick()
    metrics.notificationAttemptSeconds.observe({ destination, type }, (now - startedAt) / 1000)
    const log = { id: d.id, destination, type, priority: d.priority, attempt: d.attempts }

    if (result.ok) {
      await store.markSent(d.id, now)
      metrics.notifications.inc({ destination, type, outcome: 'sent', reason: '' })
      metrics.deliveryLatencySeconds.observe({ priority: d.priority }, Math.max(0, now - d.receivedAt) / 1000)
      logger.debug({ ...log, status: result.status }, 'notification sent')
      return
    }
    const { reason, error } = result
    if (!result.retryable) {
      await store.markDead(d.id, reason, error)
      metrics.notifications.inc({ destination, type, outcome: 'dead', reason })
      logger.error({ ...log, reason, status: result.status, error }, 'notification dead-lettered')
      return
    }
    const ageMs = now - d.receivedAt
    if (ageMs >= c.maxAgeMs) {
      const why = `gave up after ${d.attempts} attempts over ${Math.round(ageMs / 60_000)} min; last: ${reason}: ${error}`
      await store.markDead(d.id, 'expired', why)
      metrics.notifications.inc({ destination, type, outcome: 'dead', reason: 'expired' })
      logger.error({ ...log, reason: 'expired', lastReason: reason, error }, 'notification dead-lettered')
      return
    }
    const delayMs = backoffDelayMs(backoff, d.attempts, random, result.retryAfterMs)
    if (reason === 'rate_limited') {
      // The destination asked us to slow down: nothing else goes there before then.
      limiter.holdUntil(destination, type, now, now + Math.min(result.retryAfterMs ?? delayMs, backoff.maxRetryAfterMs))
    }
    if (await store.markRetry(d.id, now + delayMs, reason, error) === 'superseded') {
      countSkipped(metrics, [d], 'superseded')
      logger.info({ ...log, reason, error }, 'failed notification superseded by a newer one of the same group; not retried')
      return
    }
    metrics.retries.inc({ destination, type })
    metrics.notifications.inc({ destination, type, outcome: 'retry', reason })
    // One warning per change of failure, not one per attempt of a long outage.
    const changed = d.lastReason !== reason || d.lastError !== error
    const fields = { ...log, reason, status: result.status, error, retryInMs: delayMs }
    if (changed) logger.warn(fields, 'notification will be retried')
    else logger.debug(fields, 'notification will be retried')
  }

  function launch (d: Delivery): void {
    sending++
    const p: Promise<void> = settle(d)
      .catch((err: unknown) => {
        // The row stays `sending`; recoverClaims() returns it to pending on the next start.
        logger.error({ id: d.id, destination: d.destination, err: errorName(err) }, 'recording a delivery outcome failed')
      })
      .finally(() => { inFlight.delete(p) })
    inFlight.add(p)
  }

  function budgetFor (now: number) {
    return (destination: string, type: Delivery['type']): number => {
      const n = limiter.available(destination, type, now)
      if (n >= 1) {
        held.delete(destination)
        return n
      }
      // Counted once per wait, not once per claim round that finds it still waiting.
      if (!held.has(destination)) metrics.rateLimitWaits.inc({ destination, type })
      held.add(destination)
      msUntilToken = Math.min(msUntilToken, limiter.msUntilAvailable(destination, type, now))
      return 0
    }
  }

  // Claims until the concurrency slots are full or nothing more is due.
  async function claimRound (): Promise<Delivery[]> {
    const claimedAll: Delivery[] = []
    msUntilToken = Infinity
    while (!stopping) {
      const want = Math.min(c.batchSize, c.concurrency - sending)
      if (want <= 0) break
      const now = deps.now()
      const rows = await store.claimDue(now, want, { budgetFor: budgetFor(now) })
      for (const d of rows) {
        limiter.take(d.destination, d.type, now)
        launch(d)
      }
      claimedAll.push(...rows)
      if (rows.length < want) break
    }
    return claimedAll
  }

  function scheduleWake (): void {
    wakeTimer?.clear()
    wakeTimer = null
    if (!started || stopping) return
    wakeTimer = setTimer(kick, Math.max(1, Math.min(c.pollIntervalMs, msUntilToken)))
  }

  // Coalesces wake-ups: at most one claim round runs at a time, plus one queued behind it.
  function kick (): void {
    if (pumping !== null) {
      pumpAgain = true
      return
    }
    let failed = false
    pumping = (async () => {
      do {
        pumpAgain = false
        try {
          await claimRound()
        } catch (err) {
          logger.error({ err: errorName(err) }, 'claiming deliveries failed')
          failed = true // retried at the next wake-up, not in a loop
          break
        }
      } while (pumpAgain && !stopping)
    })().finally(() => {
      pumping = null
      // A notify() between the loop's last check and here found `pumping` still set: without
      // this it would be lost, and its work would wait for the next poll.
      if (pumpAgain && !failed && started && !stopping) kick()
      else scheduleWake()
    })
  }

  async function refreshGauges (): Promise<void> {
    const s = await store.stats(deps.now())
    for (const priority of ['P0', 'P1', 'P2', 'P3'] as const) {
      metrics.outboxPending.set({ priority }, s.pending[priority])
      metrics.outboxOldestPendingAgeSeconds.set({ priority }, s.oldestPendingAgeMs[priority] / 1000)
    }
    metrics.deadLetters.set(s.dead)
  }

  async function housekeeping (): Promise<void> {
    try {
      await refreshGauges()
      await store.pruneSent(deps.now() - c.retainSentMs)
    } catch (err) {
      logger.warn({ err: errorName(err) }, 'outbox housekeeping failed')
    }
    if (started && !stopping) statsTimer = setTimer(() => { void housekeeping() }, c.statsIntervalMs)
  }

  return {
    async start () {
      if (started) return
      const recovered = await store.recoverClaims()
      if (recovered > 0) logger.info({ recovered }, 'returned interrupted deliveries to pending')
      started = true
      stopping = false
      void housekeeping()
      kick()
    },
    notify () {
      if (started && !stopping) kick()
    },
    async runOnce () {
      const rows = await claimRound()
      await Promise.all([...inFlight])
      return rows.length
    },
    refreshGauges,
    async stop ({ timeoutMs = 10_000 } = {}) {
      stopping = true
      wakeTimer?.clear()
      statsTimer?.clear()
      if (pumping !== null) await pumping
      if (inFlight.size === 0 || timeoutMs <= 0) {
        started = false
        return { drained: inFlight.size === 0, inFlight: inFlight.size }
      }
      let timer: Timer | null = null
      const timedOut = new Promise<false>((resolve) => { timer = setTimer(() => resolve(false), timeoutMs) })
      const drained = await Promise.race([Promise.all([...inFlight]).then(() => true as const), timedOut])
      ;(timer as Timer | null)?.clear()
      started = false
      return { drained, inFlight: inFlight.size }
    }
  }
}
