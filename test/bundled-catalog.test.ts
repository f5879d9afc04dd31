import t from 'tap'
import { loadCatalog, type Catalog } from '../src/config/catalog.js'
import { classifyAlert, enrichGroup } from '../src/enrich/enrich.js'
import type { WebhookPayload } from '../src/alertmanager/webhook.js'
import { BUNDLED_CATALOG } from './helpers/app.js'

// The bundled catalog against label sets as other people's rules really send them: the same
// alert names, from kube-prometheus, awesome-prometheus-alerts and sloth, must not be
// mistaken for Pynomaly's.

const loaded = await loadCatalog(BUNDLED_CATALOG)
if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems))
const catalog: Catalog = loaded.catalog
const now = new Date('2026-11-26T20:10:00Z')

function enrichOne (labels: Record<string, string>, annotations: Record<string, string> = {}) {
  const payload: WebhookPayload = {
    version: '4', groupKey: '{}:{}', truncatedAlerts: 0, status: 'firing', receiver: 'alert-enricher',
    groupLabels: {}, commonLabels: labels, commonAnnotations: annotations, externalURL: 'http://alertmanager.example:9093',
    alerts: [{ status: 'firing', labels, annotations, startsAt: '2026-11-26T20:00:00Z', endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint: '0000000000000001' }]
  }
  const alert = enrichGroup(payload, catalog, now).alerts[0]
  if (alert === undefined) throw new Error('no alert')
  return alert
}

// kube-prometheus (kubernetes-mixin) KubeNodeNotReady and KubeNodePressure, as scraped via
// the kube-state-metrics ServiceMonitor.
const kubePrometheus = { container: 'kube-state-metrics', endpoint: 'https-main', instance: '10.0.2.9:8443', job: 'kube-state-metrics', namespace: 'monitoring', service: 'kube-state-metrics', prometheus: 'monitoring/k8s' }

t.test("kube-prometheus's node alerts fall through to the defaults and keep their own runbook", async (t) => {
  const notReady = enrichOne(
    { ...kubePrometheus, alertname: 'KubeNodeNotReady', severity: 'warning', node: 'ip-10-0-3-17', condition: 'Ready', status: 'true' },
    { runbook_url: 'https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubenodenotready' })
  t.match(notReady, { matched: false, entry: null, priority: 'P2', team: 'platform', destinations: ['slack-alerts'], runbookUrl: 'https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubenodenotready' })
  const pressure = enrichOne(
    { ...kubePrometheus, alertname: 'KubeNodePressure', severity: 'info', node: 'ip-10-0-3-17', condition: 'MemoryPressure', status: 'true' },
    { runbook_url: 'https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubenodepressure' })
  t.match(pressure, { matched: false, priority: 'P3', runbookUrl: 'https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubenodepressure' })
})

t.test("awesome-prometheus-alerts' RedisDown, even in a namespace called production, is not the data team's", async (t) => {
  const redis = enrichOne({ alertname: 'RedisDown', severity: 'critical', instance: 'redis:9121', job: 'redis', namespace: 'production' }, { runbook_url: 'https://wiki.example/redis' })
  t.match(redis, { matched: false, team: 'platform', runbookUrl: 'https://wiki.example/redis' })
  const crash = enrichOne({ alertname: 'PodCrashLooping', severity: 'warning', namespace: 'production', pod: 'checkout-1', job: 'kube-state-metrics' })
  t.match(crash, { matched: false, priority: 'P2' })
})

