import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startServiceProcess, type ServiceProcess } from './helpers/alert-enricher-process.js'
import { catalogDocument, entry, postWebhook, webhookPayload, writeCatalog } from './helpers/delivery-fixtures.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'
import { sleep, waitUntil } from './helpers/prometheus.js'

// Operational promises the service keeps as a process, seen from outside (the HTTP surface and
// the fakes only), so they hold whatever the outbox looks like inside:
// - a destination answering a redirect does not get the alert re-sent to the Location;
// - during a SIGTERM drain /-/ready answers 503 naming the shutdown, until the process exits.

const ROUTING_KEY = 'operationalpromisesroutingkey001' // 32 chars

interface DeliveryView { groupKey: string, destination: string, state: string, attempts: number, lastReason: string | null, lastError: string | null }

async function startService (t: Test, pagerdutyUrl: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'ae-promises-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const catalogPath = writeCatalog(dir, catalogDocument(
    { pagerduty: { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ROUTING_KEY' } } },
    [entry('promise-page', 'PromisePage', 'P0', ['pagerduty'])]
  ))
  const service = await startServiceProcess({ CATALOG_PATH: catalogPath, PAGERDUTY_ROUTING_KEY: ROUTING_KEY, PAGERDUTY_EVENTS_URL: pagerdutyUrl, ...env })
  t.teardown(service.stop)
  return service
}

async function deliveries (service: ServiceProcess): Promise<DeliveryView[]> {
  const res = await fetch(`${service.url}/api/v1/deliveries?limit=100`)
  if (res.status !== 200) throw new Error(`GET /api/v1/deliveries: ${res.status}`)
  return (await res.json() as { deliveries: DeliveryView[] }).deliveries
}

t.test('a 307 from the destination is not followed: the Location gets nothing and the delivery is dead-lettered as a client error', async (t) => {
  // Where a hijacked webhook URL would send the alert.
  const elsewhere = await startFakePagerDuty()
  t.teardown(elsewhere.close)
  const pagerduty = await startFakePagerDuty()
  t.teardown(pagerduty.close)
  pagerduty.setMode({ kind: 'intercept', reply: () => ({ status: 307, body: '', headers: { location: elsewhere.url } }) })
  const service = await startService(t, pagerduty.url)

  const payload = webhookPayload({ alertname: 'PromisePage', group: 'redirected' })
  t.match(await postWebhook(service.url, payload), { status: 200 })
  let dead: DeliveryView | undefined
  await waitUntil('the redirected delivery dead-lettered', 15_000, async () => {
    dead = (await deliveries(service)).find((d) => d.groupKey === payload.groupKey && d.state === 'dead')
    return dead !== undefined
  }, () => `${JSON.stringify(pagerduty.received.map((r) => r.status))}\n${service.output()}`)
  t.match(dead, { destination: 'pagerduty', attempts: 1, lastReason: 'client_error', lastError: /^HTTP 307\b.*redirect/ })
  t.equal(pagerduty.received.length, 1, 'one attempt, not retried')
  t.equal(elsewhere.received.length, 0, 'nothing was sent to the Location')
})

t.test('during a SIGTERM drain /-/ready answers 503 naming the shutdown, until the process exits', async (t) => {
  const pagerduty = await startFakePagerDuty()
  t.teardown(pagerduty.close)
  // The send hangs (within NOTIFY_TIMEOUT_MS, under the drain's own bound): the drain waits for it.
  pagerduty.setMode({ kind: 'hang' })
  const service = await startService(t, pagerduty.url, { NOTIFY_TIMEOUT_MS: '8000' })
  const ready = await fetch(`${service.url}/-/ready`)
  t.equal(ready.status, 200, 'ready before the signal')
  await ready.arrayBuffer()

  t.match(await postWebhook(service.url, webhookPayload({ alertname: 'PromisePage', group: 'draining' })), { status: 200 })
  await pagerduty.waitForRequests(1, 10_000)
  process.kill(service.pid, 'SIGTERM')

  // Bounded: 20 probes over ~2 s, all while the hanging send holds the drain open.
  const answers: Array<number | string> = []
  let body: unknown
  for (let i = 0; i < 20; i++) {
    await sleep(100)
    try {
      const res = await fetch(`${service.url}/-/ready`, { signal: AbortSignal.timeout(1_000) })
      answers.push(res.status)
      body = await res.json().catch(() => undefined)
    } catch (err) {
      answers.push(String((err as { cause?: { code?: string } }).cause?.code ?? err))
    }
  }
  t.same(answers, Array.from({ length: 20 }, () => 503), 'every probe during the drain answered 503 (not a refused connection)')
  t.match(body, { error: 'not_ready', message: /shutting down/ })
  t.equal(pagerduty.received.filter((r) => r.status === null).length, 1, 'the send was still in flight: the drain had not finished')

  // Let the drain end: the hanging request fails, the process exits on its own.
  await pagerduty.close()
  await waitUntil('the service gone after its drain', 15_000, async () => {
    const res = await fetch(`${service.url}/-/ready`).catch(() => 'gone' as const)
    if (res === 'gone') return true
    await res.arrayBuffer()
    return false
  }, service.output)
})
