import type { WebhookPayload } from '../alertmanager/webhook.js'
import type { Catalog } from '../config/catalog.js'
import { planNotifications } from './plan.js'
import { enrichGroup } from '../enrich/enrich.js'
import type { PreviewResult } from '../enrich/types.js'

/** What the service would send for a payload — the preview route and `alert-enricher explain`. */
export function explain (payload: WebhookPayload, catalog: Catalog, now: Date): PreviewResult {
  const group = enrichGroup(payload, catalog, now)
  return { alerts: group.alerts, notifications: planNotifications(group, catalog.doc.destinations, { now }) }
}
