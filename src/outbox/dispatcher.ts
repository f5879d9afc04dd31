import { PRIORITIES } from '../config/catalog-schema.js'
import { countSkipped, type Metrics } from '../metrics.js'
import type { SendResult } from '../notify/result.js'
import type { ClaimRequest, Delivery, MarkResult, SlotLoan, Store } from '../store/types.js'
import { backoffDelayMs, DEFAULT_BACKOFF, type BackoffConfig } from './backoff.js'
import type { RateLimiter } from './rate-limit.js'

// The loop that empties the outbox: claim due deliveries highest priority first, within each
// destination's rate limit, send them concurrently, record each outcome. Woken at once when
// work is enqueued; polls as a fallback. At-least-once: a crash (or a lapsed claim) between
// a send and its mark sends again (PagerDuty's dedup_key makes that harmless; Slack may show
// a duplicate, never miss a page).

export interface DispatcherConfig {
  pollIntervalMs: number
  concurrency: number
  // Longer than a send can take (the notify timeout), so only a hung or dead process lapses.
  leaseMs: number
  // A delivery still failing (retryably) this long after its webhook was received is
  // dead-lettered with reason `expired`.
  maxAgeMs: number
  housekeepingIntervalMs: number
  retainSentMs: number
  backoff: BackoffConfig
  // Only where this process alone owns the store (SQLite): claims left by a crash return at once.
  releaseClaimsAtStart: boolean
}

export const DISPATCHER_DEFAULTS: DispatcherConfig = {
  pollIntervalMs: 1_000,
  concurrency: 16,
  leaseMs: 60_000,
  maxAgeMs: 24 * 60 * 60_000,
  housekeepingIntervalMs: 5_000,
  retainSentMs: 7 * 24 * 60 * 60_000,
  backoff: DEFAULT_BACKOFF,
  releaseClaimsAtStart: true
}

type LogFn = (obj: object, msg?: string) => void
export interface DispatcherLogger { debug: LogFn, info: LogFn, warn: LogFn, error: LogFn }

export interface Timer { clear: () => void }

export interface DispatcherDeps {
  store: Store
  limiter: RateLimiter
  // Renders and sends one delivery; returns a result, never throws.
  send: (delivery: Delivery) => Promise<SendResult>
  now: () => number
  metrics: Metrics
  logger: DispatcherLogger
  random?: () => number
  setTimer?: (fn: () => void, ms: number) => Timer
  // Whether a destination has its secret (an escalation to one without is stored skipped).
  isConfigured?: (destination: string) => boolean
  // Bot-token Slack destinations: an escalation edits their incident message and replies in its thread.
  isSlackApp?: (destination: string) => boolean
}

export interface Dispatcher {
  start: () => Promise<void>
  // Work was enqueued (or replayed): claim now rather than at the next poll.
  wake: () => void
  // One claim round; waits for the sends it started. Returns how many were claimed.
  runOnce: () => Promise<number>
  // Lends the free send slots to a claim made inside another transaction (an enqueue's), so
  // a page goes out the moment that commits; null while stopped or with no slot free.
  lendSlots: () => SlotLoan | null
  refreshGauges: () => Promise<void>
  // Stops claiming, waits (bounded) for in-flight sends; unclaimed work stays pending.
  stop: (opts?: { timeoutMs?: number }) => Promise<{ drained: boolean, inFlight: number }>
}

// A delivery held for business hours is due from its release, not from its webhook.
function since (d: Delivery): number {
  return Math.max(d.receivedAt, d.deferredUntil ?? 0)
}

function defaultSetTimer (fn: () => void, ms: number): Timer {
  const t = setTimeout(fn, ms)
  return { clear: () => { clearTimeout(t) } }
}

// Errors thrown by a sender or the store may embed a URL (and so a secret): log the class only.
function errorName (err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}

