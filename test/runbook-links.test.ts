import t from 'tap'
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { CatalogDocument, type CatalogEntry } from '../src/config/catalog-schema.js'
import { headingAnchors } from '../src/runbooks/anchors.js'

// The bundled content holds together: every alert rule has a catalog entry with the priority
// its severity implies, and every runbook reference — catalog `runbook:`, rule `runbook_url`,
// links between runbooks — names a file and a heading anchor that exist (GitHub slug rules).

const root = new URL('..', import.meta.url).pathname
const runbooksDir = join(root, 'runbooks')
const catalogPath = join(root, 'rules', 'catalog.yaml')

interface Rule { alert?: string, record?: string, expr: string, labels?: Record<string, string>, annotations?: Record<string, string> }
interface AlertRule { file: string, alert: string, labels: Record<string, string>, annotations: Record<string, string> }

function alertRules (dir: string): AlertRule[] {
  if (!existsSync(dir)) return []
  const out: AlertRule[] = []
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.rules.yml')).sort()) {
    const doc = parse(readFileSync(join(dir, file), 'utf8')) as { groups: Array<{ rules: Rule[] }> }
    for (const g of doc.groups) {
      for (const r of g.rules) {
        if (r.alert !== undefined) out.push({ file, alert: r.alert, labels: r.labels ?? {}, annotations: r.annotations ?? {} })
      }
    }
  }
  return out
}

const anchorCache = new Map<string, Set<string> | null>()
function anchorsOf (file: string): Set<string> | null {
  if (!anchorCache.has(file)) {
    const path = join(runbooksDir, file)
    anchorCache.set(file, existsSync(path) ? new Set(headingAnchors(readFileSync(path, 'utf8')).map((a) => a.slug)) : null)
  }
  return anchorCache.get(file) ?? null
}

// null when it resolves, else what is wrong.
function resolveRef (ref: string): string | null {
  const [file, anchor, ...rest] = ref.split('#')
  if (file === undefined || file === '' || anchor === undefined || anchor === '' || rest.length > 0) return `"${ref}" is not file.md#anchor`
  const anchors = anchorsOf(file)
  if (anchors === null) return `runbooks/${file} does not exist`
  if (!anchors.has(anchor)) return `runbooks/${file} has no heading with anchor #${anchor}`
  return null
}

const catalogText = readFileSync(catalogPath, 'utf8')
const catalog = parse(catalogText) as CatalogDocument
const rules = alertRules(join(root, 'rules'))
const selfRules = alertRules(join(root, 'monitoring'))

// The one alert name an entry matches, as every bundled entry does (its other matchers say
// whose alert it is).
function alertnameOf (entry: CatalogEntry): string | undefined {
  const names = entry.matchers.flatMap((m) => /^alertname="([A-Za-z0-9_]+)"$/.exec(m)?.[1] ?? [])
  return names.length === 1 ? names[0] : undefined
}

// `name="value"` matchers other than alertname, as a label set.
function otherEqualities (entry: CatalogEntry): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of entry.matchers) {
    const eq = /^([a-z_]+)="([^"]*)"$/.exec(m)
    if (eq?.[1] !== undefined && eq[1] !== 'alertname') out[eq[1]] = eq[2] ?? ''
  }
  return out
}

t.test('the bundled catalog is valid against its schema', async (t) => {
  const check = TypeCompiler.Compile(CatalogDocument)
  const errors = [...check.Errors(catalog)].map((e) => `${e.path} ${e.message}`)
  t.same(errors, [])
  const ids = catalog.entries.map((e) => e.id)
  t.equal(new Set(ids).size, ids.length, 'entry ids are unique')
  const names = catalog.entries.map(alertnameOf)
  t.notOk(names.includes(undefined), 'every bundled entry matches exactly one alertname')
  t.equal(new Set(names).size, names.length, 'no two entries match the same alertname (nothing shadowed)')
  for (const e of catalog.entries) {
    for (const d of e.destinations ?? []) t.ok(d in catalog.destinations, `${e.id}: destination ${d} is defined`)
  }
})

