import type { FastifyBaseLogger } from 'fastify'
import type { WebhookPayload } from '../alertmanager/webhook.js'
import type { Metrics } from '../metrics.js'
import type { ClassifiedWebhook } from '../outbox/queued-webhook.js'

// Counts the alerts of an accepted webhook, and makes an unmapped severity findable: a
// page-level severity the catalog does not know (sloth's `pageteam`, or none at all) gets the
// default priority, so it is counted and logged once per alert name. The names remembered
// are bounded; past the bound the counter still counts but new names are not logged.

export const MAX_WARNED_ALERTNAMES = 1000
// A label value can be as long as the request body; a log line and a remembered key need not.
const MAX_LOGGED_CHARS = 200

export type AlertReport = (payload: WebhookPayload, alerts: ClassifiedWebhook['alerts'], log: FastifyBaseLogger) => void

export function createAlertReport (metrics: Metrics, maxNames = MAX_WARNED_ALERTNAMES): AlertReport {
  const warned = new Set<string>()
  let full = false
  return (payload, alerts, log) => {
    for (const a of alerts) {
      if (a.ignored) {
        metrics.alertsIgnored.inc({ status: a.status })
        continue
      }
      metrics.alertsEnriched.inc({ priority: a.priority, status: a.status, matched: String(a.matched) })
      if (a.unmappedSeverity === undefined) continue
      metrics.alertsUnknownSeverity.inc({ reason: a.unmappedSeverity })
      const labels = payload.alerts[a.index]?.labels ?? {}
      const alertname = (labels.alertname ?? '').slice(0, MAX_LOGGED_CHARS)
      if (warned.has(alertname)) continue
      if (warned.size >= maxNames) {
        if (!full) log.warn({ maxNames }, 'unmapped severities: too many alert names to remember; new ones are counted (alert_enricher_alerts_unknown_severity_total) but no longer logged')
        full = true
        continue
      }
      warned.add(alertname)
      log.warn({ alertname, severity: labels.severity?.slice(0, MAX_LOGGED_CHARS) ?? null, reason: a.unmappedSeverity, priority: a.priority },
        'alert severity is not in the catalog\'s severityPriority: given the default priority (logged once per alert name)')
    }
  }
}
