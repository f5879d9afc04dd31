// The idempotency window in memory: key → when it expires. Every key is also in its delivery
// row (idempotency_key, created_at), so the window survives restarts: the store reloads it
// from there at start. Writers are serialised by the group committer, so this map and the
// committed rows agree: keys are claimed inside the transaction and released if it rolls back.
// Size: the keys enqueued within one window (a Map in insertion order, pruned from the front).
export function createRecentKeys (windowMs: number): {
  claim: (key: string, now: number) => boolean
  release: (keys: readonly string[], now: number) => void
  prune: (now: number) => void
} {
  const expiries = new Map<string, number>()
  return {
    // True (and the key is now taken) unless it was taken within the window.
    claim (key, now) {
      const expires = expiries.get(key)
      if (expires !== undefined && expires > now) return false
      expiries.delete(key) // re-append, keeping the map ordered by expiry
      expiries.set(key, now + windowMs)
      return true
    },
    release (keys, now) {
      for (const key of keys) if (expiries.get(key) === now + windowMs) expiries.delete(key)
    },
    // Insertion order is expiry order (unless the clock stepped back: then pruning just waits).
    prune (now) {
      for (const [key, expires] of expiries) {
        if (expires > now) break
        expiries.delete(key)
      }
    }
  }
}
