import type { DestinationType } from '../enrich/types.js'

// Token buckets, one per destination. Pure: the clock is passed into every call.
// Defaults follow the services' documented limits: Slack incoming webhooks ≈ 1 message/s
// per webhook (short bursts tolerated), PagerDuty Events API v2 120 events/min per routing key.

export interface RateLimit {
  perSecond: number
  burst: number
}

export const DEFAULT_RATE_LIMITS: Record<DestinationType, RateLimit> = {
  slack: { perSecond: 1, burst: 3 },
  pagerduty: { perSecond: 2, burst: 10 }
}

export interface RateLimiterConfig {
  byType?: Partial<Record<DestinationType, RateLimit>>
  // Per destination name; null means unlimited.
  byDestination?: Record<string, RateLimit | null>
}

interface Bucket { limit: RateLimit | null, tokens: number, at: number, heldUntil: number }

export interface RateLimiter {
  // Whole tokens available now (0 while held by a Retry-After). Infinity when unlimited.
  available: (destination: string, type: DestinationType, now: number) => number
  take: (destination: string, type: DestinationType, now: number) => void
  // After a 429: nothing goes to that destination before `until`.
  holdUntil: (destination: string, type: DestinationType, now: number, until: number) => void
  // Milliseconds until the next token (0 if one is available now).
  msUntilAvailable: (destination: string, type: DestinationType, now: number) => number
}

export function createRateLimiter (cfg: RateLimiterConfig = {}): RateLimiter {
  const buckets = new Map<string, Bucket>()

  function bucket (destination: string, type: DestinationType, now: number): Bucket {
    // Read on every call: byDestination may be swapped by a catalog reload.
    const limit = cfg.byDestination !== undefined && Object.hasOwn(cfg.byDestination, destination)
      ? cfg.byDestination[destination] ?? null
      : cfg.byType?.[type] ?? DEFAULT_RATE_LIMITS[type]
    let b = buckets.get(destination)
    if (b === undefined) {
      b = { limit, tokens: limit?.burst ?? 0, at: now, heldUntil: 0 }
      buckets.set(destination, b)
    } else if (b.limit?.perSecond !== limit?.perSecond || b.limit?.burst !== limit?.burst) {
      b.limit = limit
      b.tokens = Math.min(b.tokens, limit?.burst ?? 0)
    }
    if (b.limit !== null && now > b.at) {
      b.tokens = Math.min(b.limit.burst, b.tokens + ((now - b.at) / 1000) * b.limit.perSecond)
      b.at = now
    }
    return b
  }

  return {
    available (destination, type, now) {
      const b = bucket(destination, type, now)
      if (now < b.heldUntil) return 0
      return b.limit === null ? Infinity : Math.floor(b.tokens)
    },
    take (destination, type, now) {
      const b = bucket(destination, type, now)
      if (b.limit !== null) b.tokens = Math.max(0, b.tokens - 1)
    },
    holdUntil (destination, type, now, until) {
      const b = bucket(destination, type, now)
      b.heldUntil = Math.max(b.heldUntil, until)
    },
    msUntilAvailable (destination, type, now) {
      const b = bucket(destination, type, now)
      const held = Math.max(0, b.heldUntil - now)
      if (b.limit === null || b.tokens >= 1) return held
      return Math.max(held, Math.ceil(((1 - b.tokens) / b.limit.perSecond) * 1000))
    }
  }
}
