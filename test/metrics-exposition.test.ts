import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { createMetrics } from '../src/metrics.js'
import {
  PAGERDUTY_ROUTING_KEY, REPO_ROOT, destinationEnv, parseExposition, sampleSum, scrape,
  sendKnownTraffic, startFakeDestinations, startServiceProcess, type Sample
} from './helpers/alert-enricher-process.js'
import { PROMTOOL_BIN, waitUntil } from './helpers/prometheus.js'

// A real scrape of the real service after known traffic: it passes `promtool check metrics`
// and every count is exactly what the traffic implies.

// prom-client's default Node.js metrics name three gauges `*_total` (upstream's standard names,
// which dashboards query as is; not ours). promtool lints them; any other lint line fails the test.
const ALLOWED_LINT = new Set([
  'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_resources_total non-counter metrics should not have "_total" suffix'
])

function promtoolCheckMetrics (text: string): { status: number | null, problems: string[] } {
  const r = spawnSync(PROMTOOL_BIN, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 })
  const problems = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).filter((l) => l !== '')
  return { status: r.status, problems }
}

// Labels a metric of ours may carry: closed sets only (never alertname, fingerprint, instance).
const BOUNDED_LABELS = new Set(['outcome', 'operation', 'priority', 'state', 'status', 'matched', 'destination', 'type', 'reason', 'route', 'method', 'status_code', 'le'])

t.test('promtool check metrics can fail (the check is real)', async (t) => {
  const r = promtoolCheckMetrics('# HELP things Things.\n# TYPE things counter\nthings 1\n')
  t.not(r.status, 0)
  t.match(r.problems.join('\n'), /counter metrics should have "_total" suffix/)
})

t.test('only our own metrics carry alert_enricher_; prom-client defaults keep their standard names', async (t) => {
  const ours = (await createMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name)
  const all = (await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name)
  const defaults = all.filter((n) => !ours.includes(n))
  t.same(ours.filter((n) => !n.startsWith('alert_enricher_')), [], 'every metric of ours is prefixed')
  t.same(defaults.filter((n) => !/^(process|nodejs)_/.test(n)), [], `defaults are process_/nodejs_: ${defaults.join(', ')}`)
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
    t.ok(all.includes(name), `${name} is exposed`)
  }
})

