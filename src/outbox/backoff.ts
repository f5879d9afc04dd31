// Capped exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff
// and Jitter"): the delay is uniform in [0, min(cap, base·2^(attempt−1))), which spreads a
// burst of retries instead of synchronising them. A server's Retry-After is a floor: we never
// come back sooner than it asked (notify/http.ts caps what it asks).

export interface BackoffConfig { baseMs: number, capMs: number }

export const DEFAULT_BACKOFF: BackoffConfig = { baseMs: 1_000, capMs: 5 * 60_000 }

// attempt: 1 for the delay after the first failed attempt. random: uniform in [0, 1).
export function backoffDelayMs (cfg: BackoffConfig, attempt: number, random: () => number, retryAfterMs?: number): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 52))
  const jittered = Math.floor(random() * Math.min(cfg.capMs, cfg.baseMs * 2 ** exponent))
  return Math.max(jittered, retryAfterMs ?? 0)
}
