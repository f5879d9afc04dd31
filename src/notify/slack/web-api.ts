import { classifyHttpResult, postJson, scrub, parseRetryAfter, type PostOutcome } from '../http.js'
import type { SendResult } from '../result.js'
import type { NotifierDeps } from '../types.js'

// Slack Web API client (bot token): chat.postMessage and chat.update, JSON with charset and a
// bearer token (contracts.md). Errors come as HTTP 200 {ok:false, error}; they are classified
// here into the shared SendResult. Never throws; the token is scrubbed from every error text.

export const DEFAULT_SLACK_API_URL = 'https://slack.com/api'

export interface SlackWebApiConfig { apiUrl: string, token: string }

export interface PostMessageArgs {
  channel: string
  text: string
  blocks?: unknown[]
  thread_ts?: string
  reply_broadcast?: boolean
}
export interface UpdateArgs { channel: string, ts: string, text: string, blocks?: unknown[] }

export type SlackMethod = 'chat.postMessage' | 'chat.update'

export interface SlackWebApi {
  postMessage: (args: PostMessageArgs) => Promise<SendResult>
  update: (args: UpdateArgs) => Promise<SendResult>
}

export function createSlackWebApi (cfg: SlackWebApiConfig, deps: NotifierDeps): SlackWebApi {
  const now = deps.now ?? (() => new Date())
  const base = cfg.apiUrl.replace(/\/+$/, '')
  const call = async (method: SlackMethod, args: PostMessageArgs | UpdateArgs): Promise<SendResult> => {
    const outcome = await postJson(`${base}/${method}`, args, {
      fetch: deps.fetch,
      timeoutMs: deps.timeoutMs,
      headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${cfg.token}` }
    })
    return classifyWebApiResult(outcome, method, { now: now(), secrets: [cfg.token] })
  }
  return {
    postMessage: async (args) => await call('chat.postMessage', args),
    update: async (args) => await call('chat.update', args)
  }
}

// Slack's own transient failures: worth another attempt.
const SLACK_TRANSIENT = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout'])
// chat.update's target is gone or not ours: the caller posts a new message instead.
const MESSAGE_GONE = new Set(['message_not_found', 'cant_update_message'])

interface WebApiAnswer {
  ok?: unknown
  error?: unknown
  channel?: unknown
  ts?: unknown
  needed?: unknown
  response_metadata?: { messages?: unknown }
}

/**
 * One Web API answer as a SendResult. Non-2xx and transport failures go through the shared
 * HTTP classifier (429 + Retry-After → rate_limited). A 2xx `ok:false`: `ratelimited` is
 * retried after Retry-After; Slack's internal errors are retried; on chat.update
 * `message_not_found`/`cant_update_message` → `message_gone`; every other error
 * (channel_not_found, not_in_channel, is_archived, invalid_auth, token_revoked,
 * invalid_blocks, msg_too_long, …) is permanent: a dead letter naming the error.
 */
export function classifyWebApiResult (outcome: PostOutcome, method: SlackMethod, opts: { now: Date, secrets: readonly string[] }): SendResult {
  if (outcome.kind !== 'response' || outcome.status < 200 || outcome.status >= 300) {
    return classifyHttpResult(outcome, { now: opts.now, secrets: opts.secrets, describe: errorCodeOf })
  }
  const { status } = outcome
  const answer = parseAnswer(outcome.text)
  if (answer?.ok === true) {
    if (typeof answer.channel === 'string' && typeof answer.ts === 'string') return { ok: true, status, message: { channel: answer.channel, ts: answer.ts } }
    return { ok: false, retryable: false, reason: 'rejected', status, error: `Slack ${method}: ok without channel and ts` }
  }
  if (answer === undefined || typeof answer.error !== 'string') {
    // Not a Web API answer (a proxy page?). The message may have been posted: not retried,
    // so it is never posted twice; the dead letter says why.
    return { ok: false, retryable: false, reason: 'rejected', status, error: scrub(`Slack ${method}: unexpected answer: ${outcome.text}`, opts.secrets) }
  }
  const code = answer.error
  const error = scrub(`Slack ${method}: ${code}${details(answer)}`, opts.secrets)
  if (code === 'ratelimited') {
    const retryAfterMs = parseRetryAfter(outcome.headers.get('retry-after'), opts.now)
    return { ok: false, retryable: true, reason: 'rate_limited', status, error, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) }
  }
  if (method === 'chat.update' && MESSAGE_GONE.has(code)) return { ok: false, retryable: false, reason: 'message_gone', status, error }
  if (SLACK_TRANSIENT.has(code)) return { ok: false, retryable: true, reason: 'server_error', status, error }
  return { ok: false, retryable: false, reason: 'rejected', status, error }
}

// What Slack adds to an error: the missing scope, and for invalid_blocks which block is wrong.
function details (answer: WebApiAnswer): string {
  const parts: string[] = []
  if (typeof answer.needed === 'string') parts.push(`needed ${answer.needed}`)
  const messages = answer.response_metadata?.messages
  if (Array.isArray(messages)) parts.push(...messages.filter((m): m is string => typeof m === 'string').slice(0, 2))
  return parts.length === 0 ? '' : ` (${parts.join('; ')})`
}

function errorCodeOf (text: string): string {
  const error = parseAnswer(text)?.error
  return typeof error === 'string' ? error : text
}

function parseAnswer (text: string): WebApiAnswer | undefined {
  try {
    const json = JSON.parse(text) as unknown
    return typeof json === 'object' && json !== null && !Array.isArray(json) ? json as WebApiAnswer : undefined
  } catch {
    return undefined
  }
}
