import t from 'tap'
import { createRateLimiter, DEFAULT_RATE_LIMITS } from '../src/outbox/rate-limit.js'

t.test('defaults: Slack 1/s with a small burst, PagerDuty 120/min', async (t) => {
  t.same(DEFAULT_RATE_LIMITS.slack, { perSecond: 1, burst: 3 })
  t.equal(DEFAULT_RATE_LIMITS.pagerduty.perSecond * 60, 120)
  const rl = createRateLimiter()
  t.equal(rl.available('slack-alerts', 'slack', 0), 3, 'starts with a full burst')
  t.equal(rl.available('pagerduty', 'pagerduty', 0), 10)
})

t.test('tokens are taken and refill with the injected clock', async (t) => {
  const rl = createRateLimiter({ byType: { slack: { perSecond: 1, burst: 2 } } })
  rl.take('s', 'slack', 0)
  rl.take('s', 'slack', 0)
  t.equal(rl.available('s', 'slack', 0), 0)
  t.equal(rl.msUntilAvailable('s', 'slack', 0), 1_000)
  t.equal(rl.msUntilAvailable('s', 'slack', 500), 500)
  t.equal(rl.available('s', 'slack', 999), 0)
  t.equal(rl.available('s', 'slack', 1_000), 1)
  t.equal(rl.msUntilAvailable('s', 'slack', 1_000), 0)
  t.equal(rl.available('s', 'slack', 60_000), 2, 'never above the burst')
})

t.test('buckets are per destination', async (t) => {
  const rl = createRateLimiter({ byType: { slack: { perSecond: 1, burst: 1 } } })
  rl.take('a', 'slack', 0)
  t.equal(rl.available('a', 'slack', 0), 0)
  t.equal(rl.available('b', 'slack', 0), 1)
})

t.test('per-destination overrides, including unlimited', async (t) => {
  const rl = createRateLimiter({ byDestination: { fast: null, slow: { perSecond: 0.5, burst: 1 } } })
  for (let i = 0; i < 1_000; i++) rl.take('fast', 'slack', 0)
  t.equal(rl.available('fast', 'slack', 0), Infinity)
  rl.take('slow', 'pagerduty', 0)
  t.equal(rl.msUntilAvailable('slow', 'pagerduty', 0), 2_000)
})

t.test('holdUntil (Retry-After) blocks the destination until then', async (t) => {
  const rl = createRateLimiter({ byDestination: { fast: null } })
  rl.holdUntil('pd', 'pagerduty', 0, 30_000)
  rl.holdUntil('fast', 'slack', 0, 5_000)
  t.equal(rl.available('pd', 'pagerduty', 29_999), 0)
  t.equal(rl.msUntilAvailable('pd', 'pagerduty', 10_000), 20_000)
  t.equal(rl.available('pd', 'pagerduty', 30_000), 10)
  t.equal(rl.available('fast', 'slack', 1_000), 0, 'even an unlimited destination honours a hold')
  t.equal(rl.available('fast', 'slack', 5_000), Infinity)
  rl.holdUntil('pd', 'pagerduty', 30_000, 10_000)
  t.equal(rl.available('pd', 'pagerduty', 30_000), 10, 'a shorter hold never shortens nor extends an expired one')
})

t.test('a changed per-destination limit (catalog reload) applies to the existing bucket', async (t) => {
  const byDestination: Record<string, { perSecond: number, burst: number } | null> = { pd: { perSecond: 1, burst: 5 } }
  const limiter = createRateLimiter({ byDestination })
  t.equal(limiter.available('pd', 'pagerduty', 0), 5)
  byDestination.pd = { perSecond: 1, burst: 2 }
  t.equal(limiter.available('pd', 'pagerduty', 0), 2, 'tokens capped at the new burst')
  byDestination.pd = null
  t.equal(limiter.available('pd', 'pagerduty', 0), Infinity, 'null lifts the limit')
  Reflect.deleteProperty(byDestination, 'pd')
  t.equal(limiter.available('pd', 'pagerduty', 10_000), 10, 'back to the PagerDuty default burst')
})
