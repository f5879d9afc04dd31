import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { PRIORITIES } from './config/catalog-schema.js'
import { INCIDENT_STATES } from './incidents/types.js'
import { UNMAPPED_SEVERITY_REASONS } from './enrich/enrich.js'
import { FAILURE_REASONS } from './notify/result.js'
import { STORE_OPERATIONS } from './store/types.js'

// Every metric the service exposes, on a registry the app owns (no prom-client global), so
// tests can build many apps side by side. Labels come from closed sets only: priority,
// destination name/type (from the catalog), outcome/reason enums, matched. Never per-alert values.

export const WEBHOOK_OUTCOMES = ['accepted', 'duplicate', 'bad_request', 'unauthorized', 'too_large', 'unsupported_media_type', 'unavailable'] as const
export type WebhookOutcome = typeof WEBHOOK_OUTCOMES[number]
// POST /integrations/pagerduty: the port's outcomes, then events answered 2xx but not acted on
// (ignored_type, unrecognized), then the rejections (401, 400, 413, 404 while unset, 503).
export const PAGERDUTY_WEBHOOK_OUTCOMES = [
  'applied', 'duplicate', 'unknown_incident', 'no_change', 'ignored_type', 'unrecognized',
  'bad_signature', 'invalid_json', 'too_large', 'not_configured', 'unavailable'
] as const
export type PagerDutyWebhookOutcome = typeof PAGERDUTY_WEBHOOK_OUTCOMES[number]
export const NOTIFICATION_OUTCOMES = ['sent', 'retry', 'dead', 'skipped'] as const
export type NotificationOutcome = typeof NOTIFICATION_OUTCOMES[number]
export const RELOAD_OUTCOMES = ['success', 'failure'] as const
// POST /integrations/slack/interactions: the acknowledgement port's outcomes, and why else a
// request did nothing (unsigned, off, malformed, not an Acknowledge click, the port failed).
export const SLACK_INTERACTION_OUTCOMES = [
  'applied', 'duplicate', 'unknown_incident', 'no_change', 'failed', 'timeout', 'ignored', 'unauthorized', 'bad_request', 'not_enabled'
] as const
export type SlackInteractionOutcome = typeof SLACK_INTERACTION_OUTCOMES[number]
const ALERT_STATUSES = ['firing', 'resolved'] as const

export type Metrics = ReturnType<typeof createMetrics>

// Around each bundled SLA (5 min, 30 min, 2 business hours, next business day) so the
// dashboard can read "within SLA" off a bucket boundary.
const ACK_BUCKETS = [30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 28_800, 86_400, 172_800, 259_200]

export interface DestinationLabel { destination: string, type: string }

