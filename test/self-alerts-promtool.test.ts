import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { headingAnchors } from '../src/runbooks/anchors.js'
import { REPO_ROOT } from './helpers/alert-enricher-process.js'
import { PROMTOOL_BIN } from './helpers/prometheus.js'

// The service's self-alerts: promtool validates the rules and runs their unit tests, and a
// broken copy proves both checks can fail.

const RULES = join(REPO_ROOT, 'monitoring/alert-enricher.rules.yml')
const RULE_TESTS = join(REPO_ROOT, 'monitoring/tests/alert-enricher.test.yml')
const RUNBOOK = join(REPO_ROOT, 'runbooks/alert_enricher_operations.md')
const RUNBOOK_URL_PREFIX = 'http://localhost:9095/runbooks/alert_enricher_operations.md#'
const REQUIRED_ALERTS = [
  'AlertEnricherDown', 'AlertEnricherDeadLetters', 'AlertEnricherP0BacklogOverSLA',
  'AlertEnricherNotificationsFailing', 'AlertEnricherStoreFailing', 'AlertEnricherCatalogReloadFailed',
  'AlertEnricherAcknowledgementsRejected'
]

interface AlertRule { alert: string, expr: string, for?: string, labels?: Record<string, string>, annotations?: Record<string, string> }
interface RuleTest { alertname: string, eval_time: string, exp_alerts: unknown[] }

function promtool (args: string[], cwd = REPO_ROOT): { status: number | null, output: string } {
  const r = spawnSync(PROMTOOL_BIN, args, { cwd, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

/** Copies rules + unit tests into a temp dir (same relative layout), editing the rules. */
function brokenCopy (edit: (rules: string) => string): { dir: string, rules: string, tests: string } {
  const dir = mkdtempSync(join(tmpdir(), 'alert-enricher-rules-'))
  mkdirSync(join(dir, 'tests'))
  const original = readFileSync(RULES, 'utf8')
  const edited = edit(original)
  if (edited === original) throw new Error('the edit changed nothing')
  writeFileSync(join(dir, 'alert-enricher.rules.yml'), edited)
  writeFileSync(join(dir, 'tests/alert-enricher.test.yml'), readFileSync(RULE_TESTS, 'utf8'))
  return { dir, rules: join(dir, 'alert-enricher.rules.yml'), tests: join(dir, 'tests/alert-enricher.test.yml') }
}

const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: AlertRule[] }> }).groups.flatMap((g) => g.rules)

t.test('promtool check rules passes', async (t) => {
  const r = promtool(['check', 'rules', RULES])
  t.equal(r.status, 0, r.output)
  t.match(r.output, `SUCCESS: ${REQUIRED_ALERTS.length} rules found`)
})

t.test('promtool test rules passes', async (t) => {
  const r = promtool(['test', 'rules', RULE_TESTS])
  t.equal(r.status, 0, r.output)
  t.match(r.output, 'SUCCESS')
})

t.test('a broken copy fails: invalid PromQL fails check rules', async (t) => {
  const copy = brokenCopy((s) => s.replace('expr: alert_enricher_catalog_last_reload_successful == 0', 'expr: alert_enricher_catalog_last_reload_successful == == 0'))
  t.teardown(() => rmSync(copy.dir, { recursive: true, force: true }))
  const r = promtool(['check', 'rules', copy.rules])
  t.not(r.status, 0)
  t.match(r.output, /parse error/)
})

t.test('a broken copy fails: a wrong threshold fails the unit tests', async (t) => {
  const copy = brokenCopy((s) => s.replace('{priority="P0"}) > 300', '{priority="P0"}) > 3000'))
  t.teardown(() => rmSync(copy.dir, { recursive: true, force: true }))
  t.equal(promtool(['check', 'rules', copy.rules]).status, 0, 'still valid rules')
  const r = promtool(['test', 'rules', copy.tests])
  t.not(r.status, 0)
  t.match(r.output, /AlertEnricherP0BacklogOverSLA/)
})

t.test('every required alert has severity, summary, description and a runbook link', async (t) => {
  t.same(rules.map((r) => r.alert).sort(), [...REQUIRED_ALERTS].sort())
  for (const rule of rules) {
    t.ok(['critical', 'high', 'warning'].includes(rule.labels?.severity ?? ''), `${rule.alert}: severity ${rule.labels?.severity ?? 'missing'}`)
    t.ok((rule.annotations?.summary ?? '').length > 0, `${rule.alert}: summary`)
    t.ok((rule.annotations?.description ?? '').length > 0, `${rule.alert}: description`)
    t.equal(rule.annotations?.runbook_url, `${RUNBOOK_URL_PREFIX}${rule.alert.toLowerCase()}`, `${rule.alert}: runbook_url`)
  }
})

t.test('the unit tests have a firing and a non-firing case for every alert', async (t) => {
  const cases = (parse(readFileSync(RULE_TESTS, 'utf8')) as { tests: Array<{ alert_rule_test?: RuleTest[] }> })
    .tests.flatMap((g) => g.alert_rule_test ?? [])
  for (const name of REQUIRED_ALERTS) {
    const mine = cases.filter((c) => c.alertname === name)
    t.ok(mine.some((c) => c.exp_alerts.length > 0), `${name}: a firing case`)
    t.ok(mine.some((c) => c.exp_alerts.length === 0), `${name}: a non-firing case`)
  }
})

t.test('every runbook_url anchor is a heading of runbooks/alert_enricher_operations.md', async (t) => {
  t.ok(existsSync(RUNBOOK), 'runbooks/alert_enricher_operations.md exists')
  if (!existsSync(RUNBOOK)) return
  const slugs = new Set(headingAnchors(readFileSync(RUNBOOK, 'utf8')).map((a) => a.slug))
  for (const rule of rules) {
    const anchor = (rule.annotations?.runbook_url ?? '').split('#')[1] ?? ''
    t.ok(slugs.has(anchor), `${rule.alert}: #${anchor} resolves`)
  }
})

t.test('every self-alert has a bundled catalog entry pointing at its runbook section', async (t) => {
  const catalog = parse(readFileSync(join(REPO_ROOT, 'rules/catalog.yaml'), 'utf8')) as { entries: Array<{ matchers: string[], runbook?: string }> }
  for (const rule of rules) {
    const entry = catalog.entries.find((a) => a.matchers.includes(`alertname="${rule.alert}"`))
    t.equal(entry?.runbook, `alert_enricher_operations.md#${rule.alert.toLowerCase()}`, `${rule.alert}: routed with its runbook`)
  }
})
