import { countSkipped, type Metrics } from '../metrics.js'
import type { Intake } from '../routes/webhook.js'
import type { EnqueueItem, Store } from './store.js'

// Step 4: planned notifications into the outbox in one (group-committed) transaction.
// Destinations without a secret are stored as `skipped` so they stay visible. The dispatcher
// is woken by the store once they are claimable (SqliteStoreDeps.onClaimable), not from here.
export function createIntake (deps: { store: Store, metrics: Metrics, isConfigured: (destination: string) => boolean }): Intake {
  return async (groupKey, notifications, receivedAt) => {
    if (notifications.length === 0) return { enqueued: 0, duplicates: 0, skipped: 0 }
    const items = notifications.map((n): EnqueueItem => ({ ...n, groupKey, ...(deps.isConfigured(n.destination) ? {} : { skip: true }) }))
    const result = await deps.store.enqueue(items, { receivedAt })
    const pending = result.inserted.filter((d) => d.state === 'pending').length
    countSkipped(deps.metrics, result.inserted.filter((d) => d.state === 'skipped'), 'not_configured')
    return { enqueued: pending, duplicates: result.duplicates.length, skipped: result.inserted.length - pending }
  }
}
