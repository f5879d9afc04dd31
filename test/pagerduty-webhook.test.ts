import fc from 'fast-check'
import t, { type Test } from 'tap'
import { verifySignature } from '../src/acknowledge/pagerduty-webhook.js'
import { buildTestApp, fixture } from './helpers/app.js'
import { createRecordingAcknowledgements, pagerDutyEventBody, pagerDutyFixtureText, PAGERDUTY_EVENT_TYPES, signPagerDuty } from './helpers/pagerduty-webhook.js'

// POST /integrations/pagerduty: the signature table, the mapping of each documented event type
// to the acknowledgement port, and what PagerDuty must never see as a 4xx (events we ignore).

const OLD = 'pd-secret-old-0123456789abcdef'
const NEW = 'pd-secret-new-fedcba9876543210'
const OURS = '9f2c1a4e0b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e' // the fixtures' incident_key
const URL = '/integrations/pagerduty'

async function setup (t: Test, secrets: string[] = [NEW]) {
  const port = createRecordingAcknowledgements([OURS])
  const h = await buildTestApp({ pagerDuty: { secrets, acknowledge: port.acknowledge } })
  t.teardown(h.close)
  const post = async (body: string | Buffer, signature?: string, contentType = 'application/json') => await h.app.inject({
    method: 'POST', url: URL, payload: body,
    headers: { 'content-type': contentType, ...(signature !== undefined ? { 'x-pagerduty-signature': signature } : {}) }
  })
  const counted = async (outcome: string): Promise<number> =>
    (await h.metrics.pagerDutyWebhooks.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? -1
  return { h, port, post, counted }
}

t.test('signature table', async (t) => {
  const body = pagerDutyFixtureText('incident.acknowledged') // pretty-printed: verified over the bytes as sent
  const oneByteChanged = body.replace('"Dana Oncall"', '"Dana Oncalm"')
  const cases: Array<{ name: string, secrets: string[], body?: string, signature?: string, status: number, message?: RegExp }> = [
    { name: 'valid', secrets: [NEW], signature: signPagerDuty(body, NEW), status: 200 },
    { name: 'rotation: two signatures, the new secret configured', secrets: [NEW], signature: signPagerDuty(body, OLD, NEW), status: 200 },
    { name: 'rotation: two signatures, the old secret configured', secrets: [OLD], signature: signPagerDuty(body, OLD, NEW), status: 200 },
    { name: 'rotation: two signatures with a space after the comma', secrets: [NEW], signature: signPagerDuty(body, OLD, NEW).replace(',', ', '), status: 200 },
    { name: 'two secrets configured, signed with the second', secrets: [OLD, NEW], signature: signPagerDuty(body, NEW), status: 200 },
    { name: 'wrong secret', secrets: [NEW], signature: signPagerDuty(body, 'not-the-secret'), status: 401, message: /matches none of the signing secrets/ },
    { name: 'body changed by one byte after signing', secrets: [NEW], body: oneByteChanged, signature: signPagerDuty(body, NEW), status: 401, message: /matches none/ },
    { name: 'header missing', secrets: [NEW], status: 401, message: /missing X-PagerDuty-Signature/ },
    { name: 'header empty', secrets: [NEW], signature: '', status: 401, message: /missing X-PagerDuty-Signature/ },
    { name: 'only non-v1 versions (a correct HMAC labelled v2)', secrets: [NEW], signature: signPagerDuty(body, NEW).replace('v1=', 'v2=') + ',v0=abc', status: 401, message: /no v1 signature/ },
    { name: 'v1 too short', secrets: [NEW], signature: signPagerDuty(body, NEW).slice(0, 40), status: 401, message: /matches none/ },
    { name: 'v1 not hex', secrets: [NEW], signature: `v1=${'z'.repeat(64)}`, status: 401, message: /matches none/ },
    { name: 'the secret itself as the signature', secrets: [NEW], signature: `v1=${NEW}`, status: 401, message: /matches none/ }
  ]
  for (const c of cases) {
    const { post, port, counted } = await setup(t, c.secrets)
    const res = await post(c.body ?? body, c.signature)
    t.equal(res.statusCode, c.status, `${c.name}: ${res.statusCode}`)
    if (c.status === 200) {
      t.same(res.json(), { outcome: 'applied', eventId: '01HZX4ACK0000000000000000A' }, `${c.name}: applied`)
      t.equal(port.calls.length, 1, `${c.name}: the port was called`)
    } else {
      t.equal(res.json().error, 'unauthorized', `${c.name}: error code`)
      t.match(res.json().message, c.message ?? /./, `${c.name}: message says what is wrong`)
      for (const secret of [OLD, NEW]) t.notOk(res.body.includes(secret), `${c.name}: no secret in the answer`)
      t.equal(port.calls.length, 0, `${c.name}: the port was not called`)
      t.equal(await counted('bad_signature'), 1, `${c.name}: counted`)
    }
  }
})

t.test('the pure check: same answers, and a single signature header value is enough', async (t) => {
  const body = Buffer.from(pagerDutyEventBody('incident.resolved'))
  t.equal(verifySignature(body, signPagerDuty(body, NEW), [NEW]), 'valid')
  t.equal(verifySignature(body, signPagerDuty(body, NEW).toUpperCase().replace('V1=', 'v1='), [NEW]), 'valid', 'hex in capitals')
  t.equal(verifySignature(body, undefined, [NEW]), 'missing')
  t.equal(verifySignature(body, 'v0=00', [NEW]), 'no_v1')
  t.equal(verifySignature(body, signPagerDuty(body, OLD), [NEW]), 'mismatch')
  t.equal(verifySignature(body, signPagerDuty(body, NEW), []), 'mismatch', 'no secret: nothing verifies')
})

t.test('property: any single-byte change of a signed body fails verification', async (t) => {
  const bodies = fc.oneof(
    fc.constantFrom(...PAGERDUTY_EVENT_TYPES).map((type) => Buffer.from(pagerDutyFixtureText(type))),
    fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a))
  )
  await fc.assert(fc.asyncProperty(bodies, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.constantFrom([NEW], [OLD, NEW], [NEW, OLD]), async (body, at, flip, secrets) => {
    const signature = signPagerDuty(body, NEW)
    if (verifySignature(body, signature, secrets) !== 'valid') throw new Error('the unchanged body must verify')
    const changed = Buffer.from(body)
    const i = at % changed.length
    changed[i] = (changed[i] as number) ^ flip
    const result = verifySignature(changed, signature, secrets)
    if (result !== 'mismatch') throw new Error(`byte ${i} xor ${flip}: ${result}`)
  }))
  t.pass('no single-byte change verified')
})

