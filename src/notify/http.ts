import type { SendResult } from './result.js'
import { truncate } from './text.js'

// The one HTTP path every notifier uses, and the one place a response becomes a SendResult
// (Alertmanager's notify.RetryStatusCode idea). Never throws; never echoes a URL.

export interface HttpResponse { kind: 'response', status: number, headers: Headers, text: string }
export interface TransportFailure {
  kind: 'timeout' | 'network' | 'invalid_request'
  // Safe to show: built from error codes, never from the URL or the request.
  message: string
}
export type PostOutcome = HttpResponse | TransportFailure

export interface PostOptions {
  fetch: typeof fetch
  timeoutMs: number
  headers?: Record<string, string>
}

const MAX_RESPONSE_BYTES = 64 * 1024   // error bodies are short; a runaway body is not read on
const MAX_ERROR_CHARS = 300
export const DEFAULT_MAX_RETRY_AFTER_MS = 15 * 60_000

export async function postJson (url: string, body: unknown, opts: PostOptions): Promise<PostOutcome> {
  let target: URL
  let payload: string
  try {
    target = new URL(url)
    payload = JSON.stringify(body)
  } catch {
    return { kind: 'invalid_request', message: 'destination URL or body is not valid' }
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') {
    return { kind: 'invalid_request', message: 'destination URL is not http(s)' }
  }
  try {
    const res = await opts.fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'alert-enricher', ...opts.headers },
      body: payload,
      // A webhook that redirects is misconfigured; following it could send the body elsewhere.
      redirect: 'manual',
      signal: AbortSignal.timeout(opts.timeoutMs)
    })
    const text = await readText(res, MAX_RESPONSE_BYTES)
    return { kind: 'response', status: res.status, headers: res.headers, text }
  } catch (err) {
    return transportFailure(err, opts.timeoutMs)
  }
}

async function readText (res: Response, maxBytes: number): Promise<string> {
  if (res.body === null) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    while (total < maxBytes) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value)
      total += value.byteLength
    }
  } finally {
    await reader.cancel().catch(() => undefined)
  }
  return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, maxBytes))
}

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

function transportFailure (err: unknown, timeoutMs: number): TransportFailure {
  const name = (err as { name?: unknown } | null)?.name
  const code = errorCode(err)
  if (name === 'TimeoutError' || name === 'AbortError' || (code !== undefined && TIMEOUT_CODES.has(code))) {
    return { kind: 'timeout', message: `no response within ${timeoutMs} ms` }
  }
  // Only the code: fetch error messages can carry the URL, and the URL can be the secret.
  return { kind: 'network', message: code === undefined ? 'connection failed' : `connection failed (${code})` }
}

function errorCode (err: unknown): string | undefined {
  let e: unknown = err
  for (let depth = 0; depth < 4 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code)) return code
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

export interface ClassifyOptions {
  now: Date
  // Values to scrub from any text echoed into the result (webhook URL, routing key, ...).
  secrets?: readonly string[]
  // Pulls the service's own error text out of a response body (default: the body itself).
  describe?: (text: string) => string
  maxRetryAfterMs?: number
}

export function classifyHttpResult (outcome: PostOutcome, opts: ClassifyOptions): SendResult {
  const secrets = opts.secrets ?? []
  if (outcome.kind !== 'response') {
    const error = scrub(outcome.message, secrets)
    if (outcome.kind === 'invalid_request') return { ok: false, retryable: false, reason: 'client_error', error }
    return { ok: false, retryable: true, reason: outcome.kind, error }
  }

  const { status } = outcome
  if (status >= 200 && status < 300) return { ok: true, status }
  const detail = (opts.describe ?? ((t: string) => t))(outcome.text).trim()
  const error = scrub(detail === '' ? `HTTP ${status}` : `HTTP ${status}: ${detail}`, secrets)
  const retryAfterMs = parseRetryAfter(outcome.headers.get('retry-after'), opts.now, opts.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS)
  const after = retryAfterMs === undefined ? {} : { retryAfterMs }
  if (status === 429) return { ok: false, retryable: true, reason: 'rate_limited', status, error, ...after }
  if (status >= 500) return { ok: false, retryable: true, reason: 'server_error', status, error, ...after }
  // 408 is the server saying it gave up waiting for us: a timeout, worth retrying.
  if (status === 408) return { ok: false, retryable: true, reason: 'timeout', status, error }
  // A redirecting destination is misconfigured or hijacked: following could send the alert
  // elsewhere, so it is a permanent failure that says why.
  if (status >= 300 && status < 400) return { ok: false, retryable: false, reason: 'client_error', status, error: scrub(`HTTP ${status}: redirect not followed`, secrets) }
  // Other 4xx, and 1xx: the request itself is wrong.
  return { ok: false, retryable: false, reason: 'client_error', status, error }
}

// Retry-After is delay-seconds or an HTTP-date (RFC 9110 §10.2.3). Capped, so one odd header
// cannot park a delivery for days; unparseable → undefined (the caller's backoff applies).
export function parseRetryAfter (value: string | null, now: Date, maxMs: number = DEFAULT_MAX_RETRY_AFTER_MS): number | undefined {
  if (value === null) return undefined
  const v = value.trim()
  let ms: number
  if (/^\d+(\.\d+)?$/.test(v)) ms = Math.ceil(Number(v) * 1000)
  else {
    const at = Date.parse(v)
    if (Number.isNaN(at) || !/[a-z]/i.test(v)) return undefined
    ms = Math.max(0, at - now.getTime())
  }
  return Math.min(ms, maxMs)
}

// Removes every secret, also in the forms a service may echo it (JSON- or URL-escaped), then
// flattens and bounds the text. Replacing before cutting means no half secret survives a cut.
// Applied to everything that lands in SendResult.error.
export function scrub (text: string, secrets: readonly string[]): string {
  let out = text
  for (const secret of secrets) {
    if (secret.length < 4) continue
    for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)])) {
      out = out.split(form).join('[redacted]')
    }
  }
  out = out.replace(/\s+/g, ' ').trim()
  return truncate(out, MAX_ERROR_CHARS)
}
