import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// A real Prometheus (the Debian package's /usr/bin/prometheus) for tests: temp config, temp
// TSDB, a 127.0.0.1 port of its own (bound as 0), bounded waits, and always killed — by stop(), and by a
// process 'exit' hook in case a test dies before its teardown runs.

export const PROMETHEUS_BIN = '/usr/bin/prometheus'
export const PROMTOOL_BIN = '/usr/bin/promtool'

export interface PrometheusOptions {
  targets: string[]              // host:port of each scrape target
  scrapeInterval?: string        // e.g. '1s'; also the rule evaluation interval
  ruleFiles?: string[]           // absolute paths
  jobName?: string               // default 'alert-enricher' (what the self-alerts select)
  readyTimeoutMs?: number
}

export interface PromApiResponse<T> {
  status: 'success' | 'error'
  data?: T
  errorType?: string
  error?: string
  warnings?: string[]
}

export interface PromVectorSample { metric: Record<string, string>, value: [number, string] }
export interface PromMatrixSeries { metric: Record<string, string>, values: Array<[number, string]> }
export type PromQueryData =
  | { resultType: 'vector', result: PromVectorSample[] }
  | { resultType: 'matrix', result: PromMatrixSeries[] }
  | { resultType: 'scalar' | 'string', result: [number, string] }

export interface PromTarget { health: 'up' | 'down' | 'unknown', scrapeUrl: string, lastError: string, labels: Record<string, string> }
export interface PromRule { name: string, type: 'alerting' | 'recording', health: string, lastError?: string, state?: string }
export interface PromAlert { labels: Record<string, string>, annotations: Record<string, string>, state: 'pending' | 'firing', value: string }

export interface RunningPrometheus {
  url: string
  query (expr: string): Promise<PromApiResponse<PromQueryData>>
  queryRange (expr: string, startSeconds: number, endSeconds: number, stepSeconds: number): Promise<PromApiResponse<PromQueryData>>
  labelValues (label: string, match?: string): Promise<PromApiResponse<string[]>>
  targets (): Promise<PromTarget[]>
  rules (): Promise<PromRule[]>
  alerts (): Promise<PromAlert[]>
  waitForTargetsUp (timeoutMs?: number): Promise<void>
  /** Recent stdout/stderr of the Prometheus process, for failure messages. */
  output (): string
  stop (): Promise<void>
}

/** A port that was free a moment ago on 127.0.0.1 (bind :0, read, close). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => port > 0 ? resolve(port) : reject(new Error('no port assigned')))
    })
  })
}

/**
 * The port a child bound to port 0 reports in its log (`parse` maps one output line to a port,
 * or undefined). Binding 0 leaves no window in which another process can take the port, as
 * picking a free one and passing it on does. Rejects if the child exits or `timeoutMs` passes.
 */
export async function listeningPort (name: string, child: ChildProcess, output: () => string, timeoutMs: number, parse: (line: string) => number | undefined): Promise<number> {
  return await new Promise((resolve, reject) => {
    let partial = ''
    const onData = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString('utf8')).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        const port = parse(line)
        if (port !== undefined && port > 0) return done(undefined, port)
      }
    }
    const onExit = (code: number | null, signal: string | null): void => { done(new Error(`${name} exited with ${code ?? signal} before reporting its port:\n${output()}`)) }
    const timer = setTimeout(() => { done(new Error(`${name} reported no listening port within ${timeoutMs} ms:\n${output()}`)) }, timeoutMs)
    const done = (err: Error | undefined, port?: number): void => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.stderr?.off('data', onData)
      child.off('exit', onExit)
      if (err !== undefined) reject(err)
      else resolve(port as number)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', onExit)
  })
}

