import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FIXTURES, REPO } from './helpers/app.js'

// The built CLI as users run it (npm test builds dist/ before tap).
function cli (...args: string[]): { status: number | null, stdout: string, stderr: string } {
  return cliWithEnv({}, ...args)
}

function cliWithEnv (env: Record<string, string>, ...args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [join(REPO, 'dist/cli.js'), ...args], { cwd: REPO, encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.test('check passes on the bundled catalog, rules and runbooks', async (t) => {
  const r = cli('check')
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.match(r.stdout, /rules\/catalog\.yaml: OK/)
})

t.test('check prints every problem as file:line:col and exits 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-cli-'))
  const broken = readFileSync(join(REPO, 'rules/catalog.yaml'), 'utf8')
    .replace('runbook: incident_response_playbook.md#critical-alerts-p0', 'runbook: incident_response_playbook.md#no-such-section')
    .replace('runbook: incident_response_playbook.md#database-issues', 'runbook: no_such_runbook.md#database-issues')
  const path = join(dir, 'catalog.yaml')
  writeFileSync(path, broken)
  const r = cli('check', '--catalog', path)
  t.equal(r.status, 1)
  const lines = r.stdout.trim().split('\n')
  t.ok(lines.length >= 2, r.stdout)
  for (const line of lines) t.match(line, /^.+:\d+:\d+ .+/, 'file:line:col message')
  t.match(r.stdout, /no_such_runbook\.md/)
  t.match(r.stdout, /no-such-section/)
})

t.test('explain shows what would be sent, as text and as JSON', async (t) => {
  const payload = join(FIXTURES, 'firing-two-critical.json')
  const json = cli('explain', payload, '--json', '--now', '2026-11-26T20:11:00Z')
  t.equal(json.status, 0, json.stderr)
  const result = JSON.parse(json.stdout)
  t.match(result.alerts[0], { priority: 'P0', entry: 'high-error-rate', sla: { respondBy: '2026-11-26T20:15:55.000Z' } })
  t.same(result.notifications.map((n: { destination: string }) => n.destination).sort(), ['pagerduty', 'slack-incident-response'])

  const text = cli('explain', payload, '--now', '2026-11-26T20:11:00Z')
  t.equal(text.status, 0)
  t.match(text.stdout, /priority:\s+P0 \(severity critical\)/)
  t.match(text.stdout, /respond by:\s+2026-11-26T20:15:55\.000Z \(PT5M, always; in 4 min\)/) // 4 min 55 s left: whole minutes, rounded down, as in Slack and PagerDuty
  t.match(text.stdout, /Engineering manager/)
  t.match(text.stdout, /incident_response_playbook\.md#critical-alerts-p0/)
})

t.test('explain refuses a payload that is not webhook v4, naming the field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-cli-'))
  const path = join(dir, 'bad.json')
  const valid = JSON.parse(readFileSync(join(FIXTURES, 'firing-single-warning.json'), 'utf8'))
  writeFileSync(path, JSON.stringify({ ...valid, alerts: [] }))
  const r = cli('explain', path)
  t.equal(r.status, 1)
  t.match(r.stderr, /alerts: must not be empty/)
  t.equal(cli('bogus').status, 2)
})

t.test('RUNBOOK_BASE_URL points the same catalog at another runbook host', async (t) => {
  const payload = join(FIXTURES, 'firing-two-critical.json')
  const r = cliWithEnv({ RUNBOOK_BASE_URL: 'https://git.example/ops/blob/main/runbooks/' }, 'explain', payload, '--json')
  t.equal(r.status, 0, r.stderr)
  t.equal(JSON.parse(r.stdout).alerts[0].runbookUrl, 'https://git.example/ops/blob/main/runbooks/incident_response_playbook.md#critical-alerts-p0')
})
