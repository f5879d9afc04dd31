import t from 'tap'
import { startFakeSlack, validateSlackMessage } from './helpers/fake-slack.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'

// The fakes must refuse exactly what the services refuse (contracts.md), or tests against
// them prove nothing. Each limit is checked at the boundary: N passes, N+1 fails.

const section = (text: string): object => ({ type: 'section', text: { type: 'mrkdwn', text } })
const mrkdwn = (text: string): object => ({ type: 'mrkdwn', text })
const button = (text: string, extra: object = {}): object => ({ type: 'button', text: { type: 'plain_text', text }, ...extra })
const header = (text: string): object => ({ type: 'header', text: { type: 'plain_text', text } })
const times = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i))

t.test('Slack: Block Kit limits at their boundaries', async (t) => {
  const cases: Array<[string, object, object]> = [
    ['blocks', { blocks: times(50, () => section('x')) }, { blocks: times(51, () => section('x')) }],
    ['section text', { blocks: [section('x'.repeat(3000))] }, { blocks: [section('x'.repeat(3001))] }],
    ['fields count', { blocks: [{ type: 'section', fields: times(10, () => mrkdwn('f')) }] }, { blocks: [{ type: 'section', fields: times(11, () => mrkdwn('f')) }] }],
    ['field text', { blocks: [{ type: 'section', fields: [mrkdwn('f'.repeat(2000))] }] }, { blocks: [{ type: 'section', fields: [mrkdwn('f'.repeat(2001))] }] }],
    ['header text', { blocks: [header('h'.repeat(150))] }, { blocks: [header('h'.repeat(151))] }],
    ['context elements', { blocks: [{ type: 'context', elements: times(10, () => mrkdwn('c')) }] }, { blocks: [{ type: 'context', elements: times(11, () => mrkdwn('c')) }] }],
    ['actions elements', { blocks: [{ type: 'actions', elements: times(25, (i) => button('b', { action_id: `a${i}` })) }] }, { blocks: [{ type: 'actions', elements: times(26, (i) => button('b', { action_id: `a${i}` })) }] }],
    ['button text', { blocks: [{ type: 'actions', elements: [button('b'.repeat(75))] }] }, { blocks: [{ type: 'actions', elements: [button('b'.repeat(76))] }] }],
    ['button url', { blocks: [{ type: 'actions', elements: [button('b', { url: `https://x.example/${'u'.repeat(2982)}` })] }] }, { blocks: [{ type: 'actions', elements: [button('b', { url: `https://x.example/${'u'.repeat(2983)}` })] }] }],
    ['block_id', { blocks: [{ ...section('x'), block_id: 'i'.repeat(255) }] }, { blocks: [{ ...section('x'), block_id: 'i'.repeat(256) }] }],
    ['action_id', { blocks: [{ type: 'actions', elements: [button('b', { action_id: 'a'.repeat(255) })] }] }, { blocks: [{ type: 'actions', elements: [button('b', { action_id: 'a'.repeat(256) })] }] }]
  ]
  for (const [name, ok, tooBig] of cases) {
    t.equal(validateSlackMessage({ text: 'fallback', ...ok }), null, `${name}: at the limit`)
    t.match(validateSlackMessage({ text: 'fallback', ...tooBig }), { error: 'invalid_blocks' }, `${name}: over the limit`)
  }
  const invalid: Array<[string, object]> = [
    ['header as mrkdwn', { blocks: [{ type: 'header', text: mrkdwn('h') }] }],
    ['empty text object', { blocks: [section('')] }],
    ['section with neither text nor fields', { blocks: [{ type: 'section' }] }],
    ['unknown block type', { blocks: [{ type: 'sectoin', text: mrkdwn('x') }] }],
    ['duplicate block_id', { blocks: [{ ...section('a'), block_id: 'b' }, { ...section('b'), block_id: 'b' }] }],
    ['duplicate action_id', { blocks: [{ type: 'actions', elements: [button('a', { action_id: 'x' }), button('b', { action_id: 'x' })] }] }],
    ['button url not a URL', { blocks: [{ type: 'actions', elements: [button('b', { url: 'not a url' })] }] }],
    ['emoji on mrkdwn', { blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'x', emoji: true } }] }],
    ['blocks not an array', { blocks: { type: 'divider' } }]
  ]
  for (const [name, body] of invalid) t.match(validateSlackMessage({ text: 'fallback', ...body }), { error: 'invalid_blocks' }, name)
})

t.test('Slack over HTTP: payload, no_text, success, records', async (t) => {
  const slack = await startFakeSlack()
  t.teardown(() => slack.close())
  const post = async (body: string, url = slack.url): Promise<[number, string]> => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    return [res.status, await res.text()]
  }
  t.same(await post('{not json'), [400, 'invalid_payload'])
  t.same(await post('[1,2]'), [400, 'invalid_payload'])
  t.same(await post('{}'), [400, 'no_text'])
  t.same(await post('{"text":"   ","blocks":[]}'), [400, 'no_text'])
  t.same(await post(JSON.stringify({ blocks: [header('x'.repeat(151))] })), [400, 'invalid_blocks'])
  t.same(await post('{"text":"hello"}'), [200, 'ok'])
  t.same(await post(JSON.stringify({ blocks: [section('only blocks')] })), [200, 'ok'], 'blocks alone are enough')
  t.same(await post('{"text":"x"}', slack.url.replace('/services/', '/elsewhere/')), [404, 'no_service'])
  t.equal(slack.received.length, 8)
  t.same(slack.accepted, [{ text: 'hello' }, { blocks: [section('only blocks')] }])
  t.match(slack.received[4], { status: 400, accepted: false, detail: /blocks\[0\]\.text\.text length 151 > 150/ })
})

