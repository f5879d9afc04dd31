import t, { type TAP } from 'tap'
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseCatalog } from '../src/config/catalog.js'
import { createCatalogHolder, type CatalogHolder, type ReloadResult } from '../src/config/catalog-holder.js'
import { createMetrics, type Metrics } from '../src/metrics.js'
import { parseExposition, sampleSum, startServiceProcess } from './helpers/alert-enricher-process.js'
import { BUNDLED_CATALOG, buildTestApp, fixture, type TestApp } from './helpers/app.js'
import { waitUntil } from './helpers/prometheus.js'

// Hot reload: POST /-/reload and SIGHUP swap in a valid catalog atomically and refuse an
// invalid one (old catalog keeps serving, gauge 0 until a good reload); the directory watcher
// follows a Kubernetes ConfigMap update (the `..data` symlink swap) and ignores events that
// do not change the catalog's content.

const ORIGINAL = readFileSync(BUNDLED_CATALOG, 'utf8')
const json = { 'content-type': 'application/json' }

const HIGH_ERROR_RATE = "matchers: ['alertname=\"HighErrorRate\"', 'service=\"pynomaly-api\"']\n    priority: P0"
const WITH_NEW_ENTRY = ORIGINAL.replace('entries:\n', "entries:\n  - id: brand-new-alert\n    matchers: ['alertname=\"BrandNewAlert\"']\n    priority: P1\n    runbook: alert_rules.md#brandnewalert\n    team: ml\n")
// Same alert at P1, with its own runbook: a preview that mixed catalogs would show P1 with the P0 runbook or destinations.
const DEMOTED = ORIGINAL.replace(HIGH_ERROR_RATE, HIGH_ERROR_RATE.replace('P0', 'P1')).replace('incident_response_playbook.md#critical-alerts-p0', 'alert_rules.md#higherrorrate')
const INVALID_PRIORITY = ORIGINAL.replace(HIGH_ERROR_RATE, HIGH_ERROR_RATE.replace('P0', 'P9'))
const INVALID_YAML = ORIGINAL.replace('entries:\n', 'entries:\n  - id: [oops\n')

function countEntries (text: string): number {
  const r = parseCatalog(text, 'x')
  if (!r.ok) throw new Error('fixture catalog invalid')
  return r.catalog.entries.length
}

/** 1-based line of the first line containing `needle`. */
function lineOf (text: string, needle: string): number {
  return text.slice(0, text.indexOf(needle)).split('\n').length
}

const ENTRIES = countEntries(ORIGINAL)

function tempCatalog (t: Pick<TAP, 'teardown'>, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ae-reload-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'catalog.yaml')
  writeFileSync(path, text)
  return path
}

async function reloadCounts (metrics: Metrics): Promise<{ success: number, failure: number, lastOk: number, entries: number }> {
  const samples = parseExposition(await metrics.registry.metrics())
  const get = (name: string, labels: Record<string, string> = {}): number => sampleSum(samples, `alert_enricher_${name}`, labels) ?? Number.NaN
  return {
    success: get('catalog_reloads_total', { outcome: 'success' }),
    failure: get('catalog_reloads_total', { outcome: 'failure' }),
    lastOk: get('catalog_last_reload_successful'),
    entries: get('catalog_entries')
  }
}

interface PreviewAlert { alertname: string, entry: string | null, priority: string, runbookUrl: string, escalation: { escalation: string } }
async function preview (h: TestApp, body: Record<string, unknown>): Promise<{ alerts: PreviewAlert[], notifications: Array<{ destination: string }> }> {
  const res = await h.app.inject({ method: 'POST', url: '/api/v1/preview', headers: json, payload: body })
  if (res.statusCode !== 200) throw new Error(`preview: ${res.statusCode} ${res.body}`)
  return res.json()
}

function withAlertname (name: string): Record<string, unknown> {
  const body = fixture('firing-single-warning.json') as { alerts: Array<{ labels: Record<string, string> }> }
  return { ...body, alerts: body.alerts.map((a) => ({ ...a, labels: { ...a.labels, alertname: name } })) }
}

