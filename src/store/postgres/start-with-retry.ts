import { SchemaTooNewError } from './migrate.js'

// Starting while the database is away (a restart, a failover, a network partition, or just
// the database pod coming up after ours): the start is retried with capped exponential
// backoff instead of ending the process, so a deployment converges by itself. A schema
// newer than this build is not transient: it is thrown at once.

export interface StartRetryOptions {
  // Asked before every attempt and after every failure: true ends the loop (shutting down).
  stopped: () => boolean
  // One call per failed attempt, with the wait before the next one.
  onFailure: (error: Error, attempt: number, retryInMs: number) => void
  minDelayMs?: number
  maxDelayMs?: number
  sleep?: (ms: number) => Promise<void>
}

export const START_RETRY = { minDelayMs: 500, maxDelayMs: 30_000 }

// Resolves true once start() succeeded, false if stopped first.
export async function startWithRetry (start: () => Promise<void>, opts: StartRetryOptions): Promise<boolean> {
  const minMs = opts.minDelayMs ?? START_RETRY.minDelayMs
  const maxMs = opts.maxDelayMs ?? START_RETRY.maxDelayMs
  const sleep = opts.sleep ?? (async (ms: number) => await new Promise<void>((resolve) => setTimeout(resolve, ms)))
  for (let attempt = 1; ; attempt++) {
    if (opts.stopped()) return false
    try {
      await start()
      return true
    } catch (err) {
      if (err instanceof SchemaTooNewError) throw err
      if (opts.stopped()) return false
      const delay = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 16))
      opts.onFailure(err instanceof Error ? err : new Error(String(err)), attempt, delay)
      await sleep(delay)
    }
  }
}
