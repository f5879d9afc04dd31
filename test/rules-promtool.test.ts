import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'

// The alert rules are product: promtool must accept every rules file, and every alert must
// have unit tests in rules/tests/ that show it firing and staying silent. promtool comes from
// the Debian `prometheus` package (installed by .ci/run).

const rulesDir = new URL('../rules/', import.meta.url).pathname
const testsDir = join(rulesDir, 'tests')
const ruleFiles = readdirSync(rulesDir).filter((f) => f.endsWith('.rules.yml')).sort().map((f) => join(rulesDir, f))
const testFiles = readdirSync(testsDir).filter((f) => f.endsWith('.test.yml')).sort().map((f) => join(testsDir, f))

function promtool (...args: string[]): { status: number | null, output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 100_000 })
  if (r.error !== undefined) return { status: null, output: `cannot run promtool: ${r.error.message}` }
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

t.test('promtool check rules accepts every rules file', async (t) => {
  t.ok(ruleFiles.length >= 9, `${ruleFiles.length} rules files`)
  for (const file of ruleFiles) {
    const r = promtool('check', 'rules', file)
    t.equal(r.status, 0, `${file}\n${r.output}`)
  }
})

t.test('promtool test rules passes every unit test file', async (t) => {
  t.ok(testFiles.length > 0)
  const r = promtool('test', 'rules', ...testFiles)
  t.equal(r.status, 0, r.output)
  t.equal(r.output.match(/SUCCESS/g)?.length, testFiles.length, 'every test file reports SUCCESS')
})

t.test('a broken rules file makes promtool check rules fail', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rules-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bad = join(dir, 'broken.rules.yml')
  writeFileSync(bad, 'groups:\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: sum(rate(http_requests_total[5m]) > \n        labels: { severity: critical }\n')
  const r = promtool('check', 'rules', bad)
  t.not(r.status, 0, 'non-zero exit')
  t.match(r.output, /Broken|parse error|unclosed/i)
})

t.test('a failing expectation makes promtool test rules fail', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rules-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const test = join(dir, 'wrong.test.yml')
  writeFileSync(test, [
    'rule_files:', `  - ${join(rulesDir, 'redis.rules.yml')}`, 'evaluation_interval: 1m', 'tests:',
    '  - interval: 1m', '    input_series:',
    '      - series: \'redis_up{job="redis", instance="redis-0"}\'', '        values: \'1x10\'',
    '    alert_rule_test:', '      - eval_time: 5m', '        alertname: RedisDown',
    '        exp_alerts:', '          - exp_labels: { severity: critical, job: redis, instance: redis-0 }', ''
  ].join('\n'))
  const r = promtool('test', 'rules', test)
  t.not(r.status, 0, 'Redis up yet RedisDown expected: the test fails')
  t.match(r.output, /FAILED/)
})

interface AlertTest { alertname: string, exp_alerts?: unknown[] }
t.test('every alert has a firing case and a silent case', async (t) => {
  const alerts: string[] = []
  for (const file of ruleFiles) {
    const doc = parse(readFileSync(file, 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string }> }> }
    for (const g of doc.groups) for (const r of g.rules) if (r.alert !== undefined) alerts.push(r.alert)
  }
  const fires = new Set<string>()
  const silent = new Set<string>()
  for (const file of testFiles) {
    const doc = parse(readFileSync(file, 'utf8')) as { tests: Array<{ alert_rule_test?: AlertTest[] }> }
    for (const c of doc.tests) {
      for (const a of c.alert_rule_test ?? []) ((a.exp_alerts ?? []).length > 0 ? fires : silent).add(a.alertname)
    }
  }
  t.ok(alerts.length >= 20, `${alerts.length} alerts`)
  for (const a of alerts) {
    t.ok(fires.has(a), `${a} has a test where it fires`)
    t.ok(silent.has(a), `${a} has a test where it stays silent`)
  }
})