t.test('POST /-/reload swaps in a valid catalog: the new entry is used at once', async (t) => {
  const path = tempCatalog(t, ORIGINAL)
  const h = await buildTestApp({ catalogPath: path })
  t.teardown(h.close)
  t.match((await preview(h, withAlertname('BrandNewAlert'))).alerts[0], { matched: false, entry: null })

  writeFileSync(path, WITH_NEW_ENTRY)
  const res = await h.app.inject({ method: 'POST', url: '/-/reload' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'success', changed: true, entries: ENTRIES + 1 })
  t.match((await preview(h, withAlertname('BrandNewAlert'))).alerts[0], { matched: true, entry: 'brand-new-alert', priority: 'P1', runbookUrl: /alert_rules\.md#brandnewalert$/ })
  t.same(await reloadCounts(h.metrics), { success: 1, failure: 0, lastOk: 1, entries: ENTRIES + 1 })
})

t.test('an invalid catalog is refused with positioned problems; the old one keeps serving until a good reload', async (t) => {
  const path = tempCatalog(t, ORIGINAL)
  const h = await buildTestApp({ catalogPath: path })
  t.teardown(h.close)

  writeFileSync(path, INVALID_PRIORITY)
  const bad = await h.app.inject({ method: 'POST', url: '/-/reload' })
  t.equal(bad.statusCode, 400)
  const line = lineOf(INVALID_PRIORITY, 'priority: P9')
  t.match(bad.json(), { error: 'invalid_catalog', message: /1 problem\(s\); the previous catalog keeps serving/ })
  t.same(bad.json().problems, [`${path}:${line}:15 entries[0].priority: expected one of P0, P1, P2, P3 (got "P9")`])
  t.match((await preview(h, fixture('firing-two-critical.json'))).alerts[0], { entry: 'high-error-rate', priority: 'P0' }, 'old catalog still used')
  t.same(await reloadCounts(h.metrics), { success: 0, failure: 1, lastOk: 0, entries: ENTRIES })

  writeFileSync(path, INVALID_YAML)
  const syntax = await h.app.inject({ method: 'POST', url: '/-/reload' })
  t.equal(syntax.statusCode, 400)
  const problems = syntax.json().problems as string[]
  // The YAML parser reports where it noticed the error: at or after the broken line.
  const at = (p: string): number => Number(p.slice(path.length + 1).split(':')[0])
  t.ok(problems.length > 0 && problems.every((p) => p.startsWith(`${path}:`) && at(p) >= lineOf(INVALID_YAML, '[oops') && / YAML syntax error: /.test(p)), problems.join('\n'))
  t.same(await reloadCounts(h.metrics), { success: 0, failure: 2, lastOk: 0, entries: ENTRIES }, 'still 0: no good reload yet')

  writeFileSync(path, DEMOTED)
  const good = await h.app.inject({ method: 'POST', url: '/-/reload' })
  t.same(good.json(), { status: 'success', changed: true, entries: ENTRIES })
  t.match((await preview(h, fixture('firing-two-critical.json'))).alerts[0], { entry: 'high-error-rate', priority: 'P1' })
  t.same(await reloadCounts(h.metrics), { success: 1, failure: 2, lastOk: 1, entries: ENTRIES })
})

t.test('unchanged content: an explicit reload counts (changed: false), the watcher path does nothing', async (t) => {
  const path = tempCatalog(t, ORIGINAL)
  const h = await buildTestApp({ catalogPath: path })
  t.teardown(h.close)
  const before = h.catalog.current()

  writeFileSync(path, ORIGINAL) // touched, same bytes
  t.equal(await h.catalog.reloadIfChanged(), undefined)
  t.same(await reloadCounts(h.metrics), { success: 0, failure: 0, lastOk: 1, entries: ENTRIES })

  const res = await h.app.inject({ method: 'POST', url: '/-/reload' })
  t.same(res.json(), { status: 'success', changed: false, entries: ENTRIES })
  t.equal(h.catalog.current(), before, 'same catalog object: nothing was swapped')
  t.same(await reloadCounts(h.metrics), { success: 1, failure: 0, lastOk: 1, entries: ENTRIES })

  // After a refused catalog, going back to the loaded content is a change for the watcher: it clears the gauge.
  writeFileSync(path, INVALID_PRIORITY)
  t.match(await h.catalog.reloadIfChanged(), { ok: false })
  t.equal(await h.catalog.reloadIfChanged(), undefined, 'the same bad content is not retried')
  writeFileSync(path, ORIGINAL)
  t.match(await h.catalog.reloadIfChanged(), { ok: true, changed: false })
  t.equal(h.catalog.current(), before)
  t.same(await reloadCounts(h.metrics), { success: 2, failure: 1, lastOk: 1, entries: ENTRIES })
})

t.test('concurrent previews during reloads each see one whole catalog', async (t) => {
  const path = tempCatalog(t, ORIGINAL)
  const h = await buildTestApp({ catalogPath: path })
  t.teardown(h.close)
  const body = fixture('firing-two-critical.json')
  const seen = new Set<string>()
  for (let round = 0; round < 20; round++) {
    writeFileSync(path, round % 2 === 0 ? DEMOTED : ORIGINAL)
    const [reload, ...previews] = await Promise.all([
      h.app.inject({ method: 'POST', url: '/-/reload' }),
      ...Array.from({ length: 5 }, async () => await preview(h, body))
    ])
    t.equal(reload?.statusCode, 200)
    for (const p of previews as Array<Awaited<ReturnType<typeof preview>>>) {
      const views = p.alerts.map((a) => `${a.priority} ${a.runbookUrl.split('/').pop() ?? ''}`)
      const destinations = p.notifications.map((n) => n.destination).sort().join(',')
      const view = `${views.join(' | ')} → ${destinations}`
      seen.add(view)
    }
  }
  t.same([...seen].sort(), [
    'P0 incident_response_playbook.md#critical-alerts-p0 | P0 incident_response_playbook.md#critical-alerts-p0 → pagerduty,slack-incident-response',
    'P1 alert_rules.md#higherrorrate | P1 alert_rules.md#higherrorrate → pagerduty,slack-alerts'
  ], 'only the two catalogs, never a mix')
})

// A directory laid out like a mounted ConfigMap, updated the way the kubelet's AtomicWriter does it.
function configMapDir (t: Pick<TAP, 'teardown'>, text: string): { path: string, update: (text: string) => void, dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ae-configmap-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let generation = 0
  let current = ''
  const writeGeneration = (content: string): string => {
    const name = `..2026_11_26_20_00_${String(generation++).padStart(2, '0')}.000000001`
    mkdirSync(join(dir, name))
    writeFileSync(join(dir, name, 'catalog.yaml'), content)
    return name
  }
  current = writeGeneration(text)
  symlinkSync(current, join(dir, '..data'))
  symlinkSync(join('..data', 'catalog.yaml'), join(dir, 'catalog.yaml'))
  return {
    dir,
    path: join(dir, 'catalog.yaml'),
    update (content) {
      const next = writeGeneration(content)
      symlinkSync(next, join(dir, '..data_tmp'))
      renameSync(join(dir, '..data_tmp'), join(dir, '..data')) // the atomic step
      rmSync(join(dir, current), { recursive: true })
      current = next
    }
  }
}

function watchedHolder (t: Pick<TAP, 'teardown'>, path: string): { holder: CatalogHolder, metrics: Metrics, checks: Array<ReloadResult | undefined>, rebinds: () => number } {
  const text = readFileSync(path, 'utf8')
  const parsed = parseCatalog(text, path)
  if (!parsed.ok) throw new Error('initial catalog invalid')
  const metrics = createMetrics({ defaultMetrics: false })
  let rebinds = 0
  const holder = createCatalogHolder(path, parsed.catalog, text, {
    metrics, logger: { info () {}, warn () {}, error () {} }, now: () => new Date(), onChange: () => { rebinds++ }
  })
  const checks: Array<ReloadResult | undefined> = []
  holder.watch({ debounceMs: 50, onChecked: (r) => checks.push(r) })
  t.teardown(() => { holder.close() })
  return { holder, metrics, checks, rebinds: () => rebinds }
}

t.test('a ConfigMap symlink swap is picked up by the watcher; unrelated events are not reloads', async (t) => {
  const cm = configMapDir(t, ORIGINAL)
  const { holder, metrics, checks, rebinds } = watchedHolder(t, cm.path)
  const hasEntry = (id: string): boolean => holder.current().entries.some((e) => e.entry.id === id)

  writeFileSync(join(cm.dir, 'unrelated.txt'), 'not the catalog')
  await waitUntil('the watcher to check after an unrelated file changed', 10_000, async () => checks.length > 0)
  t.ok(checks.every((c) => c === undefined), 'content unchanged: no reload')
  t.same(await reloadCounts(metrics), { success: 0, failure: 0, lastOk: 1, entries: ENTRIES })

  cm.update(WITH_NEW_ENTRY)
  await waitUntil('the new entry after the ..data swap', 10_000, async () => hasEntry('brand-new-alert'))
  t.same(await reloadCounts(metrics), { success: 1, failure: 0, lastOk: 1, entries: ENTRIES + 1 })
  t.equal(rebinds(), 1, 'destinations rebuilt once')

  cm.update(INVALID_PRIORITY)
  await waitUntil('the refused swap to show in the gauge', 10_000, async () => (await reloadCounts(metrics)).lastOk === 0)
  t.ok(hasEntry('brand-new-alert'), 'the previous catalog keeps serving')
  const refused = checks.find((c) => c !== undefined && !c.ok)
  t.match(refused, { ok: false, problems: [{ file: cm.path, line: lineOf(INVALID_PRIORITY, 'priority: P9'), message: /priority/ }] })

  // The same bytes written again (a new generation) and then a real change: only the change counts.
  cm.update(INVALID_PRIORITY)
  cm.update(DEMOTED)
  await waitUntil('the fixed catalog after two more swaps', 10_000, async () => !hasEntry('brand-new-alert'))
  t.equal(holder.current().findEntry({ alertname: 'HighErrorRate', service: 'pynomaly-api' })?.entry.priority, 'P1')
  t.same(await reloadCounts(metrics), { success: 2, failure: 1, lastOk: 1, entries: ENTRIES })
  t.equal(rebinds(), 2)
})

t.test('SIGHUP makes a running service re-read its catalog', async (t) => {
  const path = tempCatalog(t, ORIGINAL)
  const svc = await startServiceProcess({ CATALOG_PATH: path })
  t.teardown(svc.stop)
  const counts = async (): Promise<{ success: number, failure: number, lastOk: number }> => {
    const samples = parseExposition(await (await fetch(`${svc.url}/metrics`)).text())
    return {
      success: sampleSum(samples, 'alert_enricher_catalog_reloads_total', { outcome: 'success' }) ?? Number.NaN,
      failure: sampleSum(samples, 'alert_enricher_catalog_reloads_total', { outcome: 'failure' }) ?? Number.NaN,
      lastOk: sampleSum(samples, 'alert_enricher_catalog_last_reload_successful') ?? Number.NaN
    }
  }
  const catalogEntries = async (): Promise<number> => ((await (await fetch(`${svc.url}/api/v1/catalog`)).json()) as { entries: number }).entries
  const pid = svc.pid
  t.same(await counts(), { success: 0, failure: 0, lastOk: 1 })

  // Unchanged file: the watcher stays quiet, so this success can only be the signal's.
  process.kill(pid, 'SIGHUP')
  await waitUntil('a reload counted after SIGHUP', 15_000, async () => (await counts()).success === 1, svc.output)

  writeFileSync(path, INVALID_PRIORITY)
  process.kill(pid, 'SIGHUP')
  await waitUntil('the refused reload in the gauge', 15_000, async () => (await counts()).lastOk === 0, svc.output)
  t.equal(await catalogEntries(), ENTRIES, 'old catalog still served')
  t.equal((await fetch(`${svc.url}/-/ready`)).status, 200)

  writeFileSync(path, WITH_NEW_ENTRY)
  process.kill(pid, 'SIGHUP')
  await waitUntil('the new catalog served', 15_000, async () => await catalogEntries() === ENTRIES + 1 && (await counts()).lastOk === 1, svc.output)
})
