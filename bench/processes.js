// Black-box parts for the PagerDuty benchmarks: the service as a process (`node dist/cli.js
// serve`), a real Alertmanager, and a timing PagerDuty receiver. Everything binds port 0 and
// reads back the port it got; every wait has a bound.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))
export const ALERTMANAGER_BIN = '/usr/bin/prometheus-alertmanager'
export const ROUTING_KEY = 'benchroutingkeybenchroutingkey01' // 32 chars, fake
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Records when each Events API v2 request arrives (performance.now(), the bench's clock) and
 * answers 202 like PagerDuty. Only a timing receiver: the contract itself is enforced by
 * test/helpers/fake-pagerduty.ts, which the tests run the same senders against.
 */
export async function startTimingPagerDuty () {
  const arrivals = [] // { at, path, body }
  const waiters = new Set()
  const server = createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const at = performance.now()
      const body = Buffer.concat(chunks).toString('utf8')
      let event
      try { event = JSON.parse(body) } catch (err) { event = { parseError: String(err) } }
      if (req.method !== 'POST' || !req.url.endsWith('/v2/enqueue') || typeof event.routing_key !== 'string' || event.routing_key.length !== 32) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'invalid event', message: 'Event object is invalid' }))
        return
      }
      arrivals.push({ at, path: req.url, body })
      for (const w of waiters) w()
      res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: event.dedup_key ?? 'x' }))
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${server.address().port}`
  return {
    base,
    arrivals,
    /** Resolves with the first arrival matching `match`, or rejects after timeoutMs. */
    waitFor (match, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = arrivals.find(match)
          if (hit === undefined) return false
          clearTimeout(timer)
          waiters.delete(check)
          resolve(hit)
          return true
        }
        const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`no matching PagerDuty event within ${timeoutMs} ms (${arrivals.length} received)`)) }, timeoutMs)
        if (!check()) waiters.add(check)
      })
    },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

// Resolves with the port `parse` finds in the child's output; rejects on exit or timeout.
function listeningPort (name, child, output, timeoutMs, parse) {
  return new Promise((resolve, reject) => {
    let partial = ''
    const onData = (chunk) => {
      const lines = (partial + chunk.toString('utf8')).split('\n')
      partial = lines.pop()
      for (const line of lines) {
        const port = parse(line)
        if (port !== undefined) return done(undefined, port)
      }
    }
    const onExit = (code, signal) => done(new Error(`${name} exited (${code ?? signal}) before reporting its port:\n${output()}`))
    const timer = setTimeout(() => done(new Error(`${name} reported no port within ${timeoutMs} ms:\n${output()}`)), timeoutMs)
    function done (err, port) {
      clearTimeout(timer)
      child.stdout.off('data', onData)
      child.stderr.off('data', onData)
      child.off('exit', onExit)
      if (err !== undefined) reject(err)
      else resolve(port)
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', onExit)
  })
}

function supervised (name, child, cleanup) {
  let text = ''
  const keep = (c) => { text = (text + c.toString('utf8')).slice(-8000) }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  const exited = new Promise((resolve) => child.once('exit', resolve))
  return {
    output: () => text,
    async stop () {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
        await exited
        clearTimeout(timer)
      }
      process.removeListener('exit', killOnExit)
      cleanup()
    }
  }
}

async function waitReady (name, url, timeoutMs, output) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const res = await fetch(`${url}/-/ready`).catch(() => undefined)
    if (res !== undefined) await res.arrayBuffer()
    if (res?.status === 200) return
    await sleep(100)
  }
  throw new Error(`${name} not ready within ${timeoutMs} ms:\n${output()}`)
}

/** `node dist/cli.js serve` on PORT=0 with a temp DATA_DIR; the port comes from its 'alert-enricher serving' line. */
export async function startService (env) {
  const dataDir = mkdtempSync(join(tmpdir(), 'ae-pd-bench-'))
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/cli.js'), 'serve'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', DATA_DIR: dataDir, CATALOG_PATH: join(REPO_ROOT, 'rules/catalog.yaml'), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const proc = supervised('alert-enricher', child, () => rmSync(dataDir, { recursive: true, force: true }))
  try {
    const port = await listeningPort('alert-enricher', child, proc.output, 20_000, (line) => {
      if (!line.includes('"msg":"alert-enricher serving"')) return undefined
      const m = /"address":"https?:\/\/[^"]*:(\d+)"/.exec(line)
      return m === null ? undefined : Number(m[1])
    })
    const url = `http://127.0.0.1:${port}`
    await waitReady('alert-enricher', url, 20_000, proc.output)
    return { url, ...proc }
  } catch (err) {
    await proc.stop()
    throw err
  }
}

export const alertmanagerInstalled = () => existsSync(ALERTMANAGER_BIN)

/** A real Alertmanager on 127.0.0.1:0 (port from its "Listening on" line), HA gossip off. */
export async function startAlertmanager (configYaml) {
  const dir = mkdtempSync(join(tmpdir(), 'ae-pd-bench-am-'))
  writeFileSync(join(dir, 'alertmanager.yml'), configYaml)
  const child = spawn(ALERTMANAGER_BIN, [
    `--config.file=${join(dir, 'alertmanager.yml')}`,
    `--storage.path=${join(dir, 'data')}`,
    '--web.listen-address=127.0.0.1:0',
    '--cluster.listen-address=',
    '--log.level=info'
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  const proc = supervised('Alertmanager', child, () => rmSync(dir, { recursive: true, force: true }))
  try {
    const port = await listeningPort('Alertmanager', child, proc.output, 30_000, (line) => {
      const m = /msg="Listening on" address=\S*:(\d+)/.exec(line)
      return m === null ? undefined : Number(m[1])
    })
    const url = `http://127.0.0.1:${port}`
    await waitReady('Alertmanager', url, 30_000, proc.output)
    return {
      url,
      ...proc,
      async postAlerts (alerts) {
        const res = await fetch(`${url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alerts), signal: AbortSignal.timeout(5_000) })
        const text = await res.text()
        if (res.status !== 200) throw new Error(`POST /api/v2/alerts: ${res.status} ${text}`)
      }
    }
  } catch (err) {
    await proc.stop()
    throw err
  }
}

export function median (xs) { return quantile(xs, 0.5) }
export function quantile (xs, q) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}