t.test('PagerDuty: what the Events API v2 refuses', async (t) => {
  const pd = await startFakePagerDuty()
  t.teardown(() => pd.close())
  const key = 'k'.repeat(32)
  const trigger = { routing_key: key, event_action: 'trigger', payload: { summary: 's', source: 'host', severity: 'critical' } }
  const post = async (body: unknown): Promise<{ status: number, json: Record<string, unknown> }> => {
    const res = await fetch(pd.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) })
    return { status: res.status, json: await res.json() as Record<string, unknown> }
  }
  const rejected: Array<[string, unknown, RegExp]> = [
    ['invalid JSON', '{', /JSON/],
    ['routing_key 31', { ...trigger, routing_key: 'k'.repeat(31) }, /routing_key/],
    ['routing_key 33', { ...trigger, routing_key: 'k'.repeat(33) }, /routing_key/],
    ['no routing_key', { ...trigger, routing_key: undefined }, /routing_key/],
    ['event_action', { ...trigger, event_action: 'create' }, /event_action/],
    ['dedup_key 256', { ...trigger, dedup_key: 'd'.repeat(256) }, /dedup_key/],
    ['resolve without dedup_key', { routing_key: key, event_action: 'resolve' }, /dedup_key/],
    ['acknowledge without dedup_key', { routing_key: key, event_action: 'acknowledge' }, /dedup_key/],
    ['trigger without payload', { routing_key: key, event_action: 'trigger' }, /payload/],
    ['no summary', { ...trigger, payload: { ...trigger.payload, summary: undefined } }, /summary/],
    ['summary 1025', { ...trigger, payload: { ...trigger.payload, summary: 's'.repeat(1025) } }, /summary/],
    ['empty source', { ...trigger, payload: { ...trigger.payload, source: '' } }, /source/],
    ['severity high', { ...trigger, payload: { ...trigger.payload, severity: 'high' } }, /severity/],
    ['bad timestamp', { ...trigger, payload: { ...trigger.payload, timestamp: 'yesterday' } }, /timestamp/],
    ['custom_details not an object', { ...trigger, payload: { ...trigger.payload, custom_details: 'x' } }, /custom_details/],
    ['image over http', { ...trigger, images: [{ src: 'http://x.example/a.png' }] }, /images/],
    ['over 512 KB', { ...trigger, payload: { ...trigger.payload, custom_details: { blob: 'b'.repeat(512 * 1024) } } }, /larger/]
  ]
  for (const [name, body, error] of rejected) {
    const r = await post(body)
    t.equal(r.status, 400, name)
    t.match(r.json, { status: 'invalid event', message: 'Event object is invalid', errors: [error] }, name)
  }
  const ok = await post({ ...trigger, dedup_key: 'd'.repeat(255), payload: { ...trigger.payload, summary: 's'.repeat(1024), timestamp: '2026-11-26T20:11:00.000Z' } })
  t.same(ok, { status: 202, json: { status: 'success', message: 'Event processed', dedup_key: 'd'.repeat(255) } })
  const generated = await post(trigger)
  t.match(generated.json, { status: 'success', dedup_key: /^[0-9a-f]{32}$/ })
  t.equal((await post({ routing_key: key, event_action: 'resolve', dedup_key: 'd'.repeat(255) })).status, 202, 'resolve needs no payload')
  t.equal(pd.accepted.length, 3)
  t.equal(pd.received.length, rejected.length + 3)
})

t.test('PagerDuty: per-routing-key rate limit when asked', async (t) => {
  let clock = 0
  const pd = await startFakePagerDuty({ eventsPerMinute: 2, now: () => clock })
  t.teardown(() => pd.close())
  const send = async (key: string): Promise<number> => (await fetch(pd.url, { method: 'POST', body: JSON.stringify({ routing_key: key.repeat(32), event_action: 'resolve', dedup_key: 'd' }) })).status
  t.same([await send('a'), await send('a'), await send('a'), await send('b')], [202, 202, 429, 202])
  clock += 60_000
  t.equal(await send('a'), 202, 'the trailing window moved on')
})

t.test('modes: status, rateLimit, failNext, hang; close() never hangs', async (t) => {
  const pd = await startFakePagerDuty()
  t.teardown(() => pd.close())
  const valid = JSON.stringify({ routing_key: 'k'.repeat(32), event_action: 'resolve', dedup_key: 'd' })
  const post = async (): Promise<Response> => fetch(pd.url, { method: 'POST', body: valid })
  pd.setMode({ kind: 'status', code: 500 })
  t.equal((await post()).status, 500)
  pd.setMode({ kind: 'rateLimit', retryAfterSeconds: 9 })
  const limited = await post()
  t.equal(limited.status, 429)
  t.equal(limited.headers.get('retry-after'), '9')
  pd.setMode({ kind: 'failNext', count: 2, code: 502 })
  t.same([(await post()).status, (await post()).status, (await post()).status], [502, 502, 202])
  pd.setMode({ kind: 'hang' })
  const hanging = post().then((r) => r.status, () => 'aborted')
  await pd.waitForRequests(6)
  t.equal(pd.received.at(-1)?.status, null, 'recorded while hanging')
  await pd.close()
  t.equal(await hanging, 'aborted', 'close() destroyed the hanging request')
  t.equal(pd.accepted.length, 1)
})
