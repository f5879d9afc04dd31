import t, { type Test } from 'tap'
import type { AcknowledgementRequest, ApplyAcknowledgement } from '../src/incidents/types.js'
import { buildTestApp, type TestApp } from './helpers/app.js'
import { acknowledgeClick, interactionBody, signSlackRequest } from './helpers/fake-slack-api.js'

// POST /integrations/slack/interactions: Slack's signature (v0 HMAC-SHA256 over the raw body,
// 5-minute replay window) and an Acknowledge click reaching the acknowledgement port.

const SECRET = 'SLACKsigningSECRETforTESTS0001'
const NOW = new Date('2026-11-26T20:12:00Z')
const nowSeconds = Math.floor(NOW.getTime() / 1000)
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

interface RecordingPort { calls: AcknowledgementRequest[], apply: ApplyAcknowledgement }
function recordingPort (answer: (req: AcknowledgementRequest) => Promise<{ outcome: 'applied' | 'duplicate' | 'unknown_incident' | 'no_change' }>): RecordingPort {
  const calls: AcknowledgementRequest[] = []
  return { calls, apply: async (req) => { calls.push(req); return await answer(req) } }
}

async function app (t: Test, opts: { acknowledge?: RecordingPort, secret?: string | null } = {}): Promise<TestApp> {
  const h = await buildTestApp({
    now: () => NOW,
    ...(opts.secret === null ? {} : { slackSigningSecret: opts.secret ?? SECRET }),
    ...(opts.acknowledge !== undefined ? { acknowledge: opts.acknowledge.apply } : {})
  })
  t.teardown(h.close)
  return h
}

