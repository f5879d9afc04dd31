import t, { type Test } from 'tap'
import { createSlackBotNotifier } from '../src/notify/slack/bot-notifier.js'
import { renderSlackMessage } from '../src/notify/slack/render.js'
import { classifyWebApiResult, createSlackWebApi, type SlackMethod } from '../src/notify/slack/web-api.js'
import type { HttpResponse } from '../src/notify/http.js'
import { startFakeSlackApi, type FakeSlackApi } from './helpers/fake-slack-api.js'
import { makeAlert, makeGroup } from './helpers/groups.js'

// The Slack Web API client and bot notifier against the fake Web API, and the classifier
// table for every error Slack documents for chat.postMessage / chat.update (contracts.md).

const now = new Date('2026-11-26T20:12:00Z')
const TOKEN = 'xoxb-SeCrEt-bot-token-0001'
const CHANNEL = 'C0123ABCD'
const deps = { fetch, timeoutMs: 10_000, now: () => now }
const message = renderSlackMessage(makeGroup([makeAlert()]), { name: 'slack-bot', channel: '#incident-response' }, { now, incidentId: 7 })

async function fakeApi (t: Test): Promise<FakeSlackApi> {
  const api = await startFakeSlackApi({ token: TOKEN, channels: [CHANNEL], notJoined: ['C0NOTJOIN1'], archived: ['C0ARCHIVE1'] })
  t.teardown(api.close)
  return api
}

const answer = (body: unknown, headers: Record<string, string> = {}, status = 200): HttpResponse =>
  ({ kind: 'response', status, headers: new Headers(headers), text: typeof body === 'string' ? body : JSON.stringify(body) })

t.test('classifier: every Slack Web API answer', async (t) => {
  const cases: Array<[string, SlackMethod, HttpResponse, Record<string, unknown>]> = [
    ['posted', 'chat.postMessage', answer({ ok: true, channel: CHANNEL, ts: '1.000001' }), { ok: true, status: 200, message: { channel: CHANNEL, ts: '1.000001' } }],
    ['HTTP 429 + Retry-After', 'chat.postMessage', answer({ ok: false, error: 'ratelimited' }, { 'retry-after': '30' }, 429), { ok: false, retryable: true, reason: 'rate_limited', retryAfterMs: 30_000 }],
    ['ok:false ratelimited + Retry-After', 'chat.update', answer({ ok: false, error: 'ratelimited' }, { 'retry-after': '3' }), { ok: false, retryable: true, reason: 'rate_limited', retryAfterMs: 3000, error: 'Slack chat.update: ratelimited' }],
    ['HTTP 500', 'chat.postMessage', answer('upstream', {}, 500), { ok: false, retryable: true, reason: 'server_error' }],
    ['ok:false internal_error', 'chat.postMessage', answer({ ok: false, error: 'internal_error' }), { ok: false, retryable: true, reason: 'server_error' }],
    ...['channel_not_found', 'not_in_channel', 'is_archived', 'invalid_auth', 'not_authed', 'token_revoked', 'account_inactive', 'invalid_blocks', 'msg_too_long', 'no_text'].map((error): [string, SlackMethod, HttpResponse, Record<string, unknown>] =>
      [`ok:false ${error}`, 'chat.postMessage', answer({ ok: false, error }), { ok: false, retryable: false, reason: 'rejected', status: 200, error: `Slack chat.postMessage: ${error}` }]),
    ['update: message_not_found', 'chat.update', answer({ ok: false, error: 'message_not_found' }), { ok: false, retryable: false, reason: 'message_gone', error: 'Slack chat.update: message_not_found' }],
    ['update: cant_update_message', 'chat.update', answer({ ok: false, error: 'cant_update_message' }), { ok: false, retryable: false, reason: 'message_gone' }],
    ['update: edit_window_closed', 'chat.update', answer({ ok: false, error: 'edit_window_closed' }), { ok: false, retryable: false, reason: 'rejected' }],
    ['post: message_not_found is no repost', 'chat.postMessage', answer({ ok: false, error: 'message_not_found' }), { ok: false, retryable: false, reason: 'rejected' }],
    ['missing scope names it', 'chat.postMessage', answer({ ok: false, error: 'missing_scope', needed: 'chat:write' }), { reason: 'rejected', error: 'Slack chat.postMessage: missing_scope (needed chat:write)' }],
    ['not a Web API answer', 'chat.postMessage', answer('<html>proxy</html>'), { ok: false, retryable: false, reason: 'rejected' }],
    ['token echoed back is scrubbed', 'chat.postMessage', answer({ ok: false, error: `invalid_auth ${TOKEN}` }), { reason: 'rejected', error: 'Slack chat.postMessage: invalid_auth [redacted]' }],
    ['timeout', 'chat.postMessage', { kind: 'timeout', message: 'no response within 10 ms' } as unknown as HttpResponse, { ok: false, retryable: true, reason: 'timeout' }]
  ]
  for (const [name, method, outcome, expected] of cases) {
    t.match(classifyWebApiResult(outcome, method, { now, secrets: [TOKEN] }), expected, name)
  }
})

