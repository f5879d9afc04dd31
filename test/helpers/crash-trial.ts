import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { startServiceProcess, type ServiceProcess } from './alert-enricher-process.js'
import { catalogDocument, dedupKeyFor, entry, postWebhook, seededRandom, webhookPayload, writeCatalog } from './delivery-fixtures.js'
import { startFakePagerDuty } from './fake-pagerduty.js'
import { sleep, waitUntil } from './prometheus.js'

// Crash safety: `node dist/cli.js serve` under a stream of pages is SIGKILLed at random
// moments and restarted on the same store (its DATA_DIR, or the same PostgreSQL database).
// Every page it answered 2xx for must reach (the fake) PagerDuty: duplicates are allowed
// (at-least-once), losses are not. Replay a schedule with CRASH_SAFETY_SEED=<seed printed>.

export interface CrashTrialStore {
  // Extra environment of every start (DATABASE_URL for PostgreSQL).
  env: Record<string, string>
  // How long the final drain may take: on PostgreSQL a killed process's claims return only
  // when their lease lapses (no process owns the store to release them at start).
  drainMs: number
}

const MAX_PAGES = 240
const SENDERS = 4
const KILLS = 4
const ROUTING_KEY = 'crashsafetyroutingkey00000000001' // 32 chars

export async function crashSafetyTrial (t: Test, store: CrashTrialStore): Promise<void> {
  const seed = Number(process.env.CRASH_SAFETY_SEED ?? Math.floor(Math.random() * 2 ** 31))
  t.comment(`seed ${seed} (replay with CRASH_SAFETY_SEED=${seed})`)
  // Two streams: the kill schedule replays exactly from the seed whatever the senders do.
  const random = seededRandom(seed)
  const between = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo))
  const paceRandom = seededRandom(seed ^ 0x5bd1e995)

  const dir = mkdtempSync(join(tmpdir(), 'ae-crash-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // PagerDuty's own limit (120/min) would make draining 240 pages take minutes: raised here.
  const catalogPath = writeCatalog(dir, catalogDocument(
    { pagerduty: { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ROUTING_KEY' }, rateLimit: { perSecond: 50, burst: 50 } } },
    [entry('crash-page', 'CrashPage', 'P0', ['pagerduty'])]
  ))
  const pagerduty = await startFakePagerDuty()
  t.teardown(pagerduty.close)

  const dataDir = join(dir, 'data')
  const env = {
    CATALOG_PATH: catalogPath,
    // Longer than any stall below: a stalled send is still in flight when the kill lands.
    NOTIFY_TIMEOUT_MS: '5000',
    PAGERDUTY_EVENTS_URL: pagerduty.url,
    PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
    ...store.env
  }
  // Each restart binds a port of its own; senders read service.url at every request.
  const start = async (): Promise<ServiceProcess> => await startServiceProcess(env, { dataDir, readyTimeoutMs: 30_000 })
  let service = await start()
  t.teardown(async () => { await service.stop() })

  // The groupKey of every page the service acknowledged (2xx).
  const acknowledged = new Set<string>()
  let failedRequests = 0
  let next = 0
  let sending = true

  // Like Alertmanager: a page whose request failed is sent again (it may have been committed
  // just before the kill, in which case the repeat is answered as a duplicate, also 2xx).
  async function sender (): Promise<void> {
    while (sending && next < MAX_PAGES) {
      const n = next++
      const payload = webhookPayload({ alertname: 'CrashPage', group: `page-${n}`, alerts: [{ instance: `host-${n}` }] })
      for (let attempt = 0; attempt < 200 && sending; attempt++) {
        const res = await postWebhook(service.url, payload, { timeoutMs: 5_000 })
        if (res.status === 200 || res.status === 202) {
          acknowledged.add(payload.groupKey)
          break
        }
        if (res.status !== 'error' && res.status !== 503) throw new Error(`page ${n}: unexpected ${res.status}: ${JSON.stringify(res.json)}`)
        failedRequests++
        await sleep(50)
      }
      await sleep(40 + Math.floor(paceRandom() * 120))
    }
  }
  const senderErrors: string[] = []
  const senders = Array.from({ length: SENDERS }, async () => { await sender().catch((err: unknown) => { senderErrors.push(String(err)) }) })

  // Kill at random moments while pages stream in, restarting on the same DATA_DIR.
  const schedule: string[] = []
  const startedAt = Date.now()
  for (let k = 0; k < KILLS; k++) {
    const after = between(500, 2000)
    await sleep(after)
    // Mostly with PagerDuty stalled for a moment first: the kill then lands with sends in
    // flight (rows claimed as `sending`) and a backlog pending behind them.
    const stall = random() < 0.75 ? between(200, 1000) : 0
    const hangingBefore = pagerduty.received.filter((r) => r.status === null).length
    if (stall > 0) {
      pagerduty.setMode({ kind: 'hang' })
      await sleep(stall)
    }
    const inFlight = pagerduty.received.filter((r) => r.status === null).length - hangingBefore
    await service.kill()
    pagerduty.setMode({ kind: 'ok' })
    const down = between(0, 400)
    const line = `kill ${k + 1} after ${after} ms + ${stall} ms stalled: ${acknowledged.size} acked, ${pagerduty.accepted.length} at PD, ${inFlight} sends in flight; down ${down} ms`
    await sleep(down)
    const restartAt = Date.now()
    service = await start()
    schedule.push(`${line}, ready ${Date.now() - restartAt} ms after restart`)
  }
  // The last pages go in while PagerDuty is stalled, so the final crash lands with a backlog
  // and sends in flight. Bounded: MAX_PAGES pages, ≤ 200 tries each, and a deadline.
  const hangingBefore = pagerduty.received.filter((r) => r.status === null).length
  await waitUntil('the last pages being sent', 20_000, async () => next >= MAX_PAGES - 20).catch(() => {})
  pagerduty.setMode({ kind: 'hang' })
  await Promise.race([Promise.all(senders), sleep(20_000)])
  sending = false
  await Promise.all(senders)
  await sleep(between(0, 300))
  const inFlight = pagerduty.received.filter((r) => r.status === null).length - hangingBefore
  await service.kill()
  pagerduty.setMode({ kind: 'ok' })
  schedule.push(`final kill: ${acknowledged.size} acked, ${pagerduty.accepted.length} at PD, ${inFlight} sends in flight`)
  service = await start()
  const streamMs = Date.now() - startedAt
  t.comment(schedule.join('\n'))

  const delivered = (): Map<string, number> => {
    const counts = new Map<string, number>()
    for (const e of pagerduty.accepted as Array<{ dedup_key?: string }>) {
      if (e.dedup_key !== undefined) counts.set(e.dedup_key, (counts.get(e.dedup_key) ?? 0) + 1)
    }
    return counts
  }
  const missing = (): string[] => {
    const got = delivered()
    return [...acknowledged].filter((groupKey) => !got.has(dedupKeyFor(groupKey)))
  }
  await waitUntil('every acknowledged page at PagerDuty', store.drainMs, async () => missing().length === 0,
    () => `${missing().length} of ${acknowledged.size} acknowledged pages missing, e.g. ${missing().slice(0, 3).join(', ')}\n${service.output()}`).catch((err: unknown) => { t.comment(String(err)) })

  t.comment(`stream and kills ${streamMs} ms, drain after the final restart ${Date.now() - startedAt - streamMs} ms`)
  t.same(senderErrors, [], 'the service answered every page 2xx, 503 or not at all')
  t.ok(acknowledged.size >= MAX_PAGES / 2, `most pages were acknowledged (${acknowledged.size} of ${MAX_PAGES}; ${failedRequests} failed requests retried)`)
  t.same(missing(), [], 'no acknowledged page is missing at PagerDuty')

  // Each event is a trigger carrying the routing key; the fake refused nothing.
  const odd = (pagerduty.accepted as Array<{ routing_key: string, event_action: string }>)
    .filter((e) => e.event_action !== 'trigger' || e.routing_key !== ROUTING_KEY)
  t.same(odd, [], 'every event is a trigger carrying the routing key')
  // (Requests left hanging by a stall have no status; none may have been refused.)
  t.same(pagerduty.received.filter((r) => r.status !== null && r.status !== 202).map((r) => r.detail ?? r.status), [], 'the fake PagerDuty rejected nothing')

  // Nothing was dead-lettered or left behind.
  const dead = await fetch(`${service.url}/api/v1/deliveries?state=dead`).then(async (r) => await r.json() as { deliveries: unknown[] })
  t.equal(dead.deliveries.length, 0, 'no dead letters')
  const duplicates = [...delivered().values()].filter((n) => n > 1).length
  t.comment(`${acknowledged.size} pages acknowledged, ${pagerduty.accepted.length} events delivered (${duplicates} pages more than once), ${KILLS + 1} SIGKILLs`)
}
