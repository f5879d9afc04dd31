import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// No Docker engine runs in CI, so the image is checked statically: dockerfilelint for the
// usual traps, and assertions for the properties the deployment relies on.

const root = fileURLToPath(new URL('..', import.meta.url))
const linter = join(root, 'node_modules', 'dockerfilelint', 'bin', 'dockerfilelint')
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8')

interface LintReport { totalIssues: number, files: Array<{ issues: Array<{ line: number, title: string }> }> }

function lint (path: string): { status: number | null, report: LintReport } {
  const res = spawnSync(process.execPath, [linter, '--json', path], { encoding: 'utf8', timeout: 30_000 })
  return { status: res.status, report: JSON.parse(res.stdout) as LintReport }
}

/** Instructions with continuation lines joined and comments dropped. */
function instructions (text: string): Array<{ cmd: string, args: string }> {
  const out: Array<{ cmd: string, args: string }> = []
  let partial = ''
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (line.endsWith('\\')) { partial += line.slice(0, -1) + ' '; continue }
    const whole = (partial + line).trim()
    partial = ''
    const m = /^(\S+)\s+(.*)$/.exec(whole)
    if (m !== null) out.push({ cmd: (m[1] ?? '').toUpperCase(), args: m[2] ?? '' })
  }
  return out
}

const all = instructions(dockerfile)
const lastFrom = all.map((i) => i.cmd).lastIndexOf('FROM')
const runtime = all.slice(lastFrom)

t.test('dockerfilelint finds no problems in the Dockerfile', async (t) => {
  const { status, report } = lint(join(root, 'Dockerfile'))
  t.same(report.files[0]?.issues ?? [], [], 'no issues')
  t.equal(report.totalIssues, 0)
  t.equal(status, 0)
})

t.test('dockerfilelint rejects a Dockerfile with the traps it knows', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dockerfilelint-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bad = join(dir, 'Dockerfile')
  writeFileSync(bad, 'FROM node\nRUN apt-get update && apt-get install python3\nexpose 80:9095\nCMD ["node", "dist/cli.js"]\n')
  const { status, report } = lint(bad)
  const titles = (report.files[0]?.issues ?? []).map((i) => i.title)
  t.ok(report.totalIssues >= 4, `found ${report.totalIssues} issues`)
  t.not(status, 0, 'non-zero exit')
  t.ok(titles.some((s) => /tag/i.test(s)), 'untagged base image reported')
  t.ok(titles.some((s) => /-y/i.test(s) || /recommends/i.test(s)), 'unattended apt-get reported')
})

t.test('base images are pinned by tag and the runtime is Node 20 on Debian 12', async (t) => {
  const froms = all.filter((i) => i.cmd === 'FROM').map((i) => (i.args.split(/\s+/)[0] ?? ''))
  t.equal(froms.length, 2, 'a build stage and a runtime stage')
  for (const image of froms) {
    t.match(image, /:[\w.-]+$/, `${image} has a tag`)
    t.notMatch(image, /:latest$/, `${image} is not :latest`)
  }
  t.match(froms[0], /^node:20-bookworm-slim$/)
  t.match(froms[1], /^gcr\.io\/distroless\/nodejs20-debian12:/)
})

t.test('the runtime runs as a numeric non-root user with /data as the only state', async (t) => {
  const user = runtime.filter((i) => i.cmd === 'USER').map((i) => i.args)
  t.same(user, ['10001:10001'], 'numeric uid:gid, so runAsNonRoot can verify it')
  const env = runtime.filter((i) => i.cmd === 'ENV').map((i) => i.args).join(' ')
  t.match(env, /\bDATA_DIR=\/data\b/)
  t.match(env, /\bPORT=9095\b/)
  t.ok(runtime.some((i) => i.cmd === 'VOLUME' && i.args.includes('"/data"')), 'VOLUME /data')
  t.ok(runtime.some((i) => i.cmd === 'EXPOSE' && i.args === '9095'), 'EXPOSE 9095')
  t.ok(runtime.some((i) => i.cmd === 'WORKDIR' && i.args === '/app'), 'WORKDIR /app')
  t.ok(runtime.some((i) => i.cmd === 'COPY' && /--chown=10001:10001\s+\S+\s+\/data$/.test(i.args)), '/data owned by the service user')
  t.notOk(runtime.some((i) => i.cmd === 'RUN'), 'nothing runs in the distroless stage (no shell there)')
})

t.test('CMD and HEALTHCHECK are exec-form JSON that start node directly', async (t) => {
  const cmd = runtime.filter((i) => i.cmd === 'CMD')
  t.equal(cmd.length, 1)
  t.same(JSON.parse(cmd[0]?.args ?? 'null'), ['dist/cli.js', 'serve'], 'node (the entrypoint) runs the CLI; no npm in between')
  const hc = runtime.find((i) => i.cmd === 'HEALTHCHECK')
  const m = /\bCMD\s+(\[.*\])$/.exec(hc?.args ?? '')
  const argv = JSON.parse(m?.[1] ?? 'null') as string[]
  t.equal(argv[0], '/nodejs/bin/node')
  t.match(argv[2], /\/-\/healthy/)
})

t.test('every COPY from the build context exists and is allowed by .dockerignore', async (t) => {
  const ignore = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  t.equal(ignore[0], '*', 'allow-list: everything excluded first')
  const allowed = new Set(ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, '')))
  for (const name of ['node_modules', 'data', 'dist', '.git', '.env']) t.notOk(allowed.has(name), `${name} stays out of the context`)
  const sources = all
    .filter((i) => i.cmd === 'COPY' && !i.args.includes('--from='))
    .flatMap((i) => i.args.split(/\s+/).filter((w) => !w.startsWith('--')).slice(0, -1))
  t.ok(sources.length >= 5, 'copies package files, tsconfig, src, rules, runbooks')
  for (const src of sources) {
    const clean = src.replace(/\/$/, '')
    t.ok(allowed.has(clean), `${clean} is in the .dockerignore allow-list`)
    t.ok(existsSync(join(root, clean)), `${clean} exists in the repo`)
  }
})