t.test('client against the fake: post, thread reply, update; each ok:false error on demand', async (t) => {
  const fake = await fakeApi(t)
  const api = createSlackWebApi({ apiUrl: fake.apiUrl, token: TOKEN }, deps)
  const posted = await api.postMessage({ channel: CHANNEL, ...message })
  t.match(posted, { ok: true, status: 200, message: { channel: CHANNEL } })
  const ts = posted.ok ? posted.message?.ts ?? '' : ''
  const request = fake.received[0]
  t.equal(request?.path, '/api/chat.postMessage')
  t.equal(request?.headers.authorization, `Bearer ${TOKEN}`)
  t.equal(request?.headers['content-type'], 'application/json; charset=utf-8')

  t.match(await api.postMessage({ channel: CHANNEL, text: 'escalated', thread_ts: ts, reply_broadcast: true }), { ok: true })
  t.match(fake.messages[1], { threadTs: ts, replyBroadcast: true, text: 'escalated' }, 'a broadcast reply in the thread')
  t.match(await api.update({ channel: CHANNEL, ts, text: 'resolved', blocks: message.blocks }), { ok: true, message: { channel: CHANNEL, ts } })
  t.same(fake.messages[0]?.edits, [message.text, 'resolved'], 'the same message, edited')

  for (const error of ['ratelimited', 'channel_not_found', 'not_in_channel', 'is_archived', 'invalid_auth', 'token_revoked', 'invalid_blocks', 'msg_too_long', 'message_not_found', 'cant_update_message']) {
    fake.failWith(error, error === 'ratelimited' ? 2 : undefined)
    const result = await api.update({ channel: CHANNEL, ts, text: 'x' })
    const expected = error === 'ratelimited'
      ? { reason: 'rate_limited', retryable: true, retryAfterMs: 2000 }
      : { reason: error.includes('message') ? 'message_gone' : 'rejected', retryable: false, error: `Slack chat.update: ${error}` }
    t.match(result, { ok: false, ...expected }, error)
  }
  fake.setMode({ kind: 'rateLimit', retryAfterSeconds: 5 })
  t.match(await api.postMessage({ channel: CHANNEL, text: 'x' }), { ok: false, retryable: true, reason: 'rate_limited', status: 429, retryAfterMs: 5000 }, 'HTTP 429 + Retry-After')
})

