import t from 'tap'
import { createRateLimiter, DEFAULT_RATE_LIMITS, type RateLimit } from '../src/outbox/rate-limit.js'

// Takes tokens until refused; how many it got.
function drain (rl: ReturnType<typeof createRateLimiter>, destination: string, type: 'slack' | 'pagerduty', now: number, max = 1_000): number {
  let n = 0
  while (n < max && rl.admit(destination, type, now)) n++
  return n
}

t.test('defaults: Slack 1/s with a small burst; PagerDuty 120/min with a burst of a minute\'s allowance', async (t) => {
  t.same(DEFAULT_RATE_LIMITS.slack, { perSecond: 1, burst: 3 })
  t.equal(DEFAULT_RATE_LIMITS.pagerduty.perSecond * 60, 120)
  const rl = createRateLimiter((_d, type) => DEFAULT_RATE_LIMITS[type])
  t.equal(drain(rl, 'slack-alerts', 'slack', 0), 3, 'starts with a full burst')
  t.equal(drain(rl, 'pagerduty', 'pagerduty', 0), 60, 'a storm\'s first 60 pages go at once')
})

t.test('tokens refill with the injected clock, never above the burst', async (t) => {
  const rl = createRateLimiter(() => ({ perSecond: 1, burst: 2 }))
  t.equal(drain(rl, 's', 'slack', 0), 2)
  t.same(rl.exhausted(0), { destinations: ['s'], msUntilNext: 1_000 })
  t.same(rl.exhausted(500), { destinations: ['s'], msUntilNext: 500 })
  t.equal(rl.admit('s', 'slack', 999), false)
  t.equal(rl.admit('s', 'slack', 1_000), true)
  t.equal(drain(rl, 's', 'slack', 60_000), 2, 'never above the burst')
})

t.test('buckets are per destination; only exhausted ones are listed', async (t) => {
  const rl = createRateLimiter(() => ({ perSecond: 1, burst: 1 }))
  t.equal(rl.admit('a', 'slack', 0), true)
  t.equal(rl.admit('a', 'slack', 0), false)
  t.equal(rl.admit('b', 'slack', 0), true)
  rl.admit('c', 'slack', 0)
  t.same(rl.exhausted(2_000), { destinations: [], msUntilNext: Infinity })
})

t.test('unlimited destinations never run out', async (t) => {
  const rl = createRateLimiter((d) => d === 'fast' ? null : { perSecond: 0.5, burst: 1 })
  t.equal(drain(rl, 'fast', 'slack', 0), 1_000)
  rl.admit('slow', 'pagerduty', 0)
  t.same(rl.exhausted(0), { destinations: ['slow'], msUntilNext: 2_000 })
})

t.test('holdUntil (Retry-After) blocks the destination until then', async (t) => {
  const rl = createRateLimiter((d, type) => d === 'fast' ? null : DEFAULT_RATE_LIMITS[type])
  rl.holdUntil('pd', 'pagerduty', 0, 30_000)
  rl.holdUntil('fast', 'slack', 0, 5_000)
  t.equal(rl.admit('pd', 'pagerduty', 29_999), false)
  t.same(rl.exhausted(1_000), { destinations: ['pd', 'fast'], msUntilNext: 4_000 })
  t.same(rl.exhausted(10_000), { destinations: ['pd'], msUntilNext: 20_000 }, 'the lapsed hold is gone')
  t.equal(rl.admit('fast', 'slack', 1_000), false, 'even an unlimited destination honours a hold')
  t.equal(rl.admit('fast', 'slack', 5_000), true)
  t.equal(rl.admit('pd', 'pagerduty', 30_000), true)
  rl.holdUntil('pd', 'pagerduty', 30_000, 10_000)
  t.equal(rl.admit('pd', 'pagerduty', 30_000), true, 'a hold in the past does not block')
})

t.test('a changed limit (catalog reload) applies to the existing bucket', async (t) => {
  const limits: Record<string, RateLimit | null> = { pd: { perSecond: 1, burst: 5 } }
  const rl = createRateLimiter((d, type) => Object.hasOwn(limits, d) ? limits[d] ?? null : DEFAULT_RATE_LIMITS[type])
  t.equal(rl.admit('pd', 'pagerduty', 0), true)
  limits.pd = { perSecond: 1, burst: 2 }
  t.equal(drain(rl, 'pd', 'pagerduty', 0), 2, 'tokens capped at the new burst')
  limits.pd = null
  t.equal(drain(rl, 'pd', 'pagerduty', 0), 1_000, 'null lifts the limit')
  Reflect.deleteProperty(limits, 'pd')
  t.equal(drain(rl, 'pd', 'pagerduty', 120_000), 60, 'back to the PagerDuty default burst')
})
