import t from 'tap'
import { Writable } from 'node:stream'
import pino from 'pino'
import { createMetrics } from '../src/metrics.js'
import { createAlertReport } from '../src/routes/alert-report.js'
import type { ClassifiedWebhook } from '../src/outbox/queued-webhook.js'
import { buildTestApp, fixture } from './helpers/app.js'

// Severities the catalog does not page on: `none` is accepted, counted and sent nowhere; an
// unknown or missing one becomes the default priority, counted and logged once per alert name.

const json = { 'content-type': 'application/json' }
const base = fixture('firing-two-critical.json') as { alerts: Array<Record<string, unknown>> }

function webhookOf (groupKey: string, alerts: Array<{ fingerprint: string, labels: Record<string, string>, status?: string }>): Record<string, unknown> {
  return {
    ...base,
    groupKey,
    groupLabels: {},
    commonLabels: {},
    alerts: alerts.map((a) => ({ ...base.alerts[0], status: a.status ?? 'firing', fingerprint: a.fingerprint, labels: a.labels, annotations: {} }))
  }
}

function captureLogs (): { logger: pino.Logger, lines: () => Array<Record<string, unknown>> } {
  const out: string[] = []
  const stream = new Writable({ write (chunk, _enc, done) { out.push(String(chunk)); done() } })
  return { logger: pino({ level: 'info' }, stream), lines: () => out.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) }
}

async function value (metrics: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name)
  return metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value
}

t.test("a webhook of Watchdog alerts (severity none) is answered 200, counted, and queues nothing", async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  t.equal(await value(h.metrics, 'alert_enricher_alerts_ignored_total', { status: 'firing' }), 0, 'initialised to 0')
  const body = webhookOf('{}:{alertname="Watchdog"}', [
    { fingerprint: '0000000000000001', labels: { alertname: 'Watchdog', severity: 'none', prometheus: 'monitoring/k8s' } },
    { fingerprint: '0000000000000002', labels: { alertname: 'InfoInhibitor', severity: 'none', namespace: 'monitoring' } }
  ])
  for (let i = 0; i < 2; i++) {
    const res = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: body })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { status: 'accepted', priority: 'P3', alerts: 2, enqueued: 0, duplicates: 0, skipped: 0, ignored: 2 }, 'accepted, not a duplicate, on a repeat too')
  }
  t.same(await h.store.list({ limit: 10 }), [], 'no delivery stored')
  t.equal(await value(h.metrics, 'alert_enricher_alerts_ignored_total', { status: 'firing' }), 4)
  t.equal(await value(h.metrics, 'alert_enricher_webhooks_received_total', { outcome: 'accepted' }), 2)
  t.equal(await value(h.metrics, 'alert_enricher_webhooks_received_total', { outcome: 'duplicate' }), 0)
  t.equal(await value(h.metrics, 'alert_enricher_alerts_enriched_total', { priority: 'P3', status: 'firing', matched: 'false' }), 0, 'not counted as a P3 alert')

  const preview = await h.app.inject({ method: 'POST', url: '/api/v1/preview', headers: json, payload: body })
  t.equal(preview.statusCode, 200)
  t.match(preview.json(), { alerts: [{ ignored: true, destinations: [], priority: 'P3' }, { ignored: true }], notifications: [] })
})

t.test('an ignored alert in a group with a real one: only the real one is sent', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  const res = await h.app.inject({
    method: 'POST', url: '/webhook', headers: json, payload: webhookOf('{}:{mixed="1"}', [
      { fingerprint: '0000000000000001', labels: { alertname: 'Watchdog', severity: 'none' } },
      { fingerprint: '0000000000000002', labels: { alertname: 'DiskAlmostFull', severity: 'critical' } }
    ])
  })
  t.match(res.json(), { priority: 'P0', enqueued: 2, ignored: 1 })
  const pending = await h.store.list({ limit: 10 })
  t.same(pending.map((d) => d.destination).sort(), ['pagerduty', 'slack-incident-response'])
  for (const d of pending) t.same((d.body as { alerts: number[] | null }).alerts, [1], `${d.destination} carries only the real alert`)
})

