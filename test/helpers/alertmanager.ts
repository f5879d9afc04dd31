import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { REPO_ROOT } from './alert-enricher-process.js'
import { goListeningPort, listeningPort, supervise, tail, waitReady } from './prometheus.js'

// A real Alertmanager (the Debian package's binary, installed by .ci/run) for end-to-end
// tests: temp config and storage, a 127.0.0.1 port of its own (bound as 0), HA gossip off, bounded waits, and
// always killed — by stop(), and by a process 'exit' hook if a test dies first.

export const ALERTMANAGER_BIN = '/usr/bin/prometheus-alertmanager'
export const EXAMPLE_CONFIG = join(REPO_ROOT, 'examples/alertmanager.yml')

export interface ExampleOverrides {
  webhookUrl: string
  credentialsFile: string
  groupWait: string
  groupInterval: string
}

interface WebhookConfig { url?: string, http_config?: { authorization?: { credentials_file?: string } } }
interface AmConfig { route?: Record<string, unknown> & { receiver?: string }, receivers?: Array<{ name?: string, webhook_configs?: WebhookConfig[] }> }

/**
 * examples/alertmanager.yml as users get it, pointed at a test service and token file, with
 * timers short enough for a test. Throws if the example no longer has the shape it documents.
 */
export function exampleConfigFor (o: ExampleOverrides): string {
  const cfg = parse(readFileSync(EXAMPLE_CONFIG, 'utf8')) as AmConfig
  const receiver = cfg.receivers?.find((r) => r.name === cfg.route?.receiver)
  const webhook = receiver?.webhook_configs?.[0]
  const auth = webhook?.http_config?.authorization
  if (cfg.route === undefined || webhook === undefined || auth === undefined) {
    throw new Error(`${EXAMPLE_CONFIG}: expected route.receiver → a receiver with webhook_configs[0].http_config.authorization`)
  }
  webhook.url = o.webhookUrl
  auth.credentials_file = o.credentialsFile
  cfg.route.group_wait = o.groupWait
  cfg.route.group_interval = o.groupInterval
  return stringify(cfg)
}

/** An alert as POST /api/v2/alerts takes it. */
export interface PostableAlert {
  labels: Record<string, string>
  annotations?: Record<string, string>
  startsAt?: string
  endsAt?: string
  generatorURL?: string
}

export interface RunningAlertmanager {
  url: string
  /** host:port of its HA gossip listener (when started with `cluster`). */
  clusterAddress?: string
  postAlerts (alerts: PostableAlert[]): Promise<void>
  /** Prometheus exposition of Alertmanager's own /metrics. */
  metrics (): Promise<string>
  output (): string
  stop (): Promise<void>
}

/** memberlist's debug line once its gossip port is bound (listen address :0). */
function gossipPort (line: string): number | undefined {
  const m = /Using dynamic bind port (\d+)/.exec(line)
  return m === null ? undefined : Number(m[1])
}

export interface AlertmanagerCluster {
  /** Gossip addresses of the peers already running (empty for the first). */
  peers: string[]
  /** How long a peer waits per position before notifying (Alertmanager's default is 15s). */
  peerTimeout?: string
}

export async function startAlertmanager (opts: { configYaml: string, readyTimeoutMs?: number, cluster?: AlertmanagerCluster }): Promise<RunningAlertmanager> {
  const dir = mkdtempSync(join(tmpdir(), 'alert-enricher-alertmanager-'))
  const configFile = join(dir, 'alertmanager.yml')
  writeFileSync(configFile, opts.configYaml)
  // Port 0, read back from its log line (hence log level info).
  const child = spawn(ALERTMANAGER_BIN, [
    `--config.file=${configFile}`,
    `--storage.path=${join(dir, 'data')}`,
    '--web.listen-address=127.0.0.1:0',
    ...(opts.cluster === undefined
      ? ['--cluster.listen-address=', '--log.level=info'] // empty: no HA gossip, no cluster port
      : [
          // Gossip on a loopback port of its own (bound as 0, read back from the debug log).
          '--cluster.listen-address=127.0.0.1:0',
          ...opts.cluster.peers.map((p) => `--cluster.peer=${p}`),
          `--cluster.peer-timeout=${opts.cluster.peerTimeout ?? '15s'}`,
          '--cluster.settle-timeout=5s',
          '--log.level=debug'
        ])
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  const output = tail(child, 64 * 1024)
  const { stop } = supervise(child, () => { rmSync(dir, { recursive: true, force: true }) })
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000
  const gossip = opts.cluster === undefined ? undefined : listeningPort('Alertmanager gossip', child, output, readyTimeoutMs, gossipPort)
  const port = await listeningPort('Alertmanager', child, output, readyTimeoutMs, goListeningPort).catch(async (err: unknown) => { await stop(); throw err })
  const clusterPort = await gossip?.catch(async (err: unknown) => { await stop(); throw err })
  const url = `http://127.0.0.1:${port}`

  await waitReady('Alertmanager', url, readyTimeoutMs, child, output, stop)

  return {
    url,
    ...(clusterPort !== undefined ? { clusterAddress: `127.0.0.1:${clusterPort}` } : {}),
    async postAlerts (alerts) {
      const res = await fetch(`${url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alerts) })
      const body = await res.text()
      if (res.status !== 200) throw new Error(`POST /api/v2/alerts: ${res.status} ${body}`)
    },
    async metrics () {
      return await (await fetch(`${url}/metrics`)).text()
    },
    output,
    stop
  }
}