/** Prometheus' and Alertmanager's (exporter-toolkit) line once bound: msg="Listening on" address=127.0.0.1:40123. */
export function goListeningPort (line: string): number | undefined {
  const m = /msg="Listening on" address=\S*:(\d+)/.exec(line)
  return m === null ? undefined : Number(m[1])
}

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Keeps the last `max` characters of a stream, enough to explain a failure. */
export function tail (child: ChildProcess, max = 8000): () => string {
  let text = ''
  const keep = (chunk: Buffer): void => { text = (text + chunk.toString('utf8')).slice(-max) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return () => text
}

/** Sends SIGTERM, waits (bounded) for exit, then SIGKILL. */
export async function terminate (child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/**
 * Ties a spawned server's life to the test's: SIGKILLed if the test process exits first;
 * `stop` terminates it once, then runs `cleanup`; `kill` SIGKILLs it (a crash) and waits.
 */
export function supervise (child: ChildProcess, cleanup: () => void): { stop: () => Promise<void>, kill: () => Promise<void> } {
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let stopped = false
  return {
    async stop () {
      if (stopped) return
      stopped = true
      await terminate(child)
      process.removeListener('exit', killOnExit)
      cleanup()
    },
    async kill () {
      stopped = true
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
      process.removeListener('exit', killOnExit)
    }
  }
}

/**
 * Polls `<url>/-/ready` (the Prometheus, Alertmanager and alert-enricher convention) until it
 * answers 200, within `timeoutMs`. If the child exits or time runs out, stops it and throws
 * with the tail of its output.
 */
export async function waitReady (name: string, url: string, timeoutMs: number, child: ChildProcess, output: () => string, stop: () => Promise<void>): Promise<void> {
  try {
    await waitUntil(`${name} ready at ${url}/-/ready`, timeoutMs, async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${output()}`)
      const res = await fetch(`${url}/-/ready`).catch(() => undefined)
      return res?.status === 200
    }, output)
  } catch (err) {
    await stop()
    throw err
  }
}

function configYaml (opts: PrometheusOptions): string {
  const interval = opts.scrapeInterval ?? '1s'
  // JSON is valid YAML; no YAML library needed to write it.
  return JSON.stringify({
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: opts.ruleFiles ?? [],
    scrape_configs: [{ job_name: opts.jobName ?? 'alert-enricher', static_configs: [{ targets: opts.targets }] }]
  }, null, 2)
}

export async function startPrometheus (opts: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'alert-enricher-prometheus-'))
  const configFile = join(dir, 'prometheus.yml')
  writeFileSync(configFile, configYaml(opts))
  // Port 0, read back from its log line (hence log level info).
  const child = spawn(PROMETHEUS_BIN, [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    '--web.listen-address=127.0.0.1:0',
    '--log.level=info'
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  const output = tail(child)
  const { stop } = supervise(child, () => { rmSync(dir, { recursive: true, force: true }) })
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000
  const port = await listeningPort('Prometheus', child, output, readyTimeoutMs, goListeningPort).catch(async (err: unknown) => { await stop(); throw err })
  const url = `http://127.0.0.1:${port}`

  const api = async <T>(path: string, params: Record<string, string> = {}): Promise<PromApiResponse<T>> => {
    const res = await fetch(`${url}${path}?${new URLSearchParams(params).toString()}`)
    return await res.json() as PromApiResponse<T>
  }
  const data = async <T>(path: string): Promise<T> => {
    const body = await api<T>(path)
    if (body.status !== 'success' || body.data === undefined) throw new Error(`${path}: ${body.errorType ?? ''} ${body.error ?? ''}`)
    return body.data
  }

  await waitReady('Prometheus', url, readyTimeoutMs, child, output, stop)

  return {
    url,
    query: async (expr) => await api<PromQueryData>('/api/v1/query', { query: expr }),
    queryRange: async (expr, start, end, step) => await api<PromQueryData>('/api/v1/query_range', { query: expr, start: String(start), end: String(end), step: String(step) }),
    labelValues: async (label, match) => await api<string[]>(`/api/v1/label/${encodeURIComponent(label)}/values`, match !== undefined ? { 'match[]': match } : {}),
    targets: async () => (await data<{ activeTargets: PromTarget[] }>('/api/v1/targets')).activeTargets,
    rules: async () => (await data<{ groups: Array<{ rules: PromRule[] }> }>('/api/v1/rules')).groups.flatMap((g) => g.rules),
    alerts: async () => (await data<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts,
    async waitForTargetsUp (timeoutMs = 30_000) {
      let last: PromTarget[] = []
      await waitUntil('every scrape target up', timeoutMs, async () => {
        last = await data<{ activeTargets: PromTarget[] }>('/api/v1/targets').then((d) => d.activeTargets)
        return last.length === opts.targets.length && last.every((t) => t.health === 'up')
      }, () => JSON.stringify(last.map((t) => ({ url: t.scrapeUrl, health: t.health, lastError: t.lastError }))))
    },
    output,
    stop
  }
}

/** Polls `check` every 250 ms until it returns true; throws after `timeoutMs` (bounded loop). */
export async function waitUntil (what: string, timeoutMs: number, check: () => Promise<boolean>, explain?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      if (await check()) return
    } catch (err) {
      lastError = err
      if (err instanceof Error && err.message.includes('exited with')) throw err
    }
    await sleep(250)
  }
  const detail = explain?.() ?? (lastError instanceof Error ? lastError.message : '')
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail !== '' ? `: ${detail}` : ''}`)
}