export function createMetrics (opts: { prefix?: string, defaultMetrics?: boolean } = {}) {
  const registry = new Registry()
  const p = opts.prefix ?? 'alert_enricher_'
  // prom-client's process and Node.js metrics keep their standard names (process_cpu_seconds_total,
  // nodejs_heap_size_used_bytes, ...): the usual Node.js dashboards and recording rules query them
  // by those names, and the `job` label already says whose process it is.
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
  const registers = [registry]

  const m = {
    registry,
    webhooksReceived: new Counter({ name: `${p}webhooks_received_total`, help: 'Alertmanager webhooks received, by outcome.', labelNames: ['outcome'] as const, registers }),
    pagerDutyWebhooks: new Counter({ name: `${p}pagerduty_webhooks_total`, help: 'PagerDuty webhooks v3 received on /integrations/pagerduty, by outcome.', labelNames: ['outcome'] as const, registers }),
    alertsEnriched: new Counter({ name: `${p}alerts_enriched_total`, help: 'Alerts enriched from accepted webhooks, by priority, status and whether a catalog entry matched.', labelNames: ['priority', 'status', 'matched'] as const, registers }),
    alertsIgnored: new Counter({ name: `${p}alerts_ignored_total`, help: 'Alerts in accepted webhooks whose severity the catalog maps to ignore (severityPriority): sent nowhere. By status.', labelNames: ['status'] as const, registers }),
    alertsUnknownSeverity: new Counter({ name: `${p}alerts_unknown_severity_total`, help: 'Alerts in accepted webhooks given the default priority because their severity label is missing or not in severityPriority (and no entry set a priority).', labelNames: ['reason'] as const, registers }),
    notifications: new Counter({ name: `${p}notifications_total`, help: 'Notification attempts by destination and outcome; reason is a closed enum ("" when sent).', labelNames: ['destination', 'type', 'outcome', 'reason'] as const, registers }),
    notificationAttemptSeconds: new Histogram({ name: `${p}notification_attempt_duration_seconds`, help: 'Duration of one send attempt to a destination.', labelNames: ['destination', 'type'] as const, buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers }),
    deliveryLatencySeconds: new Histogram({ name: `${p}delivery_latency_seconds`, help: 'Time from webhook received to notification sent, by priority.', labelNames: ['priority'] as const, buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600], registers }),
    outboxPending: new Gauge({ name: `${p}outbox_pending`, help: 'Deliveries waiting to be sent, by priority.', labelNames: ['priority'] as const, registers }),
    outboxOldestPendingAgeSeconds: new Gauge({ name: `${p}outbox_oldest_pending_age_seconds`, help: 'Age of the oldest pending delivery, by priority (0 when none).', labelNames: ['priority'] as const, registers }),
    deadLetters: new Gauge({ name: `${p}outbox_dead_letters`, help: 'Deliveries in the dead letter state.', registers }),
    retries: new Counter({ name: `${p}notification_retries_total`, help: 'Deliveries rescheduled for another attempt, by destination.', labelNames: ['destination', 'type'] as const, registers }),
    rateLimitWaits: new Counter({ name: `${p}rate_limit_waits_total`, help: 'Times a due delivery waited for its destination rate limit, by destination.', labelNames: ['destination', 'type'] as const, registers }),
    slackInteractions: new Counter({ name: `${p}slack_interactions_total`, help: 'Slack interaction requests (button clicks) by outcome.', labelNames: ['outcome'] as const, registers }),
    storeErrors: new Counter({ name: `${p}store_errors_total`, help: 'Store operations that failed, by operation (while failing, /-/ready answers 503 naming the cause).', labelNames: ['operation'] as const, registers }),
    catalogEntries: new Gauge({ name: `${p}catalog_entries`, help: 'Entries in the loaded catalog.', registers }),
    catalogReloads: new Counter({ name: `${p}catalog_reloads_total`, help: 'Catalog reload attempts by outcome.', labelNames: ['outcome'] as const, registers }),
    catalogLastReloadSuccessful: new Gauge({ name: `${p}catalog_last_reload_successful`, help: 'Whether the last catalog reload attempt succeeded (1) or failed (0).', registers }),
    catalogLastReloadSuccessTimestamp: new Gauge({ name: `${p}catalog_last_reload_success_timestamp_seconds`, help: 'Unix time of the last successful catalog load.', registers }),
    incidents: new Gauge({ name: `${p}incidents`, help: 'Incidents in the store, by priority and state (resolved ones until housekeeping removes them).', labelNames: ['priority', 'state'] as const, registers }),
    timeToAcknowledgeSeconds: new Histogram({ name: `${p}time_to_acknowledge_seconds`, help: 'Time from an incident triggering to its acknowledgement, by priority.', labelNames: ['priority'] as const, buckets: ACK_BUCKETS, registers }),
    slaBreaches: new Counter({ name: `${p}sla_breaches_total`, help: 'Incidents whose response deadline passed unacknowledged, by priority.', labelNames: ['priority'] as const, registers }),
    escalations: new Counter({ name: `${p}escalations_total`, help: 'Escalations fired (first and repeats), by priority.', labelNames: ['priority'] as const, registers }),
    deferredNotifications: new Gauge({ name: `${p}deferred_notifications`, help: 'Notifications held for business hours, by priority.', labelNames: ['priority'] as const, registers }),
    httpRequestSeconds: new Histogram({ name: `${p}http_request_duration_seconds`, help: 'HTTP request duration by route template, method and status code.', labelNames: ['route', 'method', 'status_code'] as const, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers })
  }

  for (const o of WEBHOOK_OUTCOMES) m.webhooksReceived.labels({ outcome: o }).inc(0)
  for (const o of PAGERDUTY_WEBHOOK_OUTCOMES) m.pagerDutyWebhooks.labels({ outcome: o }).inc(0)
  for (const status of ALERT_STATUSES) m.alertsIgnored.labels({ status }).inc(0)
  for (const reason of UNMAPPED_SEVERITY_REASONS) m.alertsUnknownSeverity.labels({ reason }).inc(0)
  for (const o of RELOAD_OUTCOMES) m.catalogReloads.labels({ outcome: o }).inc(0)
  for (const o of SLACK_INTERACTION_OUTCOMES) m.slackInteractions.labels({ outcome: o }).inc(0)
  for (const operation of STORE_OPERATIONS) m.storeErrors.labels({ operation }).inc(0)
  for (const priority of PRIORITIES) {
    m.outboxPending.labels({ priority }).set(0)
    m.outboxOldestPendingAgeSeconds.labels({ priority }).set(0)
    m.deliveryLatencySeconds.zero({ priority })
    m.timeToAcknowledgeSeconds.zero({ priority })
    m.slaBreaches.labels({ priority }).inc(0)
    m.escalations.labels({ priority }).inc(0)
    m.deferredNotifications.labels({ priority }).set(0)
    for (const state of INCIDENT_STATES) m.incidents.labels({ priority, state }).set(0)
    for (const status of ALERT_STATUSES) for (const matched of ['true', 'false']) m.alertsEnriched.labels({ priority, status, matched }).inc(0)
  }
  m.deadLetters.set(0)
  return m
}

// Deliveries stored as `skipped`: never sent, and visible on the same counter as the sent ones.
export function countSkipped (m: Metrics, deliveries: readonly DestinationLabel[], reason: 'not_configured' | 'superseded' | 'resolved_while_deferred'): void {
  for (const d of deliveries) m.notifications.inc({ destination: d.destination, type: d.type, outcome: 'skipped', reason })
}

// Called whenever the set of destinations is known (start, reload) so every panel shows 0
// rather than "no data".
export function initDestinationLabels (m: Metrics, destinations: DestinationLabel[]): void {
  for (const d of destinations) {
    m.notificationAttemptSeconds.zero({ destination: d.destination, type: d.type })
    m.retries.labels(d.destination, d.type).inc(0)
    m.rateLimitWaits.labels(d.destination, d.type).inc(0)
    m.notifications.labels(d.destination, d.type, 'sent', '').inc(0)
    for (const reason of FAILURE_REASONS) {
      // Only bot-token Slack destinations: a thread reply with no message to reply to, and an
      // update of an incident message that waits (debounce).
      if (reason === 'message_gone' || reason === 'debounced') {
        if (d.type === 'slack') m.notifications.labels(d.destination, d.type, reason === 'debounced' ? 'retry' : 'skipped', reason).inc(0)
        continue
      }
      if (reason === 'not_configured' || reason === 'superseded' || reason === 'resolved_while_deferred') {
        m.notifications.labels(d.destination, d.type, 'skipped', reason).inc(0)
        continue
      }
      m.notifications.labels(d.destination, d.type, reason === 'expired' || reason === 'client_error' || reason === 'rejected' ? 'dead' : 'retry', reason).inc(0)
    }
  }
}
