import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

// examples/alertmanager.yml is what users copy, so the real Alertmanager parser checks it:
// amtool from the Debian prometheus-alertmanager package (.ci/run installs it).
// amtool 0.25 does not open credentials_file during check-config, so the file is checked
// as shipped, with its /etc/alertmanager/secrets path.

const root = fileURLToPath(new URL('..', import.meta.url))
const example = join(root, 'examples', 'alertmanager.yml')
const text = readFileSync(example, 'utf8')

function amtoolCheck (path: string): { status: number | null, output: string } {
  const res = spawnSync('amtool', ['check-config', path], { encoding: 'utf8', timeout: 30_000 })
  if (res.error !== undefined) throw new Error(`amtool not runnable (install the prometheus-alertmanager package): ${res.error.message}`)
  return { status: res.status, output: `${res.stdout}${res.stderr}` }
}

t.test('amtool accepts the example', async (t) => {
  const { status, output } = amtoolCheck(example)
  t.equal(status, 0, output)
  t.match(output, /SUCCESS/)
})

t.test('amtool rejects broken copies of the example', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'am-example-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const breakages: Array<[string, string, string, RegExp]> = [
    ['bad duration', 'group_wait: 30s', 'group_wait: thirty', /duration/],
    ['undefined receiver', '  receiver: alert-enricher\n', '  receiver: nobody\n', /undefined receiver/],
    ['bad URL', 'url: http://alert-enricher:9095/webhook', 'url: "::not a url"', /url|URL|scheme/]
  ]
  for (const [name, from, to, why] of breakages) {
    t.ok(text.includes(from), `${name}: the example contains ${JSON.stringify(from)}`)
    const path = join(dir, `${name.replace(/\W+/g, '-')}.yml`)
    writeFileSync(path, text.replace(from, to))
    const { status, output } = amtoolCheck(path)
    t.equal(status, 1, `${name}: exit 1`)
    t.match(output, why, `${name}: says why`)
  }
})

interface WebhookConfig {
  url?: string
  send_resolved?: boolean
  max_alerts?: number
  http_config?: { authorization?: { type?: string, credentials_file?: string } }
}
interface AmConfig {
  route?: { receiver?: string, group_by?: string[], group_wait?: string, group_interval?: string, repeat_interval?: string }
  receivers?: Array<{ name?: string, webhook_configs?: WebhookConfig[] }>
}

t.test('the example routes to alert-enricher the way the README promises', async (t) => {
  const cfg = parse(text) as AmConfig
  t.same(cfg.route?.group_by, ['alertname', 'service', 'namespace'])
  t.equal(cfg.route?.group_wait, '30s')
  t.equal(cfg.route?.group_interval, '5m')
  t.equal(cfg.route?.repeat_interval, '4h')
  t.equal(cfg.route?.receiver, 'alert-enricher')
  const receiver = cfg.receivers?.find((r) => r.name === 'alert-enricher')
  t.equal(receiver?.webhook_configs?.length, 1)
  const hook = receiver?.webhook_configs?.[0]
  t.equal(hook?.url, 'http://alert-enricher:9095/webhook')
  t.equal(hook?.send_resolved, true)
  t.equal(hook?.max_alerts, 0, 'never truncate a group')
  t.equal(hook?.http_config?.authorization?.type, 'Bearer')
  t.equal(hook?.http_config?.authorization?.credentials_file, '/etc/alertmanager/secrets/alert-enricher-token', 'token from a file, not inline')
})
