import type { WebhookPayload } from '../alertmanager/webhook.js'
import type { Catalog } from '../config/catalog.js'
import { decideIncident, withDeferral } from '../incidents/lifecycle.js'
import { countSkipped, type Metrics } from '../metrics.js'
import type { Store } from '../store/types.js'
import { classifyWebhook, queueWebhook, type ClassifiedWebhook } from './queued-webhook.js'

// Step 4 of the flow: a validated webhook into the outbox, in one durable transaction, and
// the dispatcher woken the moment it commits. Destinations without a secret are stored as
// `skipped` so they stay visible.

export interface IntakeResult extends ClassifiedWebhook { enqueued: number, duplicates: number, skipped: number }
export type Intake = (payload: WebhookPayload, receivedJson: string, receivedAt: number) => Promise<IntakeResult>

export interface IntakeDeps {
  store: Store
  metrics: Metrics
  // The catalog and which of its destinations have their secret, read once per webhook.
  runtime: () => { catalog: Catalog, isConfigured: (destination: string) => boolean }
  // Wakes the dispatcher: the deliveries are claimable now.
  wakeDispatcher: () => void
}

export function createIntake (deps: IntakeDeps): Intake {
  return async (payload, receivedJson, receivedAt) => {
    const { catalog, isConfigured } = deps.runtime()
    const classified = classifyWebhook(payload, catalog)
    const result = await deps.store.enqueue({
      groupKey: payload.groupKey,
      receivedAt,
      resolved: payload.status === 'resolved',
      plan: (notified) => withDeferral(queueWebhook(payload, receivedJson, classified, catalog, notified), catalog, receivedAt)
        .map((n) => isConfigured(n.destination) ? n : { ...n, skip: true }),
      incident: { receiver: payload.receiver, decide: (open) => decideIncident(open, payload, classified, catalog, receivedAt) },
      // A page is claimed and sent while its rows are synced; the 2xx still waits for the sync.
      onCommitted: deps.wakeDispatcher
    })
    const skipped = result.inserted.filter((d) => d.state === 'skipped')
    countSkipped(deps.metrics, skipped, 'not_configured')
    countSkipped(deps.metrics, result.superseded, 'superseded')
    countSkipped(deps.metrics, result.resolvedWhileDeferred, 'resolved_while_deferred')
    const enqueued = result.inserted.length - skipped.length
    return { priority: classified.priority, alerts: classified.alerts, enqueued, duplicates: result.duplicates.length, skipped: skipped.length }
  }
}