t.test('each documented event type reaches the port as its action', async (t) => {
  const { post, port, counted } = await setup(t)
  const expected = [
    { type: 'incident.acknowledged', action: 'acknowledge', by: 'Dana Oncall', state: 'acknowledged' },
    { type: 'incident.unacknowledged', action: 'unacknowledge', by: 'PagerDuty', state: 'triggered' }, // agent null: PagerDuty's own timeout
    { type: 'incident.resolved', action: 'resolve', by: 'Dana Oncall', state: 'resolved' }
  ] as const
  for (const e of expected) {
    const body = pagerDutyFixtureText(e.type)
    const event = (JSON.parse(body) as { event: { id: string, occurred_at: string } }).event
    const res = await post(body, signPagerDuty(body, NEW))
    t.equal(res.statusCode, 200, e.type)
    t.same(res.json(), { outcome: 'applied', eventId: event.id })
    t.same(port.calls.at(-1), { dedupKey: OURS, action: e.action, by: e.by, via: 'pagerduty', at: Date.parse(event.occurred_at), eventId: event.id }, `${e.type}: the port request`)
    t.equal(port.state(OURS), e.state, `${e.type}: the incident is ${e.state}`)
  }
  t.equal(await counted('applied'), 3)

  const again = pagerDutyFixtureText('incident.acknowledged')
  const redelivered = await post(again, signPagerDuty(again, NEW))
  t.same(redelivered.json(), { outcome: 'duplicate', eventId: '01HZX4ACK0000000000000000A' }, 'a redelivery is a duplicate (the event id reaches the port)')
  t.equal(await counted('duplicate'), 1)
})

