import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import t from 'tap'
import { createMetrics, initDestinationLabels } from '../src/metrics.js'
import {
  REPO_ROOT, destinationEnv, sendKnownTraffic, startFakeDestinations, startServiceProcess
} from './helpers/alert-enricher-process.js'
import { startPrometheus, waitUntil, type PromApiResponse, type PromQueryData } from './helpers/prometheus.js'

// The Grafana dashboard is part of the product: every panel query must be valid PromQL that
// returns data from a real Prometheus scraping the real service after real traffic.

const DASHBOARD_PATH = join(REPO_ROOT, 'monitoring/grafana-dashboard.json')
const RULES_PATH = join(REPO_ROOT, 'monitoring/alert-enricher.rules.yml')

// The subset of Grafana's dashboard model this test relies on (extra fields allowed).
const Datasource = Type.Object({ type: Type.Literal('prometheus'), uid: Type.Literal('${datasource}') })
const Target = Type.Object({ expr: Type.String({ minLength: 1 }), refId: Type.String(), datasource: Datasource })
const Panel = Type.Object({
  id: Type.Integer(),
  type: Type.String(),
  title: Type.String({ minLength: 1 }),
  gridPos: Type.Object({ h: Type.Integer(), w: Type.Integer(), x: Type.Integer(), y: Type.Integer() }),
  datasource: Type.Optional(Datasource),
  targets: Type.Optional(Type.Array(Target))
})
const Variable = Type.Object({
  name: Type.String(),
  type: Type.String(),
  query: Type.Union([Type.String(), Type.Object({ query: Type.String() })]),
  multi: Type.Optional(Type.Boolean()),
  includeAll: Type.Optional(Type.Boolean())
})
const Dashboard = Type.Object({
  uid: Type.Literal('alert-enricher'),
  title: Type.String(),
  schemaVersion: Type.Integer({ minimum: 36 }),
  templating: Type.Object({ list: Type.Array(Variable) }),
  panels: Type.Array(Panel)
})
type Dashboard = Static<typeof Dashboard>
type Variable = Static<typeof Variable>

interface PanelQuery { panel: string, expr: string }

function loadDashboard (): Dashboard {
  const raw: unknown = JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8'))
  const first = Value.Errors(Dashboard, raw).First()
  if (first !== undefined) throw new Error(`dashboard ${first.path}: ${first.message}`)
  return raw as Dashboard
}

function panelQueries (d: Dashboard): PanelQuery[] {
  return d.panels.flatMap((p) => (p.targets ?? []).map((target) => ({ panel: p.title, expr: target.expr })))
}

function variableQuery (v: Variable): string {
  return typeof v.query === 'string' ? v.query : v.query.query
}

// What Grafana would send with "All" selected and a 1s scrape interval.
const GRAFANA_INTERVALS: Record<string, string> = { __rate_interval: '1m', __interval: '15s', __range: '5m' }
function substituteVariables (expr: string): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (_m, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? ''
    return GRAFANA_INTERVALS[name] ?? '.*'
  })
}

// Label names of every metric family on the registry (app and default metrics).
async function familyLabels (): Promise<Map<string, Set<string>>> {
  const m = createMetrics()
  initDestinationLabels(m, [{ destination: 'pagerduty', type: 'pagerduty' }])
  const families = new Map<string, Set<string>>()
  for (const metric of await m.registry.getMetricsAsJSON()) {
    const labels = new Set<string>()
    for (const v of metric.values) for (const l of Object.keys(v.labels)) if (l !== 'le' && l !== 'quantile') labels.add(l)
    families.set(metric.name, labels)
  }
  return families
}

// Ours carry alert_enricher_; prom-client's defaults keep their standard process_/nodejs_ names.
function referencedFamilies (expr: string, families: Map<string, Set<string>>): string[] {
  return [...expr.matchAll(/\b(?:alert_enricher|process|nodejs)_[a-z0-9_]+/g)].map(([name]) => {
    if (families.has(name)) return name
    const base = name.replace(/_(bucket|sum|count)$/, '')
    return families.has(base) ? base : name
  })
}

function hasFiniteData (body: PromApiResponse<PromQueryData>): boolean {
  const data = body.data
  if (body.status !== 'success' || data === undefined) return false
  if (data.resultType === 'vector') return data.result.some((s) => Number.isFinite(Number(s.value[1])))
  if (data.resultType === 'matrix') return data.result.some((s) => s.values.some((v) => Number.isFinite(Number(v[1]))))
  return Number.isFinite(Number(data.result[1]))
}

t.test('dashboard: importable model, template variables, every query filtered', async (t) => {
  const d = loadDashboard()
  const vars = new Map(d.templating.list.map((v) => [v.name, v]))
  t.equal(vars.get('datasource')?.type, 'datasource', 'datasource is a template variable')
  t.equal(vars.get('datasource')?.query, 'prometheus')
  for (const name of ['priority', 'destination', 'job', 'instance']) {
    const v = vars.get(name)
    t.equal(v?.type, 'query', `$${name} is a query variable`)
    t.equal(v?.multi, true, `$${name} is multi-value`)
    t.equal(v?.includeAll, true, `$${name} has All`)
  }
  t.equal(variableQuery(vars.get('destination') as Variable), 'label_values(alert_enricher_notifications_total, destination)')

  const ids = d.panels.map((p) => p.id)
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique')

  const families = await familyLabels()
  const queries = panelQueries(d)
  t.ok(queries.length >= 20, `${queries.length} panel queries`)
  for (const q of queries) {
    const names = referencedFamilies(q.expr, families)
    t.ok(names.length > 0, `${q.panel}: queries a metric the service exposes`)
    for (const name of names) t.ok(families.has(name), `${q.panel}: ${name} exists in src/metrics.ts`)
    const labels = new Set(names.flatMap((n) => [...(families.get(n) ?? [])]))
    t.match(q.expr, /job=~"\$job"/, `${q.panel}: filtered by $job`)
    t.match(q.expr, /instance=~"\$instance"/, `${q.panel}: filtered by $instance`)
    if (labels.has('priority')) t.match(q.expr, /priority=~"\$priority"/, `${q.panel}: filtered by $priority`)
    if (labels.has('destination')) t.match(q.expr, /destination=~"\$destination"/, `${q.panel}: filtered by $destination`)
  }

  // Every metric the service defines is on some panel.
  const used = new Set(queries.flatMap((q) => referencedFamilies(q.expr, families)))
  const appOnly = await createMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()
  for (const metric of appOnly) t.ok(used.has(metric.name), `${metric.name} is on the dashboard`)
  t.ok(used.has('process_resident_memory_bytes'), 'process RSS is on the dashboard')
})