t.test('a scrape after known traffic passes promtool and counts the traffic exactly', async (t) => {
  const fakes = await startFakeDestinations({ slackAlertsFailures: 1000 })
  t.teardown(fakes.close)
  const service = await startServiceProcess(destinationEnv(fakes))
  t.teardown(service.stop)

  const traffic = await sendKnownTraffic(service.url)
  t.same(traffic.map((r) => [r.fixture, r.status >= 200 && r.status < 300 ? '2xx' : r.status]), [
    ['firing-single-warning.json', '2xx'],
    ['firing-two-critical.json', '2xx'],
    ['bad-json', 400],
    ['wrong-shape', 400]
  ])

  // Dispatch is asynchronous: wait (bounded) for the three deliveries to settle.
  let samples: Sample[] = []
  const settled = (): boolean =>
    sampleSum(samples, 'alert_enricher_outbox_dead_letters') === 1 &&
    sampleSum(samples, 'alert_enricher_notifications_total', { destination: 'pagerduty', outcome: 'sent' }) === 1 &&
    sampleSum(samples, 'alert_enricher_notifications_total', { destination: 'slack-incident-response', outcome: 'sent' }) === 2 &&
    sampleSum(samples, 'alert_enricher_outbox_pending') === 0
  await waitUntil('deliveries settled', 30_000, async () => {
    samples = parseExposition(await scrape(service.url))
    return settled()
  }).catch(() => { /* the exact assertions below say what differs */ })
  const text = await scrape(service.url)
  samples = parseExposition(text)
  const value = (name: string, labels: Record<string, string> = {}): number | undefined => sampleSum(samples, name, labels)

  const check = promtoolCheckMetrics(text)
  const unexpected = check.problems.filter((p) => !ALLOWED_LINT.has(p))
  t.same(unexpected, [], 'promtool check metrics reports no problem beyond the allowed prom-client lint')
  t.same(check.problems.filter((p) => p.includes('alert_enricher_')), [], 'promtool reports nothing for our own metrics')
  t.ok(check.status === 0 || (check.status === 3 && unexpected.length === 0), `promtool exit ${String(check.status)}`)

  // Webhooks: 2 accepted, 2 bad requests, every other outcome pre-initialised at 0.
  t.equal(value('alert_enricher_webhooks_received_total', { outcome: 'accepted' }), 2)
  t.equal(value('alert_enricher_webhooks_received_total', { outcome: 'bad_request' }), 2)
  for (const outcome of ['duplicate', 'unauthorized', 'too_large', 'unsupported_media_type', 'unavailable']) {
    t.equal(value('alert_enricher_webhooks_received_total', { outcome }), 0, `webhooks ${outcome} = 0`)
  }

  // Alerts: two critical HighErrorRate (P0, matched) and one warning DatabaseConnectionsHigh
  // (P2 by severity: the captured payload predates the rule's part_of label, so no entry).
  t.equal(value('alert_enricher_alerts_enriched_total', { priority: 'P0', status: 'firing', matched: 'true' }), 2)
  t.equal(value('alert_enricher_alerts_enriched_total', { priority: 'P2', status: 'firing', matched: 'false' }), 1)
  t.equal(value('alert_enricher_alerts_enriched_total'), 3, 'no other alert counted')
  t.equal(value('alert_enricher_alerts_enriched_total', { priority: 'P3', status: 'resolved', matched: 'false' }), 0, 'label sets pre-initialised')

  // Deliveries: P0 group → pagerduty + #incident-response (sent), P2 group → #alerts (400 → dead).
  // The captured P0 alerts started days ago: their 5 min deadline has passed, so the incident
  // escalates at once to #incident-response (sent) and pagerduty-escalation (no key: skipped).
  t.equal(value('alert_enricher_notifications_total', { destination: 'pagerduty', outcome: 'sent', reason: '' }), 1)
  t.equal(value('alert_enricher_notifications_total', { destination: 'slack-incident-response', outcome: 'sent', reason: '' }), 2)
  t.equal(value('alert_enricher_notifications_total', { destination: 'pagerduty-escalation', outcome: 'skipped', reason: 'not_configured' }), 1)
  t.equal(value('alert_enricher_sla_breaches_total', { priority: 'P0' }), 1)
  t.equal(value('alert_enricher_escalations_total', { priority: 'P0' }), 1)
  t.equal(value('alert_enricher_sla_breaches_total', { priority: 'P2' }), 1, 'the P2 one breached its 2 business hours too')
  t.equal(value('alert_enricher_escalations_total'), 1, 'P2 has nowhere to escalate to')
  t.equal(value('alert_enricher_notifications_total', { destination: 'slack-alerts', outcome: 'dead', reason: 'client_error' }), 1)
  t.equal(value('alert_enricher_notifications_total', { destination: 'slack-alerts', outcome: 'sent' }), 0)
  t.equal(value('alert_enricher_notifications_total', { destination: 'slack-deployments', outcome: 'sent' }), 0, 'unused destination pre-initialised')
  t.equal(value('alert_enricher_notifications_total'), 5, 'four attempts and one skip')
  t.same(Object.fromEntries(fakes.received), { '/pagerduty': 1, '/slack/incident-response': 2, '/slack/alerts': 1 }, 'receivers saw the same')
  t.equal(value('alert_enricher_notification_attempt_duration_seconds_count', { destination: 'slack-alerts' }), 1)
  t.equal(value('alert_enricher_notification_attempt_duration_seconds_count'), 4)
  t.equal(value('alert_enricher_delivery_latency_seconds_count', { priority: 'P0' }), 3, 'three P0 notifications sent')
  t.equal(value('alert_enricher_delivery_latency_seconds_count', { priority: 'P2' }), 0, 'the P2 one was never sent')
  t.equal(value('alert_enricher_outbox_dead_letters'), 1)
  t.equal(value('alert_enricher_outbox_pending'), 0)
  t.equal(value('alert_enricher_notification_retries_total'), 0)

  // Catalog: loaded once, successfully, with every entry of the bundled catalog.
  const catalog = parse(readFileSync(join(REPO_ROOT, 'rules/catalog.yaml'), 'utf8')) as { entries: unknown[] }
  t.equal(value('alert_enricher_catalog_entries'), catalog.entries.length)
  t.equal(value('alert_enricher_catalog_last_reload_successful'), 1)
  t.equal(value('alert_enricher_catalog_reloads_total', { outcome: 'failure' }), 0)
  const loadedAt = value('alert_enricher_catalog_last_reload_success_timestamp_seconds') ?? 0
  t.ok(loadedAt > Date.now() / 1000 - 600 && loadedAt <= Date.now() / 1000 + 1, `last successful load is recent (${loadedAt})`)

  // HTTP: the four POST /webhook requests under their route template.
  t.equal(value('alert_enricher_http_request_duration_seconds_count', { route: '/webhook', method: 'POST' }), 4)
  t.ok((value('process_resident_memory_bytes') ?? 0) > 0, 'default process metrics exposed under their standard names')
  t.ok((value('nodejs_heap_size_used_bytes') ?? 0) > 0, 'default Node.js metrics exposed under their standard names')

  // Bounded labels only, and nothing per-alert or secret anywhere in the exposition.
  const ours = new Set((await createMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name))
  const family = (name: string): string => ours.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '')
  const labelNames = new Set(samples.filter((s) => ours.has(family(s.name))).flatMap((s) => Object.keys(s.labels)))
  t.same([...labelNames].filter((l) => !BOUNDED_LABELS.has(l)), [], `label names ${[...labelNames].sort().join(', ')}`)
  for (const needle of ['HighErrorRate', 'DatabaseConnectionsHigh', '944809c9b3c7252f', '10.0.1.15', 'pynomaly-api', PAGERDUTY_ROUTING_KEY, fakes.slackAlertsUrl, '/slack/']) {
    t.notOk(text.includes(needle), `exposition does not contain ${needle}`)
  }
})