t.test('events we do not act on get 200 and are counted, never a 4xx', async (t) => {
  const { post, port, counted } = await setup(t)
  const cases: Array<{ name: string, body: string, outcome: string, portCalled: boolean }> = [
    { name: 'incident.triggered', body: pagerDutyEventBody('incident.acknowledged', { eventType: 'incident.triggered', id: 'E1' }), outcome: 'ignored_type', portCalled: false },
    { name: 'incident.escalated', body: pagerDutyEventBody('incident.acknowledged', { eventType: 'incident.escalated', id: 'E2' }), outcome: 'ignored_type', portCalled: false },
    { name: 'pagey.ping', body: JSON.stringify({ event: { id: 'E3', event_type: 'pagey.ping', resource_type: 'pagey', occurred_at: '2026-11-26T20:00:00Z', agent: null, client: null, data: { message: 'Hello from your friend Pagey!', type: 'ping' } } }), outcome: 'ignored_type', portCalled: false },
    { name: 'an incident that is not ours', body: pagerDutyEventBody('incident.acknowledged', { id: 'E4', incidentKey: 'someone-elses-key' }), outcome: 'unknown_incident', portCalled: true },
    { name: 'an incident without incident_key', body: pagerDutyEventBody('incident.acknowledged', { id: 'E5', incidentKey: null }), outcome: 'unknown_incident', portCalled: false },
    { name: 'an empty incident_key', body: pagerDutyEventBody('incident.acknowledged', { id: 'E6', incidentKey: '' }), outcome: 'unknown_incident', portCalled: false },
    { name: 'an event id longer than any PagerDuty uses', body: pagerDutyEventBody('incident.acknowledged', { id: 'E'.repeat(201), incidentKey: OURS }), outcome: 'unrecognized', portCalled: false },
    // PostgreSQL cannot store a NUL: a 503 would be retried for 48 h, a 4xx counts towards disabling.
    { name: 'a NUL in the agent', body: pagerDutyEventBody('incident.acknowledged', { id: 'E7', incidentKey: OURS, agent: { id: 'PUSR1', summary: 'Dana\u0000' } }), outcome: 'unrecognized', portCalled: false },
    { name: 'a NUL in incident_key', body: pagerDutyEventBody('incident.acknowledged', { id: 'E8', incidentKey: `${OURS}\u0000` }), outcome: 'unrecognized', portCalled: false },
    { name: 'a NUL in the event id', body: pagerDutyEventBody('incident.acknowledged', { id: 'E\u00009', incidentKey: OURS }), outcome: 'unrecognized', portCalled: false },
    { name: 'JSON of another shape', body: '{"hello":"world"}', outcome: 'unrecognized', portCalled: false },
    { name: 'a JSON array', body: '[]', outcome: 'unrecognized', portCalled: false },
    { name: 'a JSON string', body: '"incident.acknowledged"', outcome: 'unrecognized', portCalled: false }
  ]
  for (const c of cases) {
    const before = port.calls.length
    const res = await post(c.body, signPagerDuty(c.body, NEW))
    t.equal(res.statusCode, 200, `${c.name}: 200`)
    t.equal(res.json().outcome, c.outcome, `${c.name}: ${c.outcome}`)
    t.equal(port.calls.length - before, c.portCalled ? 1 : 0, `${c.name}: port ${c.portCalled ? '' : 'not '}called`)
  }
  t.equal(await counted('ignored_type'), 3)
  t.equal(await counted('unknown_incident'), 3)
  t.equal(await counted('unrecognized'), 7)
  t.equal(port.state(OURS), 'triggered', 'our incident untouched')
})

t.test('an agent without a summary, an unparseable occurred_at, non-ASCII bytes', async (t) => {
  const { post, port } = await setup(t, [OLD, NEW])
  const now = Date.now()
  const doc = JSON.parse(pagerDutyFixtureText('incident.acknowledged')) as { event: Record<string, unknown> }
  doc.event.agent = { id: 'PUSR777', type: 'user_reference' }
  doc.event.occurred_at = 'not a time'
  // "\u00e9" escaped in the raw text and "ë" as two UTF-8 bytes: re-serialising would change both.
  const body = JSON.stringify(doc).replace('"PUSR777"', '"PUSR777", "note": "caf\\u00e9 Zo\u00eb"')
  const res = await post(Buffer.from(body, 'utf8'), signPagerDuty(Buffer.from(body, 'utf8'), NEW), 'application/json; charset=utf-8')
  t.equal(res.statusCode, 200, res.body)
  t.match(port.calls[0], { by: 'PUSR777', action: 'acknowledge' }, 'the agent id names who acted')
  t.ok((port.calls[0]?.at ?? 0) >= now, 'the receive time stands in for a missing occurred_at')
})