t.test('dashboard: every PromQL expression returns data from a real Prometheus scraping the service', async (t) => {
  const d = loadDashboard()
  const fakes = await startFakeDestinations({ slackAlertsFailures: 1000 })
  t.teardown(fakes.close)
  const service = await startServiceProcess(destinationEnv(fakes))
  t.teardown(service.stop)
  const prom = await startPrometheus({ targets: [service.target], scrapeInterval: '1s', ruleFiles: [RULES_PATH] })
  t.teardown(prom.stop)
  await prom.waitForTargetsUp()

  // Traffic after the first scrape, so rate() over the window sees the increase.
  const traffic = await sendKnownTraffic(service.url)
  t.same(traffic.map((r) => r.status >= 200 && r.status < 300), [true, true, false, false], `statuses ${JSON.stringify(traffic)}`)
  await waitUntil('a delivery at every configured destination', 30_000, async () =>
    ['/pagerduty', '/slack/incident-response', '/slack/alerts'].every((p) => (fakes.received.get(p) ?? 0) > 0),
  () => `received ${JSON.stringify([...fakes.received])}\n${service.output()}`)
  // An acknowledgement, so the time-to-acknowledge panel has an observation.
  const ack = await fetch(`${service.url}/api/v1/incidents/1/ack`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"by":"dashboard-test"}' })
  t.equal(ack.status, 200, 'incident 1 acknowledged')

  const queries = panelQueries(d).map((q) => ({ ...q, promql: substituteVariables(q.expr) }))
  const last = new Map<string, PromApiResponse<PromQueryData>>()
  const pending = (): typeof queries => queries.filter((q) => {
    const body = last.get(q.promql)
    return body === undefined || !hasFiniteData(body)
  })
  await waitUntil('every dashboard query to return data', 45_000, async () => {
    for (const q of pending()) last.set(q.promql, await prom.query(q.promql))
    return pending().length === 0
  }).catch(() => { /* reported per query below */ })

  // Controls: the checks below can fail (a syntax error; a metric that does not exist).
  t.equal((await prom.query('sum(rate(alert_enricher_webhooks_received_total[1m])')).status, 'error', 'invalid PromQL is reported')
  t.notOk(hasFiniteData(await prom.query('sum by (outcome) (rate(alert_enricher_no_such_metric_total[1m]))')), 'a missing metric is no data')

  for (const q of queries) {
    const body = last.get(q.promql)
    t.equal(body?.status, 'success', `${q.panel}: valid PromQL: ${q.promql} ${body?.error ?? ''}`)
    t.ok(body !== undefined && hasFiniteData(body), `${q.panel}: returns data: ${q.promql} → ${JSON.stringify(body?.data).slice(0, 300)}`)
  }

  // Template variable queries (Grafana's label_values) resolve through the label values API.
  const expected: Record<string, string[]> = {
    priority: ['P0', 'P1', 'P2', 'P3'],
    destination: ['pagerduty', 'pagerduty-escalation', 'slack-alerts', 'slack-deployments', 'slack-incident-response'],
    job: ['alert-enricher'],
    instance: [service.target]
  }
  for (const v of d.templating.list.filter((v) => v.type === 'query')) {
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(variableQuery(v))
    t.ok(m, `$${v.name} uses label_values(metric, label)`)
    if (m === null) continue
    const res = await prom.labelValues(m[2] as string, substituteVariables(m[1] as string))
    t.same(res.data, expected[v.name], `$${v.name} values`)
  }

  // The self-alert rules load and evaluate against the real scrape; the dead letter (400 from
  // #alerts) shows up as AlertEnricherDeadLetters, and the target is not down.
  await waitUntil('rules evaluated', 20_000, async () => (await prom.rules()).every((r) => r.health !== 'unknown'))
  for (const rule of await prom.rules()) t.equal(rule.health, 'ok', `rule ${rule.name} evaluates ${rule.lastError ?? ''}`)
  await waitUntil('AlertEnricherDeadLetters active', 20_000, async () => (await prom.alerts()).some((a) => a.labels.alertname === 'AlertEnricherDeadLetters'))
    .catch(() => { /* asserted below */ })
  const active = (await prom.alerts()).map((a) => `${a.labels.alertname ?? ''}:${a.state}`)
  t.ok(active.some((a) => /^AlertEnricherDeadLetters:(pending|firing)$/.test(a)), `dead letters alert active: ${active.join(', ')}`)
  t.notOk(active.some((a) => a.startsWith('AlertEnricherDown:')), 'AlertEnricherDown not active')
})
