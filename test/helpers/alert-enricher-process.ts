import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { listeningPort, supervise, tail, waitReady } from './prometheus.js'

// The real service as a process (`node dist/cli.js serve`, built by `npm run build`), with
// fake Slack/PagerDuty receivers on 127.0.0.1 and a fixed traffic script, so observability
// tests see the metrics a production scrape would.

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const FIXTURES_DIR = join(REPO_ROOT, 'test/fixtures/alertmanager')
export const PAGERDUTY_ROUTING_KEY = 'R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY00' // 32 chars, fake

export interface FakeDestinations {
  pagerdutyUrl: string
  slackIncidentResponseUrl: string
  slackAlertsUrl: string
  /** Requests received per path ('/pagerduty', '/slack/alerts', …). */
  received: Map<string, number>
  close (): Promise<void>
}

/**
 * PagerDuty answers 202 like Events API v2; #incident-response answers 200 `ok`;
 * #alerts answers 400 `invalid_payload` to its first `slackAlertsFailures` requests (a
 * permanent error, so a dead letter), then 200 `ok`.
 */
export async function startFakeDestinations (opts: { slackAlertsFailures: number }): Promise<FakeDestinations> {
  const received = new Map<string, number>()
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = req.url ?? ''
      const n = (received.get(path) ?? 0) + 1
      received.set(path, n)
      if (req.method !== 'POST') {
        res.writeHead(405).end()
      } else if (path === '/pagerduty') {
        res.writeHead(202, { 'content-type': 'application/json' })
          .end(JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: 'x' }))
      } else if (path === '/slack/alerts' && n <= opts.slackAlertsFailures) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('invalid_payload')
      } else if (path.startsWith('/slack/')) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
      } else {
        res.writeHead(404).end()
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  return {
    pagerdutyUrl: `${base}/pagerduty`,
    slackIncidentResponseUrl: `${base}/slack/incident-response`,
    slackAlertsUrl: `${base}/slack/alerts`,
    received,
    close: async () => await new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}

export interface ServiceProcess {
  url: string
  /** host:port, as a Prometheus scrape target. */
  target: string
  port: number
  dataDir: string
  /** Of the child process, e.g. to send it SIGHUP. */
  pid: number
  output (): string
  /** SIGTERM (graceful), then SIGKILL after a grace period; removes DATA_DIR unless the caller owns it. */
  stop (): Promise<void>
  /** SIGKILL now, as a crash would; resolves once the process is gone. DATA_DIR is kept. */
  kill (): Promise<void>
}

export interface ServiceProcessOptions {
  cliPath?: string
  readyTimeoutMs?: number
  /** Listen here instead of on a port of its own (PORT=0, read back from its log). */
  port?: number
  /** Use (and keep) this DATA_DIR instead of a temp one removed by stop(): restarts share it. */
  dataDir?: string
  /** How much of stdout+stderr output() keeps (default 8000 characters: enough to explain a failure). */
  maxOutputChars?: number
  /** false: return once it listens, without waiting for /-/ready (a start while its database is down). */
  waitForReady?: boolean
}

/**
 * Spawns `node dist/cli.js serve` (PORT=0 and a temp DATA_DIR unless told), reads the port it
 * bound from its 'alert-enricher serving' log line, and waits for /-/ready (unless told not to).
 */
export async function startServiceProcess (env: Record<string, string>, opts: ServiceProcessOptions = {}): Promise<ServiceProcess> {
  const logLevel = env.LOG_LEVEL ?? 'info'
  if (!['trace', 'debug', 'info'].includes(logLevel)) throw new Error(`LOG_LEVEL=${logLevel}: the bound port is read from an info line; use info or lower`)
  const ownsDataDir = opts.dataDir === undefined
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'alert-enricher-data-'))
  const child = spawn(process.execPath, [opts.cliPath ?? join(REPO_ROOT, 'dist/cli.js'), 'serve'], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOST: '127.0.0.1',
      PORT: String(opts.port ?? 0),
      DATA_DIR: dataDir,
      CATALOG_PATH: join(REPO_ROOT, 'rules/catalog.yaml'),
      ...env,
      LOG_LEVEL: logLevel
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output = tail(child, opts.maxOutputChars)
  // kill() keeps the data dir: a crash test restarts on it.
  const { stop, kill } = supervise(child, () => { if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true }) })
  const readyTimeoutMs = opts.readyTimeoutMs ?? 20_000
  const port = await listeningPort('alert-enricher', child, output, readyTimeoutMs, servingPort).catch(async (err: unknown) => { await stop(); throw err })
  const url = `http://127.0.0.1:${port}`
  if (opts.waitForReady !== false) await waitReady('alert-enricher', url, readyTimeoutMs, child, output, stop)
  return { url, target: `127.0.0.1:${port}`, port, dataDir, pid: child.pid ?? 0, output, stop, kill }
}

/** The port in the service's JSON log line `alert-enricher serving` ({"address":"http://127.0.0.1:40123",…}). */
export function servingPort (line: string): number | undefined {
  if (!line.includes('"msg":"alert-enricher serving"')) return undefined
  const m = /"address":"https?:\/\/[^"]*:(\d+)"/.exec(line)
  return m === null ? undefined : Number(m[1])
}

/** Env wiring the bundled catalog's destinations to the fakes (secrets are fake too). */
export function destinationEnv (fakes: FakeDestinations): Record<string, string> {
  return {
    PAGERDUTY_ROUTING_KEY,
    PAGERDUTY_EVENTS_URL: fakes.pagerdutyUrl,
    SLACK_WEBHOOK_URL_INCIDENT_RESPONSE: fakes.slackIncidentResponseUrl,
    SLACK_WEBHOOK_URL_ALERTS: fakes.slackAlertsUrl
  }
}

export interface TrafficResult { fixture: string, status: number }

/**
 * The known traffic the tests assert on: every Alertmanager fixture (2: one P0 group of two
 * critical HighErrorRate alerts, one P2 group of one warning), one body that is not JSON and
 * one JSON body of the wrong shape.
 */
export async function sendKnownTraffic (url: string): Promise<TrafficResult[]> {
  const bodies: Array<[string, string]> = readdirSync(FIXTURES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => [f, readFileSync(join(FIXTURES_DIR, f), 'utf8')])
  bodies.push(['bad-json', '{"version": "4", "alerts": ['])
  bodies.push(['wrong-shape', JSON.stringify({ hello: 'world' })])
  const results: TrafficResult[] = []
  for (const [fixture, body] of bodies) {
    const res = await fetch(`${url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    await res.arrayBuffer()
    results.push({ fixture, status: res.status })
  }
  return results
}

export async function scrape (url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`)
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`)
  return await res.text()
}

export interface Sample { name: string, labels: Record<string, string>, value: number }

/** Parses Prometheus text exposition samples (comments skipped). */
export function parseExposition (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_s, c: string) => c === 'n' ? '\n' : c)
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  return samples
}

/** Sum of the samples of `name` whose labels include `match` (undefined if there are none). */
export function sampleSum (samples: Sample[], name: string, match: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
  return hits.length === 0 ? undefined : hits.reduce((a, s) => a + s.value, 0)
}
