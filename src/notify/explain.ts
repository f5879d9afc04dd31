import type { WebhookPayload } from '../alertmanager/webhook.js'
import type { Catalog } from '../config/catalog.js'
import { planNotifications } from './plan.js'
import { enrichGroup } from '../enrich/enrich.js'
import type { PreviewResult } from '../enrich/types.js'
import { describeIncident } from '../incidents/render.js'
import type { Incident } from '../incidents/types.js'

/** What the service would send for a payload — the preview route and `alert-enricher explain`. */
// `known`: the group's incident, when the caller knows it (the preview route asks the store;
// offline `explain` has none): the messages then carry its state line.
export function explain (payload: WebhookPayload, catalog: Catalog, now: Date, known: Incident | null = null): PreviewResult {
  const group = enrichGroup(payload, catalog, now)
  const incident = describeIncident(known, group)
  const notifications = planNotifications(group, catalog.doc.destinations, { now, ...(incident !== undefined ? { incident } : {}) })
  return { alerts: group.alerts, notifications, ...(incident !== undefined ? { incident } : {}) }
}