const metric = async (h: TestApp, outcome: string): Promise<number> =>
  (await h.metrics.slackInteractions.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0

t.test('signature table', async (t) => {
  const port = recordingPort(async () => ({ outcome: 'applied' }))
  const h = await app(t, { acknowledge: port })
  const body = interactionBody(acknowledgeClick({ incidentId: '42' }))
  const cases: Array<[string, Record<string, string>, string, number]> = [
    ['valid', signSlackRequest(SECRET, body, nowSeconds), body, 200],
    ['timestamp 6 minutes old', signSlackRequest(SECRET, body, nowSeconds - 360), body, 401],
    ['timestamp 6 minutes ahead', signSlackRequest(SECRET, body, nowSeconds + 360), body, 401],
    ['timestamp 4 minutes old', signSlackRequest(SECRET, body, nowSeconds - 240), body, 200],
    ['wrong secret', signSlackRequest('another-signing-secret', body, nowSeconds), body, 401],
    ['body changed by one character', signSlackRequest(SECRET, body, nowSeconds), body.replace('42', '43'), 401],
    ['signature header missing', { 'x-slack-request-timestamp': String(nowSeconds) }, body, 401],
    ['timestamp header missing', { 'x-slack-signature': signSlackRequest(SECRET, body, nowSeconds)['x-slack-signature'] ?? '' }, body, 401],
    ['signature of another timestamp', { ...signSlackRequest(SECRET, body, nowSeconds), 'x-slack-request-timestamp': String(nowSeconds - 1) }, body, 401],
    ['v1 scheme', { ...signSlackRequest(SECRET, body, nowSeconds), 'x-slack-signature': (signSlackRequest(SECRET, body, nowSeconds)['x-slack-signature'] ?? '').replace('v0=', 'v1=') }, body, 401]
  ]
  for (const [name, headers, payload, status] of cases) {
    const res = await h.app.inject({ method: 'POST', url: '/integrations/slack/interactions', headers: { ...FORM, ...headers }, payload })
    t.equal(res.statusCode, status, `${name}: ${res.body}`)
    if (status === 401) t.match(res.json(), { error: 'unauthorized', message: /X-Slack/ }, `${name}: says why`)
  }
  t.equal(port.calls.length, 2, 'only the valid requests reached the port')
  t.equal(await metric(h, 'unauthorized'), 8)
  t.notOk(JSON.stringify(cases.map((c) => c[2])).includes(SECRET), 'sanity: the secret is not in the bodies')
})

t.test('an Acknowledge click goes through the port with who, where and an idempotency key', async (t) => {
  const port = recordingPort(async (req) => ({ outcome: req.eventId === 'slack:1700000100.123456:U0123USER' && port.calls.length > 1 ? 'duplicate' : 'applied' }))
  const h = await app(t, { acknowledge: port })
  const click = async (payload: unknown): Promise<{ status: number, body: { text?: string } }> => {
    const body = interactionBody(payload)
    const res = await h.app.inject({ method: 'POST', url: '/integrations/slack/interactions', headers: { ...FORM, ...signSlackRequest(SECRET, body, nowSeconds) }, payload: body })
    return { status: res.statusCode, body: res.json() }
  }
  const first = await click(acknowledgeClick({ incidentId: '42', userId: 'U0123USER', userName: 'jane.doe' }))
  t.same(first, { status: 200, body: { text: 'Incident 42 acknowledged by jane.doe (U0123USER).' } })
  t.same(port.calls[0], { incidentId: 42, action: 'acknowledge', by: 'jane.doe (U0123USER)', via: 'slack', at: NOW.getTime(), eventId: 'slack:1700000100.123456:U0123USER' })
  t.match(await click(acknowledgeClick({ incidentId: '42', userId: 'U0123USER' })), { status: 200, body: { text: /already recorded/ } }, 'the same click again (a double click): duplicate')
  t.equal(await metric(h, 'applied'), 1)
  t.equal(await metric(h, 'duplicate'), 1)

  t.match(await click({ type: 'view_submission', user: { id: 'U1' } }), { status: 200, body: { text: /Nothing to do/ } }, 'other interactions are ignored')
  const link = acknowledgeClick({ incidentId: '42' })
  ;(link.actions as Array<{ action_id: string }>)[0]!.action_id = 'runbook-0'
  t.match(await click(link), { status: 200, body: { text: /Nothing to do/ } }, 'a link button click is ignored')
  t.match(await click(acknowledgeClick({ incidentId: 'abc' })), { status: 400, body: { message: /not an incident id/ } })
  // PostgreSQL cannot store a NUL: without this check the click would be answered "could not record it".
  t.match(await click(acknowledgeClick({ incidentId: '42', userName: 'jane\u0000doe' })), { status: 400, body: { error: 'invalid_payload', message: 'payload.user.name contains a NUL character (U+0000)' } })
  t.match(await click(acknowledgeClick({ incidentId: '42', userId: 'U0\u0000' })), { status: 400, body: { error: 'invalid_payload', message: 'payload.user.id contains a NUL character (U+0000)' } })
  t.match(await click(acknowledgeClick({ incidentId: '42', actionTs: '1700000100.1\u0000' })), { status: 400, body: { message: 'payload.actions[].action_ts contains a NUL character (U+0000)' } })
  t.equal(await metric(h, 'bad_request'), 4, 'counted as bad requests')
  t.equal(port.calls.length, 2)

  const notJson = 'payload=%7Bnope'
  const res = await h.app.inject({ method: 'POST', url: '/integrations/slack/interactions', headers: { ...FORM, ...signSlackRequest(SECRET, notJson, nowSeconds) }, payload: notJson })
  t.match({ status: res.statusCode, body: res.json() }, { status: 400, body: { error: 'invalid_payload', message: 'payload is not valid JSON' } })
  const json = JSON.stringify(acknowledgeClick({ incidentId: '42' }))
  const asJson = await h.app.inject({ method: 'POST', url: '/integrations/slack/interactions', headers: { 'content-type': 'application/json', ...signSlackRequest(SECRET, json, nowSeconds) }, payload: json })
  t.equal(asJson.statusCode, 415, 'a signed JSON body is not what Slack sends')
})

t.test('each port outcome is answered 200 with a text; a failing or slow port too', async (t) => {
  const outcomes = ['unknown_incident', 'no_change'] as const
  for (const outcome of outcomes) {
    const h = await app(t, { acknowledge: recordingPort(async () => ({ outcome })) })
    const body = interactionBody(acknowledgeClick({ incidentId: '7' }))
    const res = await h.app.inject({ method: 'POST', url: '/integrations/slack/interactions', headers: { ...FORM, ...signSlackRequest(SECRET, body, nowSeconds) }, payload: body })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { text: outcome === 'unknown_incident' ? /not known/ : /already acknowledged or resolved/ }, outcome)
    t.equal(await metric(h, outcome), 1)
  }
  const failing = await app(t, { acknowledge: recordingPort(async () => { throw new Error('store unavailable') }) })
  const body = interactionBody(acknowledgeClick({ incidentId: '7' }))
  const headers = { ...FORM, ...signSlackRequest(SECRET, body, nowSeconds) }
  const res = await failing.app.inject({ method: 'POST', url: '/integrations/slack/interactions', headers, payload: body })
  t.equal(res.statusCode, 200, 'Slack never retries an interaction: a 5xx would only show an error icon')
  t.match(res.json(), { text: /Could not acknowledge incident 7/ })
  t.equal(await metric(failing, 'failed'), 1, 'counted')

  let release: () => void = () => {}
  const slow = await app(t, { acknowledge: recordingPort(async () => { await new Promise<void>((resolve) => { release = resolve }); return { outcome: 'applied' } }) })
  const late = await slow.app.inject({ method: 'POST', url: '/integrations/slack/interactions', headers, payload: body })
  t.match({ status: late.statusCode, body: late.json() }, { status: 200, body: { text: /taking longer than usual/ } }, 'a port slower than Slack waits: answered anyway')
  t.equal(await metric(slow, 'timeout'), 1)
  release()

  const storeBacked = await app(t)
  const r = await storeBacked.app.inject({ method: 'POST', url: '/integrations/slack/interactions', headers, payload: body })
  t.equal(r.statusCode, 200, "the app's own port (the incident store): an incident it does not know")
  t.equal(await metric(storeBacked, 'unknown_incident'), 1)
})

t.test('SLACK_SIGNING_SECRET unset: the route is off (404), whatever is sent', async (t) => {
  const h = await app(t, { secret: null })
  const body = interactionBody(acknowledgeClick({ incidentId: '42' }))
  const res = await h.app.inject({ method: 'POST', url: '/integrations/slack/interactions', headers: { ...FORM, ...signSlackRequest(SECRET, body, nowSeconds) }, payload: body })
  t.equal(res.statusCode, 404)
  t.match(res.json(), { error: 'not_enabled', message: /SLACK_SIGNING_SECRET is not set/ })
})
