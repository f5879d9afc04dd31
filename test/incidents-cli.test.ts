import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { buildTestApp, fixture, REPO } from './helpers/app.js'

// `alert-enricher incidents` and `ack` (the built CLI) against a listening app.

const run = promisify(execFile)
const ADMIN = 'cli-admin-token'

async function cli (env: Record<string, string>, ...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const r = await run(process.execPath, [join(REPO, 'dist/cli.js'), ...args], { cwd: REPO, timeout: 30_000, env: { PATH: process.env.PATH ?? '', ...env } })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (err) {
    const e = err as { code?: number, stdout?: string, stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

t.test('incidents lists the open ones; ack acknowledges; errors are plain and exit non-zero', async (t) => {
  const h = await buildTestApp({ adminToken: ADMIN })
  t.teardown(h.close)
  const address = await h.app.listen({ port: 0, host: '127.0.0.1' })
  const env = { ALERT_ENRICHER_URL: address, ADMIN_BEARER_TOKEN: ADMIN }
  t.equal((await h.app.inject({ method: 'POST', url: '/webhook', headers: { 'content-type': 'application/json' }, payload: fixture('firing-two-critical.json') })).statusCode, 200)

  const list = await cli(env, 'incidents')
  t.equal(list.code, 0, list.stderr)
  t.match(list.stdout, /^1\tP0\ttriggered\trespond by 2026-11-26T20:15:55\.000Z.*\tHighErrorRate: Error rate above 5% for pynomaly-api\n$/)

  const ack = await cli(env, 'ack', '1', '--by', 'ana')
  t.equal(ack.code, 0, ack.stderr)
  t.match(ack.stdout, /^1\tP0\tacknowledged\t.*acked by ana via api/)
  t.match((await cli(env, 'incidents', '--state', 'acknowledged')).stdout, /^1\tP0\tacknowledged/)
  t.equal((await cli(env, 'incidents', '--state', 'triggered')).stdout, '\n', 'none left triggered')
  const json = await cli(env, 'incidents', '--json')
  t.match(JSON.parse(json.stdout), [{ id: 1, state: 'acknowledged', acknowledgedBy: 'ana' }])

  const unknown = await cli(env, 'ack', '99', '--by', 'ana')
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /no incident 99/)
  t.equal((await cli(env, 'ack', '1')).code, 2, '--by is required')
  const bad = await cli(env, 'incidents', '--state', 'open')
  t.equal(bad.code, 1)
  t.match(bad.stderr, /triggered\|acknowledged\|resolved/)
  const denied = await cli({ ALERT_ENRICHER_URL: address }, 'incidents')
  t.equal(denied.code, 1, 'without the admin token')
  const down = await cli({ ALERT_ENRICHER_URL: 'http://127.0.0.1:1' }, 'incidents')
  t.equal(down.code, 1)
  t.match(down.stderr, /cannot reach http:\/\/127\.0\.0\.1:1/)
})
