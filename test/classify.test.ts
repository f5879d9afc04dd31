import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { classifyHttpResult, parseRetryAfter, postJson, scrub, type PostOutcome } from '../src/notify/http.js'
import { startFakeSlack } from './helpers/fake-slack.js'

const now = new Date('2026-11-26T20:12:00Z')
const response = (status: number, text = '', headers: Record<string, string> = {}): PostOutcome =>
  ({ kind: 'response', status, headers: new Headers(headers), text })

t.test('classification table over status codes', async (t) => {
  const table: Array<[string, PostOutcome, Record<string, unknown>]> = [
    ['200', response(200, 'ok'), { ok: true, status: 200 }],
    ['202', response(202, '{}'), { ok: true, status: 202 }],
    ['400', response(400, 'invalid_payload'), { ok: false, retryable: false, reason: 'client_error', status: 400, error: 'HTTP 400: invalid_payload' }],
    ['403', response(403, 'action_prohibited'), { ok: false, retryable: false, reason: 'client_error', status: 403 }],
    ['404', response(404, 'channel_not_found'), { ok: false, retryable: false, reason: 'client_error', status: 404 }],
    ['410', response(410, 'channel_is_archived'), { ok: false, retryable: false, reason: 'client_error', status: 410, error: 'HTTP 410: channel_is_archived' }],
    ['429 + Retry-After seconds', response(429, 'rate_limited', { 'retry-after': '30' }), { ok: false, retryable: true, reason: 'rate_limited', status: 429, retryAfterMs: 30_000 }],
    ['429 + Retry-After date', response(429, '', { 'retry-after': 'Thu, 26 Nov 2026 20:12:45 GMT' }), { ok: false, retryable: true, reason: 'rate_limited', retryAfterMs: 45_000 }],
    ['429 without Retry-After', response(429, ''), { ok: false, retryable: true, reason: 'rate_limited', status: 429, error: 'HTTP 429' }],
    ['500', response(500, 'rollup_error'), { ok: false, retryable: true, reason: 'server_error', status: 500 }],
    ['502', response(502, '<html>bad gateway</html>'), { ok: false, retryable: true, reason: 'server_error', status: 502 }],
    ['503 + Retry-After', response(503, '', { 'retry-after': '5' }), { ok: false, retryable: true, reason: 'server_error', status: 503, retryAfterMs: 5000 }],
    ['408', response(408, ''), { ok: false, retryable: true, reason: 'timeout', status: 408 }],
    ['301 (redirects not followed)', response(301, ''), { ok: false, retryable: false, reason: 'client_error', status: 301 }],
    ['timeout', { kind: 'timeout', message: 'no response within 200 ms' }, { ok: false, retryable: true, reason: 'timeout', error: 'no response within 200 ms' }],
    ['connection refused', { kind: 'network', message: 'connection failed (ECONNREFUSED)' }, { ok: false, retryable: true, reason: 'network' }],
    ['invalid request', { kind: 'invalid_request', message: 'destination URL is not http(s)' }, { ok: false, retryable: false, reason: 'client_error' }]
  ]
  for (const [name, outcome, expected] of table) t.match(classifyHttpResult(outcome, { now }), expected, name)
  t.notOk('retryAfterMs' in classifyHttpResult(response(429, ''), { now }), 'no Retry-After, no retryAfterMs')
})

t.test('Retry-After parsing and cap', async (t) => {
  t.equal(parseRetryAfter('120', now), 120_000)
  t.equal(parseRetryAfter('1.5', now), 1500)
  t.equal(parseRetryAfter('0', now), 0)
  t.equal(parseRetryAfter('Thu, 26 Nov 2026 20:11:00 GMT', now), 0, 'a date in the past means now')
  t.equal(parseRetryAfter('999999', now), 15 * 60_000, 'capped')
  t.equal(parseRetryAfter('60', now, 10_000), 10_000, 'cap is configurable')
  t.equal(parseRetryAfter('soon', now), undefined)
  t.equal(parseRetryAfter('-5', now), undefined)
  t.equal(parseRetryAfter(null, now), undefined)
})

t.test('error text: service description, scrubbed, bounded', async (t) => {
  const secret = 'SeCrEt-ROUTING-KEY-0123456789abc'
  const r = classifyHttpResult(response(400, `{"message":"bad key ${secret}","url":"https:\\/\\/x\\/${secret}"} ${encodeURIComponent(secret + '/')} ${'z'.repeat(5000)}`), { now, secrets: [secret] })
  t.equal(r.ok, false)
  if (r.ok) return
  t.notOk(r.error.includes(secret))
  t.notOk(r.error.includes(encodeURIComponent(secret)))
  t.ok(r.error.length <= 300)
  t.match(r.error, /\[redacted\]/)
  t.equal(scrub('a\n  b\tc', []), 'a b c', 'one line')
  const described = classifyHttpResult(response(400, '{"errors":["x"]}'), { now, describe: () => 'described' })
  t.match(described, { error: 'HTTP 400: described' })
})

t.test('postJson: real transport failures become outcomes, never throws', async (t) => {
  // A port that was just closed: connection refused.
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  const refused = await postJson(`http://127.0.0.1:${port}/secret-path-token`, { a: 1 }, { fetch, timeoutMs: 5000 })
  t.match(refused, { kind: 'network', message: 'connection failed (ECONNREFUSED)' })
  t.match(classifyHttpResult(refused, { now }), { ok: false, retryable: true, reason: 'network' })

  const slack = await startFakeSlack()
  t.teardown(() => slack.close())
  slack.setMode({ kind: 'hang' })
  const hung = await postJson(slack.url, { text: 'x' }, { fetch, timeoutMs: 200 })
  t.same(hung, { kind: 'timeout', message: 'no response within 200 ms' })
  t.match(classifyHttpResult(hung, { now }), { ok: false, retryable: true, reason: 'timeout' })

  t.match(await postJson('not a url', {}, { fetch, timeoutMs: 100 }), { kind: 'invalid_request' })
  t.match(await postJson('file:///etc/passwd', {}, { fetch, timeoutMs: 100 }), { kind: 'invalid_request' })
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  t.match(await postJson(slack.url, cyclic, { fetch, timeoutMs: 100 }), { kind: 'invalid_request' })
  const throwing = (async () => { throw new TypeError('fetch failed: https://hooks.slack.com/services/T/B/secret') }) as unknown as typeof fetch
  const thrown = await postJson('https://hooks.slack.com/services/T/B/secret', {}, { fetch: throwing, timeoutMs: 100 })
  t.same(thrown, { kind: 'network', message: 'connection failed' }, 'the error message (with its URL) is not echoed')

  slack.setMode({ kind: 'ok' })
  const ok = await postJson(slack.url, { text: 'hello' }, { fetch, timeoutMs: 5000, headers: { 'x-extra': '1' } })
  t.match(ok, { kind: 'response', status: 200, text: 'ok' })
  t.equal(slack.received.at(-1)?.headers['content-type'], 'application/json')
  t.equal(slack.received.at(-1)?.headers['x-extra'], '1')
})
