import t from 'tap'
import { readFileSync } from 'node:fs'
import { checkProject } from '../src/config/check.js'
import { formatProblem } from '../src/config/problems.js'

const DIR = 'test/fixtures/catalogs'
const PROJECT = `${DIR}/project`
const CATALOG = `${PROJECT}/rules/catalog.yaml`

async function check (catalog: string, rulesDir = `${PROJECT}/rules`): Promise<string[]> {
  const problems = await checkProject({ catalogPath: catalog, rulesDir, runbooksDir: `${PROJECT}/runbooks` })
  return problems.map(formatProblem)
}

/** `file:line:col` of the first occurrence of `needle` in `file`. */
function at (file: string, needle: string): string {
  const text = readFileSync(file, 'utf8')
  const i = text.indexOf(needle)
  if (i < 0) throw new Error(`${file} lacks ${needle}`)
  const before = text.slice(0, i).split('\n')
  return `${file}:${before.length}:${(before.at(-1)?.length ?? 0) + 1}`
}

t.test('a consistent project has no problems', async (t) => {
  // Also shows: recording rules, absolute runbook URLs, rules/catalog.yaml and rules/tests/ are skipped;
  // rule files are found recursively (*.rules.yml and *.rules.yaml).
  t.same(await check(CATALOG), [])
})

t.test('an entry runbook whose anchor does not exist', async (t) => {
  const file = `${DIR}/broken-anchor.yaml`
  t.same(await check(file), [
    `${at(file, 'ops.md#high-error-rates')} runbook 'ops.md#high-error-rates': no heading with anchor '#high-error-rates' in ${PROJECT}/runbooks/ops.md`
  ])
})

t.test('anchors keep underscores as on GitHub', async (t) => {
  const file = `${DIR}/underscore-anchor.yaml`
  t.same(await check(file), [
    `${at(file, 'ops.md#check-kubepod')} runbook 'ops.md#check-kubepodcontainerstatusrestartstotal': no heading with anchor '#check-kubepodcontainerstatusrestartstotal' in ${PROJECT}/runbooks/ops.md`
  ])
})

t.test('an entry runbook whose file does not exist', async (t) => {
  const file = `${DIR}/missing-file.yaml`
  t.same(await check(file), [
    `${at(file, 'database.md#')} runbook 'database.md#connection-pool-exhausted': ${PROJECT}/runbooks/database.md not found`
  ])
})

t.test('an unknown destination', async (t) => {
  const file = `${DIR}/unknown-destination.yaml`
  t.same(await check(file), [
    `${at(file, 'email]')} priorities.P2.destinations[1]: unknown destination 'email' (defined: pager, chat)`
  ])
})

t.test('a schema error', async (t) => {
  const file = `${DIR}/schema-error.yaml`
  t.same(await check(file), [
    `${at(file, 'urgent')} entries[0].priority: expected one of P0, P1, P2, P3 (got "urgent")`
  ])
})

t.test('a YAML syntax error', async (t) => {
  const file = `${DIR}/yaml-syntax.yaml`
  const problems = await check(file)
  t.ok(problems.length >= 1, 'reported')
  for (const p of problems) t.match(p, new RegExp(`^${file}:\\d+:\\d+ YAML syntax error: `))
  const line = Number(problems[0]?.split(':')[1])
  t.ok(line >= Number(at(file, 'holidays:').split(':')[1]), 'at or after the unclosed sequence')
})

t.test('an entry shadowed by an earlier one', async (t) => {
  const file = `${DIR}/shadowed.yaml`
  const earlierLine = at(file, '- id: database').split(':')[1] ?? ''
  t.same(await check(file), [
    `${at(file, "['alertname=\"DbReplicationLag\"'")} entries[2].matchers: entry 'db-replication' can never match: entry 'database' (line ${earlierLine}) matches every alert it matches`
  ])
})

t.test('rules without an entry, and rules whose runbook_url does not resolve', async (t) => {
  const file = `${DIR}/rules-extra/extra.rules.yml`
  t.same(await check(CATALOG, `${DIR}/rules-extra`), [
    `${at(file, 'DiskFull')} alert 'DiskFull' has no catalog entry`,
    `${at(file, 'https://git.example/ops/blob/main/runbooks/ops.md#high-error-rates')} runbook 'ops.md#high-error-rates': no heading with anchor '#high-error-rates' in ${PROJECT}/runbooks/ops.md`,
    `${at(file, 'https://git.example/ops/blob/main/runbooks/postgres.md')} runbook 'postgres.md#pool': ${PROJECT}/runbooks/postgres.md not found`,
    `${at(file, 'Sneaky')} alert 'Sneaky' has no catalog entry` // a rule label cannot override alertname
  ])
})

t.test('an unreadable catalog is one problem; a missing rules dir is no rules', async (t) => {
  t.same(await check(`${DIR}/nope.yaml`, `${DIR}/no-such-rules`), [`${DIR}/nope.yaml:1:1 cannot read catalog: ENOENT`])
})

t.test('a runbook path may not leave the runbooks directory', async (t) => {
  const text = readFileSync(CATALOG, 'utf8').replace('runbook: ops.md#triage', 'runbook: ../rules/catalog.yaml')
  const dir = t.testdir({ 'catalog.yaml': text })
  const problems = await checkProject({ catalogPath: `${dir}/catalog.yaml`, rulesDir: `${dir}/rules`, runbooksDir: `${PROJECT}/runbooks` })
  t.same(problems.map((p) => p.message), [`runbook '../rules/catalog.yaml': must name a file inside ${PROJECT}/runbooks`])
  t.equal(problems[0]?.line, text.split('\n').findIndex((l) => l.includes('../rules/catalog.yaml')) + 1)
})
