import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import semver from 'semver'

// What a fresh clone has: the README's commands must work from it alone, and `npm ci` must not
// install a package that refuses the Node version the project declares and ships.

const root = fileURLToPath(new URL('../', import.meta.url))
const readme = readFileSync(`${root}README.md`, 'utf8')
const shellBlocks = [...readme.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)].map((m) => m[1] ?? '')

t.test('README commands name no file outside the clone', async (t) => {
  const outside = shellBlocks.flatMap((b) => b.split('\n')).filter((line) => /(^|[\s@='"])\.\.\//.test(line))
  t.same(outside, [])
})

t.test('files the README feeds to curl and explain exist and are Alertmanager payloads', async (t) => {
  const files = shellBlocks.flatMap((b) => [...b.matchAll(/(?:--data @|explain )([\w.-]+\/[\w./-]+\.json)/g)].map((m) => m[1] ?? ''))
  t.ok(files.length >= 2, 'the README shows a payload for preview and for explain')
  for (const file of files) {
    t.ok(existsSync(`${root}${file}`), `${file} is in the repo`)
    const body = JSON.parse(readFileSync(`${root}${file}`, 'utf8')) as { version?: string, alerts?: unknown[] }
    t.equal(body.version, '4', `${file} is a webhook payload`)
    t.ok((body.alerts?.length ?? 0) > 0, `${file} has alerts`)
  }
})

const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { engines: { node: string } }
const lock = JSON.parse(readFileSync(`${root}package-lock.json`, 'utf8')) as
  { packages: Record<string, { version?: string, engines?: Record<string, string> | string[] }> }

t.test('the Dockerfile ships the Node major that package.json engines declares', async (t) => {
  const dockerfile = readFileSync(`${root}Dockerfile`, 'utf8')
  const majors = [...dockerfile.matchAll(/^FROM \S*node(?:js)?:?(\d+)/gm)].map((m) => Number(m[1]))
  t.ok(majors.length >= 2, 'build and runtime stages name a Node major')
  const floor = semver.minVersion(pkg.engines.node)
  t.ok(floor !== null, `engines.node ${pkg.engines.node} has a lowest version`)
  for (const major of majors) t.equal(major, floor?.major, `Dockerfile Node ${major} is engines' major`)
})

t.test("every locked package's engines.node accepts the lowest Node that package.json allows", async (t) => {
  const floor = semver.minVersion(pkg.engines.node)?.version ?? ''
  const refusing = Object.entries(lock.packages).flatMap(([path, meta]) => {
    const range = Array.isArray(meta.engines) ? undefined : meta.engines?.node
    return range === undefined || semver.satisfies(floor, range) ? [] : [`${path}@${meta.version ?? '?'} wants node ${range}`]
  })
  t.same(refusing, [], `all packages run on Node ${floor}`)
})
