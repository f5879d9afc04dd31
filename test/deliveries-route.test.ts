import t from 'tap'
import Fastify from 'fastify'
import { Value } from '@sinclair/typebox/value'
import { createSqliteStore } from '../src/store/sqlite/store.js'
import type { EnqueueItem } from '../src/store/types.js'
import { DeliveriesList, deliveriesRoutes } from '../src/routes/deliveries.js'

function item (key: string, over: Partial<EnqueueItem> = {}): EnqueueItem {
  return { destination: 'pagerduty', type: 'pagerduty', priority: 'P1', status: 'firing', idempotencyKey: key, body: JSON.stringify({ summary: `summary ${key}` }), ...over }
}

async function setup (t: { teardown: (fn: () => unknown) => void }) {
  const store = createSqliteStore({ dataDir: ':memory:', idempotencyWindowMs: 600_000 }, { now: () => 1_000 })
  let retries = 0
  const app = Fastify()
  await app.register(deliveriesRoutes, { store, wakeDispatcher: () => { retries++ } })
  t.teardown(async () => {
    await app.close()
    await store.close()
  })
  // a: pending, b: dead, c: sent, d: skipped
  for (const it of [item('a'), item('b'), item('c'), item('d', { destination: 'slack-alerts', type: 'slack', skip: true })]) {
    await store.enqueue({ groupKey: `g-${it.idempotencyKey}`, receivedAt: 500, resolved: false, plan: () => [it] })
  }
  const [a, b, c] = await store.claim({ now: 1_000, limit: 3, leaseMs: 60_000, excludeDestinations: [], admit: () => true })
  await store.markRetry(a!, 1_000, 'server_error', 'HTTP 500')
  await store.markDead(b!, 'client_error', 'HTTP 400')
  await store.markSent(c!, 1_000)
  return { app, store, ids: { b: b!.id, c: c!.id }, retried: () => retries }
}

t.test('GET /api/v1/deliveries filters by state and includes bodies', async (t) => {
  const { app } = await setup(t)
  for (const [state, key] of [['pending', 'a'], ['dead', 'b'], ['sent', 'c'], ['skipped', 'd']] as const) {
    const res = await app.inject({ method: 'GET', url: `/api/v1/deliveries?state=${state}` })
    t.equal(res.statusCode, 200)
    const body = res.json<DeliveriesList>()
    t.ok(Value.Check(DeliveriesList, body), 'matches the schema')
    t.same(body.deliveries.map((d) => d.idempotencyKey), [key], state)
    t.same(body.deliveries[0]?.body, { summary: `summary ${key}` })
  }
  const all = (await app.inject({ method: 'GET', url: '/api/v1/deliveries?limit=2' })).json<DeliveriesList>()
  t.equal(all.deliveries.length, 2)
  t.equal(all.limit, 2)
})

t.test('GET with a bad query answers 400 { error, message }', async (t) => {
  const { app } = await setup(t)
  for (const url of ['/api/v1/deliveries?state=lost', '/api/v1/deliveries?limit=0', '/api/v1/deliveries?limit=abc']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 400, url)
    t.match(res.json(), { error: 'bad_request', message: String })
  }
  t.match((await app.inject({ method: 'GET', url: '/api/v1/deliveries?state=lost' })).json().message, /pending\|sending\|sent\|dead\|skipped/)
})

t.test('POST retry replays a dead letter and wakes the dispatcher', async (t) => {
  const { app, store, ids, retried } = await setup(t)
  const res = await app.inject({ method: 'POST', url: `/api/v1/deliveries/${ids.b}/retry` })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { delivery: { id: ids.b, state: 'pending', attempts: 1 } })
  t.equal(retried(), 1)
  t.equal((await store.get(ids.b))?.state, 'pending')

  const again = await app.inject({ method: 'POST', url: `/api/v1/deliveries/${ids.b}/retry` })
  t.equal(again.statusCode, 409)
  t.match(again.json(), { error: 'not_dead', message: /is pending/ })
  t.equal((await app.inject({ method: 'POST', url: `/api/v1/deliveries/${ids.c}/retry` })).statusCode, 409)

  const missing = await app.inject({ method: 'POST', url: '/api/v1/deliveries/424242/retry' })
  t.equal(missing.statusCode, 404)
  t.match(missing.json(), { error: 'not_found', message: String })
  t.equal((await app.inject({ method: 'POST', url: '/api/v1/deliveries/abc/retry' })).statusCode, 400)
  t.equal(retried(), 1, 'only a successful replay wakes the dispatcher')
})