t.test("Pynomaly's own alerts, with the labels their rules set, still match their entries", async (t) => {
  t.match(enrichOne({ alertname: 'KubeNodeNotReady', severity: 'high', part_of: 'pynomaly', job: 'kube-state-metrics', node: 'ip-10-0-3-17' }),
    { matched: true, entry: 'kube-node-not-ready', priority: 'P1', runbookUrl: /alert_rules\.md#kubenodenotready$/ })
  t.match(enrichOne({ alertname: 'RedisDown', severity: 'critical', part_of: 'pynomaly', job: 'redis', namespace: 'production' }),
    { matched: true, entry: 'redis-down', team: 'data', priority: 'P0' })
  t.match(enrichOne({ alertname: 'HighErrorRate', severity: 'critical', service: 'pynomaly-api', namespace: 'production' }),
    { matched: true, entry: 'high-error-rate' })
  t.match(enrichOne({ alertname: 'AuthenticationFailureSpike', severity: 'high', service: 'pynomaly-api', namespace: 'production' }),
    { matched: true, entry: 'authentication-failure-spike' })
  t.match(enrichOne({ alertname: 'HighErrorRate', severity: 'critical', service: 'checkout-api', namespace: 'production' }),
    { matched: false }, "another service's HighErrorRate is not the API's")
})

t.test("severity none (kube-prometheus' Watchdog, InfoInhibitor) is ignored: no destination, priority P3", async (t) => {
  for (const alertname of ['Watchdog', 'InfoInhibitor']) {
    const labels = { alertname, severity: 'none', prometheus: 'monitoring/k8s' }
    t.same(classifyAlert(labels, catalog), { entry: undefined, priority: 'P3', destinations: [], ignored: true, unmappedSeverity: undefined }, alertname)
    t.match(enrichOne(labels), { ignored: true, destinations: [], priority: 'P3' })
  }
  t.match(classifyAlert({ alertname: 'Watchdog', severity: 'None' }, catalog), { ignored: true }, 'case-insensitive, as every severity')
  // An entry's own priority wins over the severity mapping; an entry without one follows it.
  t.match(classifyAlert({ alertname: 'HighErrorRate', service: 'pynomaly-api', severity: 'none' }, catalog), { ignored: false, priority: 'P0' })
  t.match(classifyAlert({ alertname: 'AlertEnricherDown', severity: 'none' }, catalog), { ignored: true, destinations: [] })
  t.match(enrichOne({ alertname: 'HighErrorRate', severity: 'critical' }), { ignored: false })
})

t.test("an unknown or missing severity (sloth's pageteam) gets the default priority and says why", async (t) => {
  const sloth = { alertname: 'CheckoutAvailabilityHighErrorRate', severity: 'pageteam', sloth_id: 'checkout-availability', sloth_service: 'checkout', sloth_slo: 'availability', sloth_severity: 'page' }
  t.match(classifyAlert(sloth, catalog), { priority: 'P2', destinations: ['slack-alerts'], ignored: false, unmappedSeverity: 'unknown' })
  t.match(classifyAlert({ alertname: 'NoSeverity' }, catalog), { priority: 'P2', unmappedSeverity: 'missing' })
  t.match(classifyAlert({ alertname: 'BlankSeverity', severity: ' ' }, catalog), { priority: 'P2', unmappedSeverity: 'missing' })
  t.match(classifyAlert({ alertname: 'Known', severity: 'warning' }, catalog), { priority: 'P2', unmappedSeverity: undefined })
  t.match(classifyAlert({ alertname: 'RedisDown', part_of: 'pynomaly' }, catalog), { priority: 'P0', unmappedSeverity: undefined }, 'an entry with a priority needs no severity')
})

t.test('the runbook link: entry runbook, else runbook_url, else a runbook annotation, else the default', async (t) => {
  const own = { alertname: 'SlothAlert', severity: 'warning' }
  t.match(enrichOne(own, { runbook: 'https://wiki.example/sloth' }), { runbookUrl: 'https://wiki.example/sloth' })
  t.match(enrichOne(own, { runbook: 'https://wiki.example/sloth', runbook_url: 'https://wiki.example/url' }), { runbookUrl: 'https://wiki.example/url' }, 'runbook_url first')
  t.match(enrichOne(own, { runbook: ' ' }), { runbookUrl: /operational_monitoring_guide\.md#alert-hierarchy-and-response$/ }, 'a blank one is missing')
  t.match(enrichOne({ alertname: 'RedisDown', severity: 'critical', part_of: 'pynomaly' }, { runbook: 'https://wiki.example/redis' }), { runbookUrl: /alert_rules\.md#redisdown$/ }, "the entry's runbook first")
})
