import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createSlackNotifier } from '../src/notify/slack/notifier.js'
import { createPagerDutyNotifier } from '../src/notify/pagerduty/notifier.js'
import { renderSlackMessage } from '../src/notify/slack/render.js'
import { renderPagerDutyEvent } from '../src/notify/pagerduty/render.js'
import type { SendResult } from '../src/notify/result.js'
import { startFakeSlack } from './helpers/fake-slack.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'
import type { FakeMode } from './helpers/fake-http.js'
import { makeAlert, makeGroup } from './helpers/groups.js'

const now = new Date('2026-11-26T20:12:00Z')
const group = makeGroup([makeAlert()])
const slackBody = renderSlackMessage(group, { name: 'slack-alerts', channel: '#alerts' }, { now })
const pdEvent = renderPagerDutyEvent(group, { name: 'pagerduty' }, { now })
// Recognisable fakes: if either shows up in an error, a test below says so.
const SLACK_TOKEN = 'XoXSeCrEtSlackWebhookTok'
const ROUTING_KEY = 'PDSeCrEtRoutingKey00000000000000'
const deps = { fetch, timeoutMs: 300, now: () => now }
// For answers that do come: a cold first request on a loaded machine can exceed 300 ms.
const patientDeps = { ...deps, timeoutMs: 10_000 }

async function closedPortUrl (path: string): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return `http://127.0.0.1:${port}${path}`
}

t.test('Slack notifier against every fake mode', async (t) => {
  const slack = await startFakeSlack()
  t.teardown(() => slack.close())
  const notifier = createSlackNotifier({ webhookUrl: slack.webhookUrl(SLACK_TOKEN) }, deps)
  const patient = createSlackNotifier({ webhookUrl: slack.webhookUrl(SLACK_TOKEN) }, patientDeps)
  const cases: Array<[string, FakeMode, Record<string, unknown>]> = [
    ['ok', { kind: 'ok' }, { ok: true, status: 200 }],
    ['400', { kind: 'status', code: 400 }, { ok: false, retryable: false, reason: 'client_error', status: 400, error: 'HTTP 400: invalid_payload' }],
    ['403', { kind: 'status', code: 403 }, { ok: false, retryable: false, reason: 'client_error', error: 'HTTP 403: action_prohibited' }],
    ['404', { kind: 'status', code: 404 }, { ok: false, retryable: false, reason: 'client_error', error: 'HTTP 404: channel_not_found' }],
    ['410', { kind: 'status', code: 410 }, { ok: false, retryable: false, reason: 'client_error', error: 'HTTP 410: channel_is_archived' }],
    ['500', { kind: 'status', code: 500 }, { ok: false, retryable: true, reason: 'server_error', error: 'HTTP 500: rollup_error' }],
    ['503', { kind: 'status', code: 503, body: 'unavailable' }, { ok: false, retryable: true, reason: 'server_error' }],
    ['429', { kind: 'rateLimit', retryAfterSeconds: 7 }, { ok: false, retryable: true, reason: 'rate_limited', retryAfterMs: 7000 }],
    ['200 not ok', { kind: 'status', code: 200, body: 'no_active_hooks' }, { ok: false, retryable: false, reason: 'rejected', error: 'Slack said: no_active_hooks' }],
    ['200 ok:false', { kind: 'status', code: 200, body: '{"ok":false,"error":"invalid_auth"}' }, { ok: false, retryable: false, reason: 'rejected', error: 'Slack said: invalid_auth' }],
    ['200 ok:true json', { kind: 'status', code: 200, body: '{"ok":true}' }, { ok: true }],
    ['hang', { kind: 'hang' }, { ok: false, retryable: true, reason: 'timeout' }]
  ]
  for (const [name, mode, expected] of cases) {
    slack.setMode(mode)
    t.match(await (mode.kind === 'hang' ? notifier : patient).send(slackBody), expected, name)
  }
  slack.setMode({ kind: 'ok' })
  t.match(await notifier.send({ blocks: [{ type: 'header', text: { type: 'plain_text', text: 'x'.repeat(151) } }] }), { ok: false, retryable: false, reason: 'client_error', error: 'HTTP 400: invalid_blocks' }, 'the fake refuses an invalid message and the notifier dead-letters it')
  t.match(await notifier.send({}), { reason: 'client_error', error: 'HTTP 400: no_text' })
})

t.test('Slack notifier: fail the next N, then recover', async (t) => {
  const slack = await startFakeSlack()
  t.teardown(() => slack.close())
  const notifier = createSlackNotifier({ webhookUrl: slack.url }, deps)
  slack.setMode({ kind: 'failNext', count: 2, code: 503 })
  const results = [await notifier.send(slackBody), await notifier.send(slackBody), await notifier.send(slackBody)]
  t.same(results.map((r) => r.ok ? 'ok' : r.reason), ['server_error', 'server_error', 'ok'])
  t.equal(slack.accepted.length, 1)
  t.equal(slack.received.length, 3)
})

t.test('Slack notifier: the fake enforces 1 msg/s per webhook when asked', async (t) => {
  let clock = 1_000_000
  const slack = await startFakeSlack({ rateLimit: true, now: () => clock })
  t.teardown(() => slack.close())
  const a = createSlackNotifier({ webhookUrl: slack.webhookUrl('aaaaaaaaaaaaaaaa') }, deps)
  const b = createSlackNotifier({ webhookUrl: slack.webhookUrl('bbbbbbbbbbbbbbbb') }, deps)
  t.match(await a.send(slackBody), { ok: true })
  t.match(await a.send(slackBody), { ok: false, reason: 'rate_limited', retryAfterMs: 1000 })
  t.match(await b.send(slackBody), { ok: true }, 'another webhook has its own budget')
  clock += 1000
  t.match(await a.send(slackBody), { ok: true })
})