t.test("sloth's severity pageteam becomes P2, is counted, and is logged once per alert name", async (t) => {
  const logs = captureLogs()
  const h = await buildTestApp({ logger: logs.logger })
  t.teardown(h.close)
  const sloth = { alertname: 'CheckoutAvailabilityHighErrorRate', severity: 'pageteam', sloth_service: 'checkout', sloth_slo: 'availability', sloth_severity: 'page' }
  for (let i = 0; i < 3; i++) {
    const res = await h.app.inject({
      method: 'POST', url: '/webhook', headers: json, payload: webhookOf(`{}:{run="${i}"}`, [
        { fingerprint: `000000000000000${i}`, labels: sloth },
        { fingerprint: `000000000000001${i}`, labels: { alertname: 'NoSeverityAtAll' } },
        { fingerprint: `000000000000002${i}`, labels: { alertname: 'Known', severity: 'warning' } }
      ])
    })
    t.match(res.json(), { status: 'accepted', priority: 'P2', ignored: 0 })
  }
  t.equal(await value(h.metrics, 'alert_enricher_alerts_unknown_severity_total', { reason: 'unknown' }), 3)
  t.equal(await value(h.metrics, 'alert_enricher_alerts_unknown_severity_total', { reason: 'missing' }), 3)
  const warnings = logs.lines().filter((l) => l.level === 40)
  t.match(warnings, [
    { alertname: 'CheckoutAvailabilityHighErrorRate', severity: 'pageteam', reason: 'unknown', priority: 'P2', msg: /severityPriority/ },
    { alertname: 'NoSeverityAtAll', severity: null, reason: 'missing', priority: 'P2' }
  ])
  t.equal(warnings.length, 2, 'one line per alert name, not per webhook')
})

t.test('the remembered alert names are bounded; past the bound they are counted, not logged', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false })
  const logs = captureLogs()
  const report = createAlertReport(metrics, 2)
  const payload = webhookOf('{}:{}', ['A', 'B', 'C', 'D', 'A'].map((name, i) => ({ fingerprint: `000000000000000${i}`, labels: { alertname: name, severity: 'pageteam' } }))) as never
  const alerts: ClassifiedWebhook['alerts'] = [0, 1, 2, 3, 4].map((index) => ({ index, fingerprint: '', status: 'firing', startsAt: '', priority: 'P2', destinations: [], matched: false, ignored: false, unmappedSeverity: 'unknown' }))
  report(payload, alerts, logs.logger)
  const lines = logs.lines()
  t.same(lines.map((l) => l.alertname ?? l.maxNames), ['A', 'B', 2], 'A and B logged, then one line saying new names are no longer logged')
  t.equal(await value(metrics, 'alert_enricher_alerts_unknown_severity_total', { reason: 'unknown' }), 5)
})

t.test('a huge group key is logged by its start, not whole', async (t) => {
  const logs = captureLogs()
  const h = await buildTestApp({ logger: logs.logger })
  t.teardown(h.close)
  const groupKey = `{}:{alertname="Big", shard="${'x'.repeat(20_000)}"}`
  const res = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: webhookOf(groupKey, [{ fingerprint: '0000000000000009', labels: { alertname: 'Big', severity: 'critical' } }]) })
  t.equal(res.statusCode, 200)
  t.equal(res.json().groupKey, groupKey, 'the answer echoes the whole key')
  const accepted = logs.lines().find((l) => l.msg === 'webhook accepted')
  const logged = String(accepted?.groupKey)
  t.ok(logged.length <= 500 && logged.startsWith('{}:{alertname="Big"') && logged.endsWith('…'), `logged ${logged.length} characters`)
})
