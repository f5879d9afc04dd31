import t from 'tap'
import { startFakeSlack, validateSlackMessage } from './helpers/fake-slack.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'
import { PAGERDUTY_MAX_EVENT_BYTES } from '../src/notify/pagerduty/render.js'

// The fakes must refuse exactly what the services refuse (contracts.md), or tests against
// them prove nothing. Each limit is checked at the boundary: N passes, N+1 fails.

const section = (text: string): object => ({ type: 'section', text: { type: 'mrkdwn', text } })
const mrkdwn = (text: string): object => ({ type: 'mrkdwn', text })
const button = (text: string, extra: object = {}): object => ({ type: 'button', text: { type: 'plain_text', text }, ...extra })
const header = (text: string): object => ({ type: 'header', text: { type: 'plain_text', text } })
const times = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i))
const JSON_TYPE = { 'content-type': 'application/json' }

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
  const send = async (key: string): Promise<number> => (await fetch(pd.url, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ routing_key: key.repeat(32), event_action: 'resolve', dedup_key: 'd' }) })).status
  t.same([await send('a'), await send('a'), await send('a'), await send('b')], [202, 202, 429, 202])
  clock += 60_000
  t.equal(await send('a'), 202, 'the trailing window moved on')
})

t.test('modes: status, rateLimit, failNext, hang; close() never hangs', async (t) => {
  const pd = await startFakePagerDuty()
  t.teardown(() => pd.close())
  const valid = JSON.stringify({ routing_key: 'k'.repeat(32), event_action: 'resolve', dedup_key: 'd' })
  const post = async (): Promise<Response> => fetch(pd.url, { method: 'POST', headers: JSON_TYPE, body: valid })
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

t.test('Slack: attachments, web-only URLs', async (t) => {
  const cases: Array<[string, object, object]> = [
    ['attachments count', { attachments: times(100, () => ({ text: 'a' })) }, { attachments: times(101, () => ({ text: 'a' })) }]
  ]
  for (const [name, ok, tooMany] of cases) {
    t.equal(validateSlackMessage({ text: 'fallback', ...ok }), null, `${name}: at the limit`)
    t.match(validateSlackMessage({ text: 'fallback', ...tooMany }), { error: 'too_many_attachments' }, `${name}: over the limit`)
  }
  t.equal(validateSlackMessage({ attachments: [{ fallback: 'f', color: '#ff0000', title: 't', title_link: 'https://x.example/a', fields: [{ title: 'k', value: 'v' }], blocks: [section('x')] }] }), null, 'a full attachment alone is a message')
  const invalid: Array<[string, object, string]> = [
    ['attachments not an array', { attachments: { text: 'a' } }, 'invalid_attachments'],
    ['attachment not an object', { attachments: ['a'] }, 'invalid_attachments'],
    ['attachment showing nothing', { attachments: [{ color: '#ff0000' }] }, 'invalid_attachments'],
    ['attachment text not a string', { attachments: [{ text: 7 }] }, 'invalid_attachments'],
    ['attachment javascript: title_link', { attachments: [{ text: 'a', title_link: 'javascript:alert(1)' }] }, 'invalid_attachments'],
    ['attachment data: image_url', { attachments: [{ text: 'a', image_url: 'data:image/png;base64,AAAA' }] }, 'invalid_attachments'],
    ['attachment fields malformed', { attachments: [{ text: 'a', fields: [{ title: 'k' }] }] }, 'invalid_attachments'],
    ['attachment blocks over a Block Kit limit', { attachments: [{ blocks: [header('h'.repeat(151))] }] }, 'invalid_attachments'],
    ['javascript: button url', { blocks: [{ type: 'actions', elements: [button('b', { url: 'javascript:alert(1)' })] }] }, 'invalid_blocks'],
    ['ftp: button url', { blocks: [{ type: 'actions', elements: [button('b', { url: 'ftp://x.example/a' })] }] }, 'invalid_blocks'],
    ['javascript: image block', { blocks: [{ type: 'image', image_url: 'javascript:alert(1)', alt_text: 'a' }] }, 'invalid_blocks'],
    ['data: context image', { blocks: [{ type: 'context', elements: [{ type: 'image', image_url: 'data:image/png;base64,AAAA', alt_text: 'a' }] }] }, 'invalid_blocks']
  ]
  for (const [name, body, error] of invalid) t.match(validateSlackMessage({ text: 'fallback', ...body }), { error }, name)
  t.equal(validateSlackMessage({ text: 'x', blocks: [{ type: 'actions', elements: [button('b', { url: 'http://x.example/a' })] }, { type: 'image', image_url: 'https://x.example/a.png', alt_text: 'a' }] }), null, 'http and https URLs pass')
})

t.test('Slack over HTTP: only application/json, refused in every mode before the mode answers', async (t) => {
  const slack = await startFakeSlack()
  t.teardown(() => slack.close())
  const post = async (body: string, headers: Record<string, string> = JSON_TYPE): Promise<[number, string]> => {
    const res = await fetch(slack.url, { method: 'POST', headers, body })
    return [res.status, await res.text()]
  }
  const valid = '{"text":"hello"}'
  t.same(await post(valid, {}), [400, 'invalid_payload'], 'fetch default text/plain')
  t.same(await post(valid, { 'content-type': 'application/x-www-form-urlencoded' }), [400, 'invalid_payload'])
  t.same(await post(valid, { 'content-type': 'application/json; charset=utf-8' }), [200, 'ok'], 'parameters allowed')
  t.same(await post(valid, { 'content-type': 'Application/JSON' }), [200, 'ok'], 'media type is case-insensitive')
  const modes = [{ kind: 'status', code: 500 }, { kind: 'rateLimit', retryAfterSeconds: 3 }, { kind: 'failNext', count: 1, code: 503 }] as const
  for (const mode of modes) {
    slack.setMode(mode)
    t.same(await post('{"text":"   "}'), [400, 'no_text'], `${mode.kind}: an invalid message is refused first`)
    t.same(await post(valid, {}), [400, 'invalid_payload'], `${mode.kind}: a non-JSON Content-Type is refused first`)
  }
  t.same(await post(valid), [503, 'error'], 'failNext still pending: the refusals did not use it up')
  t.same(await post(valid), [200, 'ok'], 'then back to normal')
})

t.test('PagerDuty: size, summary, URLs and Content-Type at their boundaries', async (t) => {
  const pd = await startFakePagerDuty()
  t.teardown(() => pd.close())
  const key = 'k'.repeat(32)
  const trigger = { routing_key: key, event_action: 'trigger', payload: { summary: 's', source: 'host', severity: 'critical' } }
  const post = async (body: unknown, headers: Record<string, string> = JSON_TYPE): Promise<{ status: number, errors: string }> => {
    const res = await fetch(pd.url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) })
    const json = await res.json() as { errors?: string[] }
    return { status: res.status, errors: (json.errors ?? []).join('; ') }
  }
  // An event of exactly `bytes` bytes, padded inside custom_details.
  const sized = (bytes: number): string => {
    const event = (blob: string): string => JSON.stringify({ ...trigger, payload: { ...trigger.payload, custom_details: { blob } } })
    const body = event('b'.repeat(bytes - Buffer.byteLength(event(''))))
    t.equal(Buffer.byteLength(body), bytes)
    return body
  }
  t.equal(PAGERDUTY_MAX_EVENT_BYTES, 512_000, 'the renderer\'s limit, which the fake shares')
  t.equal((await post(sized(PAGERDUTY_MAX_EVENT_BYTES))).status, 202, 'exactly 512,000 bytes is accepted')
  t.match(await post(sized(PAGERDUTY_MAX_EVENT_BYTES + 1)), { status: 400, errors: /larger than 512000 bytes/ }, 'one byte over is refused')

  const payload = (over: object): object => ({ ...trigger, payload: { ...trigger.payload, ...over } })
  t.match(await post(payload({ summary: ' \t\n' })), { status: 400, errors: /summary/ }, 'whitespace-only summary')
  t.equal((await post(payload({ summary: ' s ' }))).status, 202, 'summary with text around spaces')
  const refused: Array<[string, object, RegExp]> = [
    ['javascript: link', { ...trigger, links: [{ href: 'javascript:alert(1)', text: 'x' }] }, /links/],
    ['relative link', { ...trigger, links: [{ href: '/runbooks/a.md' }] }, /links/],
    ['link text not a string', { ...trigger, links: [{ href: 'https://x.example', text: 1 }] }, /links/],
    ['image href javascript:', { ...trigger, images: [{ src: 'https://x.example/a.png', href: 'javascript:alert(1)' }] }, /images/],
    ['image src not a URL', { ...trigger, images: [{ src: 'https://' }] }, /images/],
    ['client_url javascript:', { ...trigger, client_url: 'javascript:alert(1)' }, /client_url/]
  ]
  for (const [name, body, error] of refused) t.match(await post(body), { status: 400, errors: error }, name)
  t.equal((await post({ ...trigger, links: [{ href: 'http://x.example/a', text: 'a' }, { href: 'https://x.example/b' }], images: [{ src: 'https://x.example/a.png', href: 'https://x.example', alt: 'a' }], client_url: 'https://x.example' })).status, 202, 'web URLs pass')

  t.match(await post(trigger, {}), { status: 400, errors: /Content-Type must be application\/json/ }, 'fetch default text/plain')
  t.match(await post(trigger, { 'content-type': 'application/x-www-form-urlencoded' }), { status: 400, errors: /Content-Type/ })
  t.equal((await post(trigger, { 'content-type': 'application/json; charset=utf-8' })).status, 202, 'parameters allowed')
})

t.test('PagerDuty: status, rateLimit and failNext refuse an invalid event first, without using up failNext', async (t) => {
  const pd = await startFakePagerDuty()
  t.teardown(() => pd.close())
  const valid = JSON.stringify({ routing_key: 'k'.repeat(32), event_action: 'resolve', dedup_key: 'd' })
  const invalid = JSON.stringify({ routing_key: 'short', event_action: 'resolve', dedup_key: 'd' })
  const post = async (body: string, headers: Record<string, string> = JSON_TYPE): Promise<number> => (await fetch(pd.url, { method: 'POST', headers, body })).status
  const modes = [{ kind: 'status', code: 500 }, { kind: 'rateLimit', retryAfterSeconds: 3 }, { kind: 'failNext', count: 1, code: 502 }] as const
  for (const mode of modes) {
    pd.setMode(mode)
    t.equal(await post(invalid), 400, `${mode.kind}: invalid event refused first`)
    t.equal(await post(valid, {}), 400, `${mode.kind}: non-JSON Content-Type refused first`)
  }
  t.equal(await post(valid), 502, 'failNext still pending')
  t.equal(await post(valid), 202, 'then back to normal')
})
