import type { Catalog } from '../config/catalog.js'
import type { Metrics } from '../metrics.js'
import type { Store } from '../store/types.js'
import { restartClock } from './lifecycle.js'
import type { ApplyAcknowledgement } from './types.js'

// The acknowledgement port every source calls (PagerDuty webhooks, the API, Slack): one store
// transaction applies it, remembers a PagerDuty event.id, queues the Events v2 `acknowledge`
// to PagerDuty when the acknowledgement came from elsewhere, and, for every bot-token Slack
// channel told of the group, an update of the incident's message and a reply in its thread.

export interface AcknowledgerDeps {
  store: Store
  metrics: Metrics
  catalog: () => Catalog
  isConfigured: (destination: string) => boolean
  isSlackApp?: (destination: string) => boolean
  // The acknowledge to PagerDuty and the Slack updates are claimable now.
  wakeDispatcher?: () => void
}

// PagerDuty retries a webhook delivery for a while; a day covers its redeliveries.
export const PAGERDUTY_EVENT_WINDOW_MS = 24 * 60 * 60_000

export function createAcknowledger (deps: AcknowledgerDeps): ApplyAcknowledgement {
  return async (req) => {
    const result = await deps.store.applyAcknowledgement(req, {
      restartClock: restartClock(deps.catalog()),
      isConfigured: deps.isConfigured,
      eventKeyWindowMs: PAGERDUTY_EVENT_WINDOW_MS,
      ...(deps.isSlackApp !== undefined ? { isSlackApp: deps.isSlackApp } : {})
    })
    const incident = result.incident
    if (result.outcome === 'applied' && req.action === 'acknowledge' && incident !== undefined) {
      const seconds = Math.max(0, req.at - Date.parse(incident.triggeredAt)) / 1000
      deps.metrics.timeToAcknowledgeSeconds.observe({ priority: incident.priority }, seconds)
    }
    if (result.outcome === 'applied') deps.wakeDispatcher?.()
    return result
  }
}
