import type { Metrics } from '../metrics.js'
import type { Intake } from '../routes/webhook.js'
import type { EnqueueItem, Store } from './store.js'

// Step 4: planned notifications into the outbox in one (group-committed) transaction.
// Destinations without a secret are stored as `skipped` so they stay visible.
export function createIntake (deps: { store: Store, metrics: Metrics, isConfigured: (destination: string) => boolean, onEnqueued: () => void }): Intake {
  return async (groupKey, notifications, receivedAt) => {
    if (notifications.length === 0) return { enqueued: 0, duplicates: 0, skipped: 0 }
    const items = notifications.map((n): EnqueueItem => ({ ...n, groupKey, ...(deps.isConfigured(n.destination) ? {} : { skip: true }) }))
    const result = await deps.store.enqueue(items, { receivedAt })
    const pending = result.inserted.filter((d) => d.state === 'pending').length
    for (const d of result.inserted) {
      if (d.state === 'skipped') deps.metrics.notifications.inc({ destination: d.destination, type: d.type, outcome: 'skipped', reason: 'not_configured' })
    }
    for (const d of result.superseded) deps.metrics.notifications.inc({ destination: d.destination, type: d.type, outcome: 'skipped', reason: 'superseded' })
    if (pending > 0) deps.onEnqueued()
    return { enqueued: pending, duplicates: result.duplicates.length, skipped: result.inserted.length - pending }
  }
}
