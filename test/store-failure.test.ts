import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { scrape, startServiceProcess } from './helpers/alert-enricher-process.js'
import { catalogDocument, dedupKeyFor, entry, postWebhook, webhookPayload, writeCatalog } from './helpers/delivery-fixtures.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'
import { waitUntil } from './helpers/prometheus.js'

// A store that cannot write, for real: the service's DATA_DIR on a small tmpfs this test
// mounts, then fills. While full: /webhook 503 (Alertmanager retries), /-/ready 503 naming
// the cause, an error log line, the counters move. Once space is freed the service is ready
// again by itself and every page it answered 2xx for reaches PagerDuty.

const ROUTING_KEY = 'storefailureroutingkey0000000001' // 32 chars

function mountTmpfs (dir: string, size: string): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' })
  } catch (err) {
    throw new Error(`this test mounts a small tmpfs and needs root with mount(8) (CI runs as root): ${(err as Error).message}`)
  }
}

// Writes until the filesystem refuses: ENOSPC is the point.
function fill (path: string): number {
  const fd = openSync(path, 'w')
  const chunk = Buffer.alloc(16 * 1024, 1)
  let written = 0
  try {
    for (let i = 0; i < 100_000; i++) written += writeSync(fd, chunk)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
  } finally {
    closeSync(fd)
  }
  return written
}

const metric = (text: string, line: RegExp): number => Number(line.exec(text)?.[1] ?? 'NaN')

t.test('a full disk: 503 and not ready while it lasts, loud, then recovered by itself with nothing lost', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-full-'))
  const mnt = join(dir, 'mnt')
  mkdirSync(mnt)
  mountTmpfs(mnt, '4m')
  t.teardown(() => {
    execFileSync('umount', ['-l', mnt])
    rmSync(dir, { recursive: true, force: true })
  })
  const catalogPath = writeCatalog(dir, catalogDocument(
    { pagerduty: { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ROUTING_KEY' }, rateLimit: { perSecond: 100, burst: 100 } } },
    [entry('full-page', 'FullPage', 'P0', ['pagerduty'])]
  ))
  const pagerduty = await startFakePagerDuty()
  t.teardown(pagerduty.close)
  const service = await startServiceProcess({
    CATALOG_PATH: catalogPath, PAGERDUTY_EVENTS_URL: pagerduty.url, PAGERDUTY_ROUTING_KEY: ROUTING_KEY
  }, { dataDir: join(mnt, 'data'), maxOutputChars: 200_000 })
  t.teardown(service.stop)

  const acknowledged: string[] = []
  const page = async (n: number): Promise<number | 'error'> => {
    const payload = webhookPayload({ alertname: 'FullPage', group: `g-${n}`, alerts: [{ instance: `host-${n}` }] })
    const res = await postWebhook(service.url, payload)
    if (res.status === 200) acknowledged.push(payload.groupKey)
    return res.status
  }
  t.equal(await page(0), 200, 'accepted before the disk fills')

  fill(join(mnt, 'filler'))
  // The WAL reuses space it already has; pages (with their ~1 KB bodies) soon need more.
  let status: number | 'error' = 200
  let n = 1
  for (; n < 400 && status === 200; n++) status = await page(n)
  t.equal(status, 503, `a webhook that cannot be committed is answered 503 (after ${n - 1} webhooks)`)
  const ready = await fetch(`${service.url}/-/ready`)
  t.equal(ready.status, 503, '/-/ready turns 503')
  t.match(await ready.json(), { error: 'not_ready', message: /store (enqueue|claim|mark|housekeeping) failed: .*(full|disk)/i }, 'naming the failing operation and the cause')
  const metrics = await scrape(service.url)
  t.ok(metric(metrics, /^alert_enricher_store_errors_total\{operation="enqueue"\} (\d+)/m) >= 1, 'store_errors_total{operation="enqueue"} moved')
  t.ok(metric(metrics, /^alert_enricher_webhooks_received_total\{outcome="unavailable"\} (\d+)/m) >= 1, 'webhooks_received_total{outcome="unavailable"} moved')
  // The child's log reaches us through a pipe, possibly after its 503 did.
  await waitUntil('the error log line', 10_000, async () => /store operation failed[^\n]*"operation":"enqueue"|"operation":"enqueue"[^\n]*store operation failed/.test(service.output()))
  t.match(service.output(), /store operation failed/, 'an error log line with the cause')
  t.match(service.output(), /"operation":"enqueue"/)

  rmSync(join(mnt, 'filler'))
  // Housekeeping's write (every 5 s) proves the store writable again.
  await waitUntil('ready again by itself', 20_000, async () => (await fetch(`${service.url}/-/ready`)).status === 200)
  t.equal(await page(1_000), 200, 'webhooks are accepted again')
  const missing = (): string[] => {
    const got = new Set((pagerduty.accepted as Array<{ dedup_key?: string }>).map((e) => e.dedup_key))
    return acknowledged.filter((g) => !got.has(dedupKeyFor(g)))
  }
  await waitUntil('every acknowledged page at PagerDuty', 20_000, async () => missing().length === 0, () => `${missing().length} missing`)
  t.same(missing(), [], `all ${acknowledged.length} pages answered 2xx reached PagerDuty`)
})