export function createDispatcher (cfg: Partial<DispatcherConfig>, deps: DispatcherDeps): Dispatcher {
  const c = { ...DISPATCHER_DEFAULTS, ...cfg }
  const { store, limiter, metrics, logger } = deps
  const random = deps.random ?? Math.random
  const setTimer = deps.setTimer ?? defaultSetTimer

  const inFlight = new Set<Promise<void>>()
  // Slots promised to a claim still running (a claim round's, or a lent one): with the sends
  // in flight, never more than the concurrency.
  let reserved = 0
  const freeSlots = (): number => c.concurrency - inFlight.size - reserved
  let running = false
  let pumping: Promise<void> | null = null
  let pumpAgain = false
  let wakeTimer: Timer | null = null
  let housekeepingTimer: Timer | null = null
  // Escalation timers live in the store; this is only when to look again: at the earliest
  // armed one, and at least every poll (another webhook may have armed a sooner one).
  let nextEscalationCheck = 0
  const ESCALATION_BATCH = 100

  async function record (d: Delivery, result: SendResult, now: number): Promise<void> {
    const { destination, type } = d
    const log = { id: d.id, destination, type, priority: d.priority, attempt: d.attempts }
    const lost = (mark: MarkResult | 'superseded'): boolean => {
      if (mark !== 'lost_claim') return false
      logger.warn(log, 'claim lapsed before the outcome was recorded; the delivery is claimable again')
      return true
    }
    if (result.ok) {
      if (lost(await store.markSent(d, now))) return
      metrics.notifications.inc({ destination, type, outcome: 'sent', reason: '' })
      metrics.deliveryLatencySeconds.observe({ priority: d.priority }, Math.max(0, now - since(d)) / 1000)
      logger.debug({ ...log, status: result.status }, 'notification sent')
      return
    }
    const { reason, error } = result
    if (result.skip === true) {
      if (lost(await store.markSkipped(d, reason, error))) return
      metrics.notifications.inc({ destination, type, outcome: 'skipped', reason })
      logger.info({ ...log, reason, error }, 'nothing to send; notification skipped')
      return
    }
    if (reason === 'debounced') {
      // Not a failure: the update waits its turn, without backoff, and a newer one replaces it.
      const mark = await store.markRetry(d, now + (result.retryAfterMs ?? 0), reason, error)
      if (lost(mark)) return
      if (mark === 'superseded') countSkipped(metrics, [d], 'superseded')
      else metrics.notifications.inc({ destination, type, outcome: 'retry', reason })
      logger.debug({ ...log, retryInMs: result.retryAfterMs, superseded: mark === 'superseded' }, 'Slack message update debounced')
      return
    }
    const ageMs = now - since(d)
    if (!result.retryable || ageMs >= c.maxAgeMs) {
      const expired = result.retryable
      const why = expired ? `gave up after ${d.attempts} attempts over ${Math.round(ageMs / 60_000)} min; last: ${reason}: ${error}` : error
      if (lost(await store.markDead(d, expired ? 'expired' : reason, why))) return
      metrics.notifications.inc({ destination, type, outcome: 'dead', reason: expired ? 'expired' : reason })
      logger.error({ ...log, reason: expired ? 'expired' : reason, lastReason: reason, status: result.status, error }, 'notification dead-lettered')
      return
    }
    const delayMs = backoffDelayMs(c.backoff, d.attempts, random, result.retryAfterMs)
    // The destination asked us to slow down: nothing else goes there before then.
    if (reason === 'rate_limited') limiter.holdUntil(destination, type, now, now + (result.retryAfterMs ?? delayMs))
    const mark = await store.markRetry(d, now + delayMs, reason, error)
    if (lost(mark)) return
    if (mark === 'superseded') {
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
    const startedAt = deps.now()
    const p: Promise<void> = deps.send(d)
      .catch((err: unknown): SendResult => ({ ok: false, retryable: true, reason: 'network', error: `sender threw ${errorName(err)}` }))
      .then(async (result) => {
        const now = deps.now()
        metrics.notificationAttemptSeconds.observe({ destination: d.destination, type: d.type }, (now - startedAt) / 1000)
        await record(d, result, now)
      })
      .catch((err: unknown) => {
        // The store logged and counted it; the claim lapses and the delivery is sent again.
        logger.error({ id: d.id, destination: d.destination, err: errorName(err) }, 'recording a delivery outcome failed')
      })
      .finally(() => {
        inFlight.delete(p)
        if (running) wake()
      })
    inFlight.add(p)
  }

  // What a claim of up to `limit` deliveries may take now: within the rate limits, and a
  // destination refused once is not asked again (a wait is counted once, not per delivery).
  function claimRequest (limit: number): ClaimRequest {
    const now = deps.now()
    const refused = new Set<string>()
    return {
      now,
      limit,
      leaseMs: c.leaseMs,
      excludeDestinations: limiter.exhausted(now).destinations,
      admit: (destination, type) => {
        if (refused.has(destination)) return false
        if (limiter.admit(destination, type, now)) return true
        refused.add(destination)
        metrics.rateLimitWaits.inc({ destination, type })
        return false
      }
    }
  }

  // Claims until the concurrency slots are full or nothing more may go now.
  async function claimRound (): Promise<number> {
    let claimed = 0
    while (freeSlots() > 0) {
      const limit = freeSlots()
      reserved += limit
      let rows: Delivery[]
      try {
        rows = await store.claim(claimRequest(limit))
      } finally {
        reserved -= limit
      }
      for (const d of rows) launch(d)
      claimed += rows.length
      if (rows.length === 0) break
    }
    return claimed
  }

  // Loans not yet settled, each a promise kept when it is: a drain waits for their sends too.
  const loans = new Set<Promise<void>>()

  function lendSlots (): SlotLoan | null {
    const limit = freeSlots()
    if (!running || limit <= 0) return null
    reserved += limit
    let settled = false
    let kept = (): void => {}
    const loan = new Promise<void>((resolve) => { kept = resolve })
    loans.add(loan)
    const settle = (): void => {
      if (settled) return
      settled = true
      reserved -= limit
      loans.delete(loan)
      kept()
    }
    return {
      limit,
      request: () => claimRequest(limit),
      launch: (rows) => {
        settle()
        for (const d of rows) launch(d)
      },
      release: settle
    }
  }

  // Fires the due escalation timers: their deliveries are ordinary outbox rows from then on.
  // Returns whether more may be due at once (a full batch).
  async function escalate (force: boolean): Promise<boolean> {
    const now = deps.now()
    if (!force && now < nextEscalationCheck) return false
    const { fired, nextDueAt } = await store.fireDueEscalations({
      now, limit: ESCALATION_BATCH, isConfigured: deps.isConfigured ?? (() => true), ...(deps.isSlackApp !== undefined ? { isSlackApp: deps.isSlackApp } : {})
    })
    for (const f of fired) {
      if (f.breach) metrics.slaBreaches.inc({ priority: f.priority })
      if (f.deliveries.length > 0) metrics.escalations.inc({ priority: f.priority })
      countSkipped(metrics, f.deliveries.filter((d) => d.state === 'skipped'), 'not_configured')
      logger.warn({ incident: f.incidentId, priority: f.priority, escalation: f.number, lateMs: f.lateMs, destinations: f.deliveries.map((d) => d.destination) },
        f.breach ? 'response deadline passed unacknowledged: escalating' : 'still unacknowledged: escalating again')
    }
    const full = fired.length === ESCALATION_BATCH
    nextEscalationCheck = full ? now : Math.min(now + c.pollIntervalMs, nextDueAt ?? Number.POSITIVE_INFINITY)
    return full
  }

  // A failing escalation step must not hold up the claims: logged (the store counted it), and
  // tried again at the next wake-up or poll.
  async function escalateLogged (): Promise<boolean> {
    try {
      return await escalate(false)
    } catch (err) {
      logger.error({ err: errorName(err) }, 'firing escalation timers failed')
      return false
    }
  }

  function scheduleWake (): void {
    wakeTimer?.clear()
    const now = deps.now()
    const delay = Math.min(c.pollIntervalMs, limiter.exhausted(now).msUntilNext, nextEscalationCheck - now)
    wakeTimer = running ? setTimer(wake, Math.max(1, delay)) : null
  }

  // At most one claim round runs at a time; a wake-up during one runs another after it.
  function wake (): void {
    if (!running) return
    if (pumping !== null) {
      pumpAgain = true
      return
    }
    pumping = (async () => {
      try {
        do {
          pumpAgain = false
          if (await escalateLogged()) pumpAgain = true
          await claimRound()
        } while (pumpAgain && running)
      } catch (err) {
        // The store logged and counted it; the next wake-up or poll tries again.
        logger.error({ err: errorName(err) }, 'claiming deliveries failed')
      } finally {
        // Cleared in the same step as the loop's last check: a wake() arriving after that
        // check starts a new round instead of setting a pumpAgain nobody reads.
        pumping = null
      }
      scheduleWake()
    })()
  }

  async function refreshGauges (): Promise<void> {
    const now = deps.now()
    const s = await store.stats(now)
    const i = await store.incidentStats(now)
    for (const priority of PRIORITIES) {
      metrics.outboxPending.set({ priority }, s.pending[priority])
      metrics.outboxOldestPendingAgeSeconds.set({ priority }, s.oldestPendingAgeMs[priority] / 1000)
      metrics.deferredNotifications.set({ priority }, i.deferred[priority])
      for (const [state, n] of Object.entries(i.incidents[priority])) metrics.incidents.set({ priority, state }, n)
    }
    metrics.deadLetters.set(s.dead)
  }

  async function housekeeping (): Promise<void> {
    try {
      const now = deps.now()
      await store.housekeeping(now, now - c.retainSentMs)
      await refreshGauges()
    } catch (err) {
      logger.error({ err: errorName(err) }, 'outbox housekeeping failed')
    }
    if (running) housekeepingTimer = setTimer(() => { void housekeeping() }, c.housekeepingIntervalMs)
  }

  return {
    async start () {
      if (running) return
      if (c.releaseClaimsAtStart) {
        const released = await store.releaseClaims()
        if (released > 0) logger.info({ released }, 'returned interrupted deliveries to pending')
      }
      running = true
      void housekeeping()
      wake()
    },
    wake,
    lendSlots,
    async runOnce () {
      await escalate(true)
      const claimed = await claimRound()
      await Promise.all([...inFlight])
      return claimed
    },
    refreshGauges,
    async stop ({ timeoutMs = 10_000 } = {}) {
      running = false
      wakeTimer?.clear()
      housekeepingTimer?.clear()
      if (pumping !== null) await pumping
      if ((inFlight.size === 0 && loans.size === 0) || timeoutMs <= 0) return { drained: inFlight.size === 0, inFlight: inFlight.size }
      let timer: Timer | null = null
      const timedOut = new Promise<false>((resolve) => { timer = setTimer(() => { resolve(false) }, timeoutMs) })
      // A lent claim settles as its enqueue commits, within milliseconds: its sends are drained too.
      await Promise.race([Promise.all([...loans]), timedOut])
      const drained = await Promise.race([Promise.all([...inFlight]).then(() => true as const), timedOut])
      ;(timer as Timer | null)?.clear()
      return { drained, inFlight: inFlight.size }
    }
  }
}
