import t from 'tap'
import { buildTestApp, fixture } from './helpers/app.js'

// What /webhook puts in the outbox: the webhook as received (notify/queued.ts), enriched only
// when it is sent, with the receive time of the request.

const json = { 'content-type': 'application/json' }
const NOW = new Date('2026-11-26T20:12:00Z')

t.test('each delivery holds the posted webhook as is and the receive time', async (t) => {
  const h = await buildTestApp({ now: () => NOW })
  t.teardown(h.close)
  const posted = { ...fixture('firing-two-critical.json'), somethingFromTheFuture: { nested: [1, 'two', null] } }
  const res = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: JSON.stringify(posted) })
  t.equal(res.statusCode, 200)
  t.equal(res.json().enqueued, 2)

  const deliveries = await h.store.list({ limit: 10 })
  t.same(deliveries.map((d) => [d.destination, d.state]).sort(), [['pagerduty', 'pending'], ['slack-incident-response', 'pending']])
  for (const d of deliveries) {
    t.strictSame(d.body, { alerts: null, payload: posted }, `${d.destination}: the whole group, the payload exactly as posted`)
    t.same(Object.keys((d.body as { payload: object }).payload), Object.keys(posted), `${d.destination}: key order kept`)
    t.equal(d.receivedAt, NOW.getTime(), `${d.destination}: receivedAt is the app clock`)
  }
})

t.test('a body starting with a UTF-8 byte-order mark is accepted and stored parseable', async (t) => {
  const h = await buildTestApp({ now: () => NOW })
  t.teardown(h.close)
  const posted = fixture('firing-single-warning.json')
  // Fastify's JSON parser (secure-json-parse) skips a leading BOM, so this is a 200.
  const payload = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(posted), 'utf8')])
  const res = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().status, 'accepted')

  // list() parses each stored body: a BOM inside the stored JSON would make it throw.
  const deliveries = await h.store.list({ limit: 10 })
  t.equal(deliveries.length, 1)
  t.strictSame(deliveries[0]?.body, { alerts: null, payload: posted })
  t.equal(deliveries[0]?.receivedAt, NOW.getTime())
})