t.test('the two original entries keep their ids and meaning', async (t) => {
  const byId = new Map(catalog.entries.map((e) => [e.id, e]))
  t.match(byId.get('high-error-rate'), { matchers: ['alertname="HighErrorRate"', 'service="pynomaly-api"'], priority: 'P0', runbook: 'incident_response_playbook.md#critical-alerts-p0', team: 'platform' })
  t.match(byId.get('database-connections-high'), { matchers: ['alertname="DatabaseConnectionsHigh"', 'part_of="pynomaly"'], priority: 'P2', runbook: 'incident_response_playbook.md#database-issues', team: 'platform' })
})

t.test('at least 20 alert rules, each with severity, summary, description and runbook_url', async (t) => {
  t.ok(rules.length >= 20, `${rules.length} alert rules`)
  for (const r of rules) {
    t.ok(r.labels.severity !== undefined && r.labels.severity in catalog.severityPriority, `${r.alert}: severity ${r.labels.severity} maps to a priority`)
    for (const a of ['summary', 'description', 'runbook_url']) t.ok((r.annotations[a] ?? '') !== '', `${r.alert}: has ${a}`)
  }
  const names = rules.map((r) => r.alert)
  t.equal(new Set(names).size, names.length, 'alert names are unique across rule files')
  for (const required of ['HighErrorRate', 'DatabaseConnectionsHigh', 'DeploymentRolloutStuck']) t.ok(names.includes(required), `${required} exists`)
  t.match(rules.find((r) => r.alert === 'HighErrorRate')?.labels, { severity: 'critical' })
  t.match(rules.find((r) => r.alert === 'DatabaseConnectionsHigh')?.labels, { severity: 'warning' })
})

t.test('every alert rule has a catalog entry that agrees with it', async (t) => {
  const entryFor = new Map(catalog.entries.map((e) => [alertnameOf(e), e]))
  for (const r of rules) {
    const e = entryFor.get(r.alert)
    if (e === undefined) { t.fail(`${r.file}: ${r.alert} has no catalog entry`); continue }
    t.equal(e.priority, catalog.severityPriority[r.labels.severity ?? ''], `${r.alert}: entry priority follows severity ${r.labels.severity}`)
    t.equal(catalog.runbookBaseUrl + (e.runbook ?? ''), r.annotations.runbook_url, `${r.alert}: rule runbook_url = catalog runbookBaseUrl + entry runbook`)
    t.ok(['platform', 'ml', 'data', 'security'].includes(e.team ?? ''), `${r.alert}: owner team ${e.team}`)
    t.ok((e.dashboards ?? []).length > 0 && (e.dashboards ?? []).every((d) => d.url.startsWith('https://monitoring.pynomaly.com/grafana/d/')), `${r.alert}: has Grafana dashboards`)
  }
})

// Alert names are shared between clusters (kube-prometheus, awesome-prometheus-alerts): an
// entry must also match a label that only Pynomaly's rule sets, never on the name alone.
t.test('every entry for a bundled rule also matches a label the rule itself sets', async (t) => {
  const entryFor = new Map(catalog.entries.map((e) => [alertnameOf(e), e]))
  for (const r of rules) {
    const e = entryFor.get(r.alert)
    const identifying = Object.entries(otherEqualities(e ?? { id: 'none', matchers: [] }))
    t.equal(e?.matchers.length, 2, `${r.alert}: alertname and one identifying label`)
    t.ok(identifying.length === 1 && identifying.every(([k, v]) => r.labels[k] === v && ['service', 'part_of'].includes(k)), `${r.alert}: matches ${JSON.stringify(identifying)}, set by the rule`)
  }
})

