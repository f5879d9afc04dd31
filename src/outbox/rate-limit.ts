import type { DestinationType } from '../enrich/types.js'

// Token buckets, one per destination; the clock is passed into every call. The limit is read
// on every call (limitFor), so a catalog reload that changes one takes effect at once.
// Defaults follow the services' documented limits: Slack incoming webhooks about 1 message/s
// per webhook (short bursts tolerated); PagerDuty Events API v2 about 120 events/min per
// routing key, so a burst of 60 lets a storm's first pages out at once, within its minute.

export interface RateLimit { perSecond: number, burst: number }

export const DEFAULT_RATE_LIMITS: Record<DestinationType, RateLimit> = {
  slack: { perSecond: 1, burst: 3 },
  pagerduty: { perSecond: 2, burst: 60 }
}

// null: unlimited.
export type LimitFor = (destination: string, type: DestinationType) => RateLimit | null

export interface RateLimiter {
  // Takes a token for one send to `destination` if there is one (and no Retry-After holds it).
  admit: (destination: string, type: DestinationType, now: number) => boolean
  // After a 429: nothing goes to that destination before `until`.
  holdUntil: (destination: string, type: DestinationType, now: number, until: number) => void
  // Destinations that could not send now, and how long until the first of them can.
  exhausted: (now: number) => { destinations: string[], msUntilNext: number }
}

interface Bucket { type: DestinationType, tokens: number, at: number, heldUntil: number }

export function createRateLimiter (limitFor: LimitFor): RateLimiter {
  const buckets = new Map<string, Bucket>()

  // Refilled to `now`; null when the destination is unlimited.
  function refill (destination: string, type: DestinationType, now: number): { b: Bucket, limit: RateLimit | null } {
    const limit = limitFor(destination, type)
    let b = buckets.get(destination)
    if (b === undefined) {
      b = { type, tokens: limit?.burst ?? 0, at: now, heldUntil: 0 }
      buckets.set(destination, b)
    }
    // Capped at the burst on every call: a reload may have lowered it.
    if (limit !== null) b.tokens = Math.min(limit.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * limit.perSecond)
    b.at = Math.max(b.at, now)
    return { b, limit }
  }

  function msUntilAvailable (destination: string, b: Bucket, now: number): number {
    const { limit } = refill(destination, b.type, now)
    const held = Math.max(0, b.heldUntil - now)
    if (limit === null || b.tokens >= 1) return held
    return Math.max(held, Math.ceil(((1 - b.tokens) / limit.perSecond) * 1000))
  }

  return {
    admit (destination, type, now) {
      const { b, limit } = refill(destination, type, now)
      if (now < b.heldUntil) return false
      if (limit === null) return true
      if (b.tokens < 1) return false
      b.tokens -= 1
      return true
    },
    holdUntil (destination, type, now, until) {
      const { b } = refill(destination, type, now)
      b.heldUntil = Math.max(b.heldUntil, until)
    },
    exhausted (now) {
      const destinations: string[] = []
      let msUntilNext = Infinity
      for (const [destination, b] of buckets) {
        const ms = msUntilAvailable(destination, b, now)
        if (ms === 0) continue
        destinations.push(destination)
        msUntilNext = Math.min(msUntilNext, ms)
      }
      return { destinations, msUntilNext }
    }
  }
}