t.test('the fake enforces what Slack enforces', async (t) => {
  const fake = await fakeApi(t)
  const call = async (method: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json; charset=utf-8' }): Promise<unknown> => {
    const res = await fetch(`${fake.apiUrl}/${method}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) })
    return await res.json()
  }
  const json = { 'content-type': 'application/json; charset=utf-8' }
  const post = { channel: CHANNEL, text: 'hello' }
  const posted = await call('chat.postMessage', post) as { ok: boolean, channel: string, ts: string }
  t.match(posted, { ok: true, channel: CHANNEL, ts: /^\d+\.\d{6}$/ }, 'answers {ok, channel, ts}')
  const refusals: Array<[string, string, unknown, Record<string, string> | undefined, string]> = [
    ['no token', 'chat.postMessage', post, json, 'not_authed'],
    ['wrong token', 'chat.postMessage', post, { ...json, authorization: 'Bearer xoxb-wrong' }, 'invalid_auth'],
    ['token without Bearer', 'chat.postMessage', post, { ...json, authorization: TOKEN }, 'invalid_auth'],
    ['JSON without charset', 'chat.postMessage', post, { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, 'invalid_arguments'],
    ['form-encoded', 'chat.postMessage', 'channel=C0123ABCD&text=hi', { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' }, 'invalid_arguments'],
    ['channel name, not id', 'chat.postMessage', { ...post, channel: '#incident-response' }, undefined, 'channel_not_found'],
    ['unknown channel id', 'chat.postMessage', { ...post, channel: 'C0NOSUCH01' }, undefined, 'channel_not_found'],
    ['bot not in channel', 'chat.postMessage', { ...post, channel: 'C0NOTJOIN1' }, undefined, 'not_in_channel'],
    ['archived channel', 'chat.postMessage', { ...post, channel: 'C0ARCHIVE1' }, undefined, 'is_archived'],
    ['no text, no blocks', 'chat.postMessage', { channel: CHANNEL }, undefined, 'no_text'],
    ['text too long', 'chat.postMessage', { channel: CHANNEL, text: 'x'.repeat(40_001) }, undefined, 'msg_too_long'],
    ['header over 150', 'chat.postMessage', { ...post, blocks: [{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }] }, undefined, 'invalid_blocks'],
    ['51 blocks', 'chat.postMessage', { ...post, blocks: Array.from({ length: 51 }, () => ({ type: 'divider' })) }, undefined, 'invalid_blocks'],
    ['thread that does not exist', 'chat.postMessage', { ...post, thread_ts: '1.000999' }, undefined, 'thread_not_found'],
    ['update of an unknown ts', 'chat.update', { channel: CHANNEL, ts: '1.000999', text: 'x' }, undefined, 'message_not_found'],
    ['update by channel name', 'chat.update', { channel: '#incident-response', ts: posted.ts, text: 'x' }, undefined, 'channel_not_found']
  ]
  for (const [name, method, body, headers, error] of refusals) {
    t.match(await call(method, body, headers), { ok: false, error }, name)
  }
  t.match(await call('chat.update', { channel: CHANNEL, ts: posted.ts, text: 'edited' }), { ok: true, channel: CHANNEL, ts: posted.ts }, 'update of the posted ts')
  t.match(await call('chat.postMessage', { ...post, blocks: Array.from({ length: 50 }, () => ({ type: 'divider' })) }), { ok: true }, '50 blocks pass')
  fake.deleteMessage(CHANNEL, posted.ts)
  t.match(await call('chat.update', { channel: CHANNEL, ts: posted.ts, text: 'x' }), { ok: false, error: 'message_not_found' }, 'a deleted message cannot be edited')
})

t.test('bot notifier: one post per notification; the previousMessage seam edits, and reposts when the message is gone', async (t) => {
  const fake = await fakeApi(t)
  const bot = createSlackBotNotifier({ apiUrl: fake.apiUrl, token: TOKEN, channelId: CHANNEL }, deps)
  const first = await bot.send(message)
  const second = await bot.send(message)
  t.ok(first.ok && second.ok, 'both posted')
  t.equal(fake.messages.length, 2, 'send() posts a new message each time, like the webhook form')
  const ref = first.ok ? first.message : undefined
  if (ref === undefined) throw new Error('no message ref')

  t.match(await bot.deliver({ ...message, text: 'resolved' }, { previousMessage: ref }), { ok: true, message: ref }, 'edited in place')
  t.equal(fake.messages.length, 2)
  t.same(fake.messages[0]?.edits, [message.text, 'resolved'])

  t.match(await bot.reply(ref, 'Acknowledged by @jane'), { ok: true })
  t.match(await bot.reply(ref, 'Escalated to the engineering manager', { broadcast: true }), { ok: true })
  t.match(fake.messages.slice(2), [{ threadTs: ref.ts, text: 'Acknowledged by @jane' }, { threadTs: ref.ts, replyBroadcast: true }])
  t.notOk('replyBroadcast' in (fake.messages[2] ?? {}), 'a plain reply is not broadcast')

  fake.deleteMessage(ref.channel, ref.ts)
  const reposted = await bot.deliver(message, { previousMessage: ref })
  t.match(reposted, { ok: true, message: { channel: CHANNEL } }, 'message_not_found → posted anew')
  t.not(reposted.ok ? reposted.message?.ts : ref.ts, ref.ts, 'with a new ts for the caller to store')

  fake.failWith('channel_not_found')
  t.match(await bot.send(message), { ok: false, retryable: false, reason: 'rejected', error: 'Slack chat.postMessage: channel_not_found' }, 'a dead letter naming the error')
  fake.setMode({ kind: 'ok' })
  t.match(await bot.send({ blocks: [] }), { ok: false, reason: 'client_error' }, 'a body without text is refused before sending')
})
