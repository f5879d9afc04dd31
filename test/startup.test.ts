import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { REPO_ROOT, startServiceProcess } from './helpers/alert-enricher-process.js'

// A start that fails ends the process, non-zero, with one clear line: supervisors and
// Kubernetes see it. Nothing is sent by a process that never listened.

async function serveOnce (env: Record<string, string>): Promise<{ code: number | null, stderr: string }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/cli.js'), 'serve'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOST: '127.0.0.1', LOG_LEVEL: 'error', ...env },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => { resolve(c) }))
  clearTimeout(timer)
  return { code, stderr }
}

t.test('the port is taken: exit 1 with one line naming the address', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const dataDir = t.testdir()
  const { code, stderr } = await serveOnce({ PORT: String(port), DATA_DIR: dataDir })
  t.equal(code, 1, 'exits non-zero instead of running without a listener')
  t.equal(stderr.trim(), `cannot listen on 127.0.0.1:${port}: address already in use`)
})

t.test('a second instance on the same data directory refuses to start, naming it and the holder', async (t) => {
  const first = await startServiceProcess({})
  t.teardown(first.stop)
  const { code, stderr } = await serveOnce({ PORT: '0', DATA_DIR: first.dataDir })
  t.equal(code, 1)
  t.equal(stderr.trim(), `data directory ${first.dataDir} is in use by another alert-enricher (pid ${first.pid}); refusing to start`)
  t.equal((await fetch(`${first.url}/-/ready`)).status, 200, 'the first instance is untouched')
  const deliveries = await fetch(`${first.url}/api/v1/deliveries?state=sending`).then(async (r) => await r.json() as { deliveries: unknown[] })
  t.same(deliveries.deliveries, [], 'and none of its claims were returned')
})