t.test('deployment alerts go to #deployments, security alerts also to #incident-response', async (t) => {
  const entryFor = new Map(catalog.entries.map((e) => [alertnameOf(e), e]))
  const deployment = rules.filter((r) => r.file === 'deployments.rules.yml')
  const security = rules.filter((r) => r.file === 'security.rules.yml')
  t.ok(deployment.length >= 2 && security.length >= 2)
  for (const r of deployment) {
    const e = entryFor.get(r.alert)
    const dests = e?.destinations ?? []
    t.ok(dests.includes('slack-deployments'), `${r.alert} → #deployments`)
    t.equal(dests.includes('pagerduty'), e?.priority === 'P0' || e?.priority === 'P1', `${r.alert}: paged exactly when P0/P1`)
  }
  for (const r of security) {
    const e = entryFor.get(r.alert)
    const dests = e?.destinations ?? catalog.priorities[e?.priority ?? 'P2'].destinations
    t.ok(dests.includes('slack-incident-response'), `${r.alert} → #incident-response`)
    for (const d of catalog.priorities[e?.priority ?? 'P2'].destinations) t.ok(dests.includes(d), `${r.alert} keeps its priority's ${d}`)
  }
})

t.test('every catalog runbook reference resolves to a file and heading', async (t) => {
  for (const ref of [catalog.defaults.runbook, ...catalog.entries.map((e) => e.runbook ?? catalog.defaults.runbook)]) {
    t.equal(resolveRef(ref), null, ref)
  }
})

t.test('every rule runbook_url (rules/ and monitoring/) resolves under runbookBaseUrl', async (t) => {
  t.ok(selfRules.length >= 5, 'the self-alert rules are present')
  for (const r of [...rules, ...selfRules]) {
    const url = r.annotations.runbook_url ?? ''
    t.ok(url.startsWith(catalog.runbookBaseUrl), `${r.alert}: ${url} is under ${catalog.runbookBaseUrl}`)
    t.equal(resolveRef(url.slice(catalog.runbookBaseUrl.length)), null, `${r.alert}: ${url}`)
  }
})

t.test('the sections the operations index links to exist', async (t) => {
  const required = [
    'incident_response_playbook.md#critical-alerts-p0', 'incident_response_playbook.md#database-issues',
    'incident_response_playbook.md#security-incident-response', 'deployment_runbook.md#production-deployment',
    'deployment_runbook.md#emergency-rollback', 'deployment_runbook.md#configuration-management',
    'operational_monitoring_guide.md#performance-tuning-guidelines', 'operational_monitoring_guide.md#alert-hierarchy-and-response',
    'operational_monitoring_guide.md#capacity-planning',
    ...['AlertEnricherDown', 'AlertEnricherDeadLetters', 'AlertEnricherP0BacklogOverSLA', 'AlertEnricherNotificationsFailing', 'AlertEnricherCatalogReloadFailed', 'AlertEnricherAcknowledgementsRejected']
      .map((a) => `alert_enricher_operations.md#${a.toLowerCase()}`)
  ]
  for (const ref of required) t.equal(resolveRef(ref), null, ref)
  t.ok(existsSync(join(runbooksDir, 'README.md')), 'runbooks/README.md exists')
})

t.test('links between runbooks resolve', async (t) => {
  const files = readdirSync(runbooksDir).filter((f) => f.endsWith('.md'))
  let checked = 0
  for (const file of files) {
    const md = readFileSync(join(runbooksDir, file), 'utf8')
    // Relative markdown links only: [text](other.md#anchor), [text](#anchor), [text](other.md).
    for (const m of md.matchAll(/\]\((?![a-z]+:)([^)\s]*)\)/g)) {
      const target = m[1] ?? ''
      const [path, anchor] = target.split('#')
      const ref = `${path === '' || path === undefined ? file : path}#${anchor ?? ''}`
      if (anchor === undefined) t.ok(existsSync(join(runbooksDir, path ?? '')), `${file}: link ${target}`)
      else t.equal(resolveRef(ref), null, `${file}: link ${target}`)
      checked++
    }
  }
  t.ok(checked > 50, `${checked} links checked`)
})

t.test('a broken reference is reported, not silently accepted', async (t) => {
  t.match(resolveRef('alert_rules.md#no-such-alert'), /no heading with anchor #no-such-alert/)
  t.match(resolveRef('missing.md#x'), /does not exist/)
  t.match(resolveRef('alert_rules.md'), /not file\.md#anchor/)
})