t.test('PagerDuty notifier against every fake mode', async (t) => {
  const pd = await startFakePagerDuty()
  t.teardown(() => pd.close())
  const notifier = createPagerDutyNotifier({ routingKey: ROUTING_KEY, eventsUrl: pd.url }, deps)
  const patient = createPagerDutyNotifier({ routingKey: ROUTING_KEY, eventsUrl: pd.url }, patientDeps)
  const cases: Array<[string, FakeMode, Record<string, unknown>]> = [
    ['ok', { kind: 'ok' }, { ok: true, status: 202 }],
    ['400', { kind: 'status', code: 400 }, { ok: false, retryable: false, reason: 'client_error', error: 'HTTP 400: Event object is invalid; Bad request' }],
    ['404', { kind: 'status', code: 404 }, { ok: false, retryable: false, reason: 'client_error' }],
    ['429', { kind: 'rateLimit' }, { ok: false, retryable: true, reason: 'rate_limited' }],
    ['500', { kind: 'status', code: 500 }, { ok: false, retryable: true, reason: 'server_error' }],
    ['502', { kind: 'status', code: 502 }, { ok: false, retryable: true, reason: 'server_error' }],
    ['hang', { kind: 'hang' }, { ok: false, retryable: true, reason: 'timeout' }]
  ]
  for (const [name, mode, expected] of cases) {
    pd.setMode(mode)
    t.match(await (mode.kind === 'hang' ? notifier : patient).send(pdEvent), expected, name)
  }
  pd.setMode({ kind: 'ok' })
  t.equal(pd.accepted.length, 1)
  t.match(pd.accepted[0], { routing_key: ROUTING_KEY, event_action: 'trigger', dedup_key: group.groupKeyHash }, 'routing_key added at send time')
  t.notOk('routing_key' in pdEvent, 'the rendered event is not modified')

  const short = createPagerDutyNotifier({ routingKey: 'too-short', eventsUrl: pd.url }, deps)
  t.match(await short.send(pdEvent), { ok: false, retryable: false, reason: 'client_error', error: /routing_key/ }, "PagerDuty's errors[] reach the result")
  t.match(await notifier.send({ ...pdEvent, payload: { ...pdEvent.payload, severity: 'high' } }), { reason: 'client_error', error: /severity/ })
  t.match(await notifier.send('not an event'), { ok: false, retryable: false, reason: 'client_error' })
})

t.test('PagerDuty notifier: fail the next N then recover; connection refused', async (t) => {
  const pd = await startFakePagerDuty()
  t.teardown(() => pd.close())
  const notifier = createPagerDutyNotifier({ routingKey: ROUTING_KEY, eventsUrl: pd.url }, deps)
  pd.setMode({ kind: 'failNext', count: 1 })
  t.match(await notifier.send(pdEvent), { ok: false, reason: 'server_error' })
  t.match(await notifier.send(pdEvent), { ok: true, status: 202 })
  const refused = createPagerDutyNotifier({ routingKey: ROUTING_KEY, eventsUrl: await closedPortUrl('/v2/enqueue') }, deps)
  t.match(await refused.send(pdEvent), { ok: false, retryable: true, reason: 'network' })
})

t.test('secrets never appear in any SendResult.error', async (t) => {
  const slack = await startFakeSlack()
  const pd = await startFakePagerDuty()
  t.teardown(async () => { await slack.close(); await pd.close() })
  const webhookUrl = slack.webhookUrl(SLACK_TOKEN)
  const slackNotifier = createSlackNotifier({ webhookUrl }, deps)
  const pdNotifier = createPagerDutyNotifier({ routingKey: ROUTING_KEY, eventsUrl: pd.url }, deps)
  // Services that echo the secret back, in every form we could think of.
  const path = new URL(webhookUrl).pathname
  const echoes = [webhookUrl, path, SLACK_TOKEN, encodeURIComponent(webhookUrl), JSON.stringify(webhookUrl)]
  const results: SendResult[] = []
  for (const echo of echoes) {
    for (const code of [200, 400, 404, 500]) {
      slack.setMode({ kind: 'status', code, body: `no such webhook: ${echo}` })
      results.push(await slackNotifier.send(slackBody))
      slack.setMode({ kind: 'status', code, body: JSON.stringify({ ok: false, error: `bad ${echo}` }) })
      results.push(await slackNotifier.send(slackBody))
    }
  }
  for (const code of [400, 429, 500]) {
    pd.setMode({ kind: 'status', code, body: JSON.stringify({ status: 'invalid event', message: `key ${ROUTING_KEY}`, errors: [`routing_key ${ROUTING_KEY} unknown`] }) })
    results.push(await pdNotifier.send(pdEvent))
  }
  for (const mode of [{ kind: 'hang' }, { kind: 'rateLimit', retryAfterSeconds: 1 }] as FakeMode[]) {
    slack.setMode(mode)
    pd.setMode(mode)
    results.push(await slackNotifier.send(slackBody), await pdNotifier.send(pdEvent))
  }
  await slack.close()
  await pd.close()
  results.push(await slackNotifier.send(slackBody), await pdNotifier.send(pdEvent))
  results.push(await createSlackNotifier({ webhookUrl: `ftp://hooks.example/${SLACK_TOKEN}` }, deps).send(slackBody))

  const errors = results.flatMap((r) => (r.ok ? [] : [r.error]))
  t.equal(errors.length, results.length, 'every case failed, so every error was checked')
  for (const e of errors) {
    t.notOk(e.includes(SLACK_TOKEN) || e.includes(ROUTING_KEY) || e.includes(path) || e.includes('127.0.0.1'), e)
  }
  t.ok(errors.some((e) => e.includes('[redacted]')), 'echoes were scrubbed, not just absent')
})
