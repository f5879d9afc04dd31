import t from 'tap'
import Fastify from 'fastify'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { runbooksRoutes } from '../src/routes/runbooks.js'
import { renderRunbookHtml } from '../src/runbooks/render.js'
import { headingAnchors } from '../src/runbooks/anchors.js'

const runbooksDir = new URL('../runbooks/', import.meta.url).pathname
const catalog = parse(readFileSync(new URL('../rules/catalog.yaml', import.meta.url), 'utf8')) as { entries: Array<{ runbook?: string }> }

async function app (dir = runbooksDir) {
  const a = Fastify()
  await a.register(runbooksRoutes, { runbooksDir: dir })
  return a
}

const ids = (html: string) => new Set([...html.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]))

t.test('every section a runbook link can name has that id in the served HTML', async (t) => {
  const a = await app()
  t.teardown(() => a.close())
  const refs = [
    'incident_response_playbook.md#critical-alerts-p0', 'incident_response_playbook.md#database-issues',
    'incident_response_playbook.md#security-incident-response', 'deployment_runbook.md#production-deployment',
    'deployment_runbook.md#emergency-rollback', 'deployment_runbook.md#configuration-management',
    'operational_monitoring_guide.md#performance-tuning-guidelines', 'operational_monitoring_guide.md#alert-hierarchy-and-response',
    'operational_monitoring_guide.md#capacity-planning', 'alert_rules.md#deploymentrolloutstuck',
    'alert_enricher_operations.md#alertenricherdown',
    ...catalog.entries.flatMap((e) => e.runbook !== undefined ? [e.runbook] : [])
  ]
  const pages = new Map<string, Set<string | undefined>>()
  for (const ref of refs) {
    const [file = '', anchor = ''] = ref.split('#')
    if (!pages.has(file)) {
      const res = await a.inject({ method: 'GET', url: `/runbooks/${file}` })
      t.equal(res.statusCode, 200, `GET /runbooks/${file}`)
      t.equal(res.headers['content-type'], 'text/html; charset=utf-8')
      t.match(String(res.headers['content-security-policy']), /default-src 'none'/)
      t.notMatch(res.body, /<script/i, 'no script in the page')
      pages.set(file, ids(res.body))
    }
    t.ok(pages.get(file)?.has(anchor), `${ref} has id="${anchor}"`)
  }
})

t.test('rendered ids are exactly headingAnchors() for every runbook', async (t) => {
  for (const file of readdirSync(runbooksDir).filter((f) => f.endsWith('.md'))) {
    const md = readFileSync(join(runbooksDir, file), 'utf8')
    const html = renderRunbookHtml(md, file)
    const rendered = [...html.matchAll(/<h[1-6] id="([^"]+)"/g)].map((m) => m[1])
    t.same(rendered, headingAnchors(md).map((h) => h.slug), file)
  }
})

t.test('duplicate headings, inline markup and raw HTML', async (t) => {
  const md = '# Title\n\n## Critical Alerts (P0)\n\n## Critical Alerts (P0)\n\n### `kubectl` & *Database* Issues\n\n<script>alert(1)</script>\n\n## [Linked](other.md)\n'
  const html = renderRunbookHtml(md, 'T <x>')
  t.same([...html.matchAll(/<h[1-6] id="([^"]+)"/g)].map((m) => m[1]), ['title', 'critical-alerts-p0', 'critical-alerts-p0-1', 'kubectl--database-issues', 'linked'])
  t.notMatch(html, /<script/i)
  t.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/)
  t.match(html, /<title>T &lt;x&gt;<\/title>/)
  t.notMatch(html, /<a [^>]*><a /, 'no link nested inside the heading self-link')
})

t.test('the index lists the runbooks as links', async (t) => {
  const a = await app()
  t.teardown(() => a.close())
  const res = await a.inject({ method: 'GET', url: '/runbooks/' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/html; charset=utf-8')
  for (const f of ['README.md', 'incident_response_playbook.md', 'deployment_runbook.md', 'operational_monitoring_guide.md', 'alert_rules.md', 'alert_enricher_operations.md']) {
    t.match(res.body, `<a href="${f}">`, f)
  }
  const bare = await a.inject({ method: 'GET', url: '/runbooks' })
  t.equal(bare.statusCode, 301)
  t.equal(bare.headers.location, '/runbooks/')
})

t.test('raw=1 serves the markdown itself', async (t) => {
  const a = await app()
  t.teardown(() => a.close())
  const res = await a.inject({ method: 'GET', url: '/runbooks/deployment_runbook.md?raw=1' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/markdown; charset=utf-8')
  t.equal(res.body, readFileSync(join(runbooksDir, 'deployment_runbook.md'), 'utf8'))
})

t.test('only plain .md names inside the directory are served', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'runbooks-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dir = join(root, 'runbooks')
  mkdirSync(dir)
  mkdirSync(join(dir, 'sub.md'))
  writeFileSync(join(dir, 'ok.md'), '# OK\n')
  writeFileSync(join(root, 'secret.md'), '# SECRET\n')
  writeFileSync(join(dir, '.hidden.md'), '# HIDDEN\n')
  const a = await app(dir)
  t.teardown(() => a.close())

  t.equal((await a.inject({ method: 'GET', url: '/runbooks/ok.md' })).statusCode, 200)
  for (const url of ['/runbooks/..%2Fsecret.md', '/runbooks/%2e%2e%2fsecret.md', '/runbooks/..%5Csecret.md', '/runbooks/.hidden.md',
    '/runbooks/nope.md', '/runbooks/ok.txt', '/runbooks/sub.md', '/runbooks/ok.md%00.md']) {
    const res = await a.inject({ method: 'GET', url })
    t.equal(res.statusCode, 404, url)
    t.match(res.json(), { error: 'not_found', message: String }, `${url}: JSON error body`)
    t.notMatch(res.body, /SECRET|HIDDEN/, `${url}: nothing leaked`)
  }
  const escaped = await a.inject({ method: 'GET', url: '/runbooks/../secret.md' })
  t.not(escaped.statusCode, 200, 'an unencoded ../ does not reach the parent either')
  t.notMatch(escaped.body, /SECRET/)

  const index = await a.inject({ method: 'GET', url: '/runbooks/' })
  t.match(index.body, 'href="ok.md"')
  t.notMatch(index.body, /hidden|sub\.md/, 'hidden files and directories are not listed')
})