t.test('the port cannot record it: 503 so PagerDuty retries', async (t) => {
  const { post, port, counted } = await setup(t)
  port.failWith(new Error('SQLITE_BUSY: database is locked'))
  const body = pagerDutyFixtureText('incident.acknowledged')
  const res = await post(body, signPagerDuty(body, NEW))
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
  t.same(res.json(), { error: 'unavailable', message: 'cannot record the acknowledgement right now; retry' })
  t.equal(await counted('unavailable'), 1)
  port.failWith(undefined)
  const retried = await post(body, signPagerDuty(body, NEW))
  t.same(retried.json(), { outcome: 'applied', eventId: '01HZX4ACK0000000000000000A' }, 'the retry is applied, not a duplicate')
})

t.test('not JSON at all: 400 once signed, 401 before', async (t) => {
  const { post, counted } = await setup(t)
  for (const body of ['{"event": {', 'hello', '']) {
    const signed = await post(body, signPagerDuty(body, NEW))
    t.equal(signed.statusCode, 400, `${JSON.stringify(body)} signed`)
    t.equal(signed.json().error, 'invalid_json')
    t.equal((await post(body)).statusCode, 401, `${JSON.stringify(body)} unsigned`)
  }
  t.equal(await counted('invalid_json'), 3)
  const text = 'not json'
  t.equal((await post(text, signPagerDuty(text, NEW), 'text/plain')).statusCode, 400, 'any media type is read as bytes and verified')
})

t.test('property: a signed body is answered 200, or 400 when it is not JSON; never another status', async (t) => {
  const { post } = await setup(t)
  const bodies = fc.oneof(
    fc.json(),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.record({ event: fc.record({ id: fc.string(), event_type: fc.constantFrom('incident.acknowledged', 'incident.resolved', 'x'), data: fc.record({ incident_key: fc.oneof(fc.constant(OURS), fc.string(), fc.constant(null)) }) }, { requiredKeys: [] }) }).map((v) => JSON.stringify(v))
  )
  await fc.assert(fc.asyncProperty(bodies, async (body) => {
    const res = await post(body, signPagerDuty(body, NEW))
    let json = true
    try { JSON.parse(body) } catch { json = false }
    const expected = json ? 200 : 400
    if (res.statusCode !== expected) throw new Error(`${res.statusCode} (expected ${expected}) for ${JSON.stringify(body).slice(0, 200)}: ${res.body}`)
  }), { numRuns: 200 })
})

t.test('without PAGERDUTY_WEBHOOK_SECRET the route answers 404 and accepts nothing', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  const body = pagerDutyFixtureText('incident.acknowledged')
  for (const signature of [undefined, signPagerDuty(body, ''), signPagerDuty(body, NEW)]) {
    const res = await h.app.inject({ method: 'POST', url: URL, payload: body, headers: { 'content-type': 'application/json', ...(signature !== undefined ? { 'x-pagerduty-signature': signature } : {}) } })
    t.equal(res.statusCode, 404)
    t.same(res.json().error, 'not_configured')
    t.match(res.json().message, /PAGERDUTY_WEBHOOK_SECRET/)
  }
})

t.test('other routes keep their own JSON parsing', async (t) => {
  const { h, post } = await setup(t)
  const body = pagerDutyFixtureText('incident.acknowledged')
  t.equal((await post(body, signPagerDuty(body, NEW))).statusCode, 200)
  const json = { 'content-type': 'application/json' }
  const webhook = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: fixture('firing-two-critical.json') })
  t.equal(webhook.statusCode, 200, '/webhook still parses JSON')
  t.equal((await h.app.inject({ method: 'POST', url: '/webhook', headers: { 'content-type': 'text/plain' }, payload: 'x' })).statusCode, 415, '/webhook still refuses other media types')
  t.equal((await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: '{bad' })).json().error, 'invalid_json')
})

t.test('too large: 413, counted', async (t) => {
  const port = createRecordingAcknowledgements([OURS])
  const h = await buildTestApp({ bodyLimit: 2048, pagerDuty: { secrets: [NEW], acknowledge: port.acknowledge } })
  t.teardown(h.close)
  const body = JSON.stringify({ pad: 'x'.repeat(4096) })
  const res = await h.app.inject({ method: 'POST', url: URL, payload: body, headers: { 'content-type': 'application/json', 'x-pagerduty-signature': signPagerDuty(body, NEW) } })
  t.equal(res.statusCode, 413)
  t.equal((await h.metrics.pagerDutyWebhooks.get()).values.find((v) => v.labels.outcome === 'too_large')?.value, 1)
})
