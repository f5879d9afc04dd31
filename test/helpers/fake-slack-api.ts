import { createHmac } from 'node:crypto'
import { startFakeServer, type FakeReply, type FakeServer } from './fake-http.js'
import { validateSlackMessage } from './fake-slack.js'

// A fake Slack Web API (chat.postMessage, chat.update) that refuses what Slack refuses
// (contracts.md), as Slack does: HTTP 200 {ok:false, error}. It checks, in Slack's order, the
// bearer token (not_authed / invalid_auth), JSON with charset=utf-8, a channel *id* the bot is
// in (channel_not_found / not_in_channel / is_archived), Block Kit limits (invalid_blocks,
// no_text, msg_too_long), an existing thread_ts (thread_not_found) and, for chat.update, an
// existing ts (message_not_found). It answers {ok, channel, ts} and keeps every message with
// its edits and thread replies. Modes (fake-http.ts) make it fail on demand; `failWith`
// answers a given ok:false error; `rateLimited` answers HTTP 429 + Retry-After.

export interface FakeSlackApiOptions {
  token: string
  /** Channels the bot is in. */
  channels: string[]
  /** Channels that exist but the bot is not in (not_in_channel). */
  notJoined?: string[]
  archived?: string[]
}

export interface StoredMessage {
  channel: string
  ts: string
  text: string
  blocks: unknown[] | undefined
  threadTs?: string
  replyBroadcast?: boolean
  /** Every text the message had, first to last (chat.update appends). */
  edits: string[]
}

export interface FakeSlackApi extends FakeServer {
  /** The SLACK_API_URL to configure (…/api). */
  apiUrl: string
  messages: StoredMessage[]
  /** Answer every valid call with HTTP 200 {ok:false, error} (and Retry-After when given). */
  failWith: (error: string, retryAfterSeconds?: number) => void
  /** Delete a message, as a user could (a later chat.update gets message_not_found). */
  deleteMessage: (channel: string, ts: string) => void
}

const CHANNEL_ID = /^[CGD][A-Z0-9]{8,20}$/
const MAX_TEXT = 40_000

export async function startFakeSlackApi (opts: FakeSlackApiOptions): Promise<FakeSlackApi> {
  const messages: StoredMessage[] = []
  let clock = 1_700_000_000
  let seq = 0
  const nextTs = (): string => `${clock++}.${String(++seq).padStart(6, '0')}`
  const find = (channel: string, ts: string): StoredMessage | undefined => messages.find((m) => m.channel === channel && m.ts === ts)
  const slackError = (error: string, detail: string): FakeReply => ({ status: 200, body: JSON.stringify({ ok: false, error }), detail })

  const server = await startFakeServer({
    validate: ({ method, path, headers, body }) => {
      const api = path.replace(/^\/api\//, '')
      if (method !== 'POST' || (api !== 'chat.postMessage' && api !== 'chat.update')) return { status: 404, body: JSON.stringify({ ok: false, error: 'unknown_method' }) }
      const auth = headers.authorization
      if (auth === undefined) return slackError('not_authed', 'no Authorization header')
      if (auth !== `Bearer ${opts.token}`) return slackError('invalid_auth', 'wrong bearer token')
      const type = (headers['content-type'] ?? '').toLowerCase().replace(/\s+/g, '')
      if (type !== 'application/json;charset=utf-8') return slackError('invalid_arguments', `Content-Type ${JSON.stringify(headers['content-type'] ?? '')} is not application/json; charset=utf-8`)
      let json: Record<string, unknown>
      try {
        json = JSON.parse(body) as Record<string, unknown>
      } catch {
        return slackError('invalid_json', 'body is not JSON')
      }
      if (typeof json !== 'object' || json === null || Array.isArray(json)) return slackError('json_not_object', 'body is not an object')
      const channel = json.channel
      if (typeof channel !== 'string' || !CHANNEL_ID.test(channel)) return slackError('channel_not_found', `channel ${JSON.stringify(channel)} is not a channel id`)
      if (opts.archived?.includes(channel) === true) return slackError('is_archived', `${channel} is archived`)
      if (opts.notJoined?.includes(channel) === true) return slackError('not_in_channel', `the bot is not in ${channel}`)
      if (!opts.channels.includes(channel)) return slackError('channel_not_found', `no channel ${channel}`)
      if (typeof json.text === 'string' && json.text.length > MAX_TEXT) return slackError('msg_too_long', `text ${json.text.length} > ${MAX_TEXT}`)
      const verdict = validateSlackMessage({ text: json.text, blocks: json.blocks })
      if (verdict !== null) return slackError(verdict.error === 'no_text' ? 'no_text' : 'invalid_blocks', verdict.detail)
      if (json.thread_ts !== undefined && (typeof json.thread_ts !== 'string' || find(channel, json.thread_ts) === undefined)) {
        return slackError('thread_not_found', `no message ${String(json.thread_ts)} in ${channel}`)
      }
      if (api === 'chat.update') {
        if (typeof json.ts !== 'string') return slackError('invalid_arguments', 'chat.update without ts')
        if (find(channel, json.ts) === undefined) return slackError('message_not_found', `no message ${json.ts} in ${channel}`)
      }
      return undefined
    },
    handle: ({ path, body }) => {
      const json = JSON.parse(body) as { channel: string, text: string, blocks?: unknown[], ts?: string, thread_ts?: string, reply_broadcast?: boolean }
      if (path.endsWith('/chat.update')) {
        const m = find(json.channel, json.ts ?? '') as StoredMessage
        m.text = json.text
        m.blocks = json.blocks
        m.edits.push(json.text)
        return { status: 200, body: JSON.stringify({ ok: true, channel: m.channel, ts: m.ts, text: m.text }), accepted: json }
      }
      const m: StoredMessage = {
        channel: json.channel,
        ts: nextTs(),
        text: json.text,
        blocks: json.blocks,
        ...(json.thread_ts !== undefined ? { threadTs: json.thread_ts } : {}),
        ...(json.reply_broadcast !== undefined ? { replyBroadcast: json.reply_broadcast } : {}),
        edits: [json.text]
      }
      messages.push(m)
      return { status: 200, body: JSON.stringify({ ok: true, channel: m.channel, ts: m.ts, message: { text: m.text } }), accepted: json }
    },
    statusBody: (code) => ({ body: code === 429 ? JSON.stringify({ ok: false, error: 'ratelimited' }) : code >= 500 ? 'upstream error' : JSON.stringify({ ok: false, error: 'invalid_request' }) }),
    rateLimitBody: () => ({ body: JSON.stringify({ ok: false, error: 'ratelimited' }) })
  })
  return {
    ...server,
    apiUrl: `${server.url}/api`,
    messages,
    failWith: (error, retryAfterSeconds) => {
      server.setMode({ kind: 'status', code: 200, body: JSON.stringify({ ok: false, error }), ...(retryAfterSeconds !== undefined ? { headers: { 'retry-after': String(retryAfterSeconds) } } : {}) })
    },
    deleteMessage: (channel, ts) => {
      const i = messages.findIndex((m) => m.channel === channel && m.ts === ts)
      if (i >= 0) messages.splice(i, 1)
    }
  }
}

/**
 * Headers for an interaction request exactly as Slack signs it: `v0=` hex HMAC-SHA256 of
 * `v0:{timestamp}:{raw body}` with the signing secret, timestamp in Unix seconds.
 */
export function signSlackRequest (secret: string, rawBody: string, timestampSeconds: number): Record<string, string> {
  const signature = createHmac('sha256', secret).update(`v0:${timestampSeconds}:${rawBody}`).digest('hex')
  return { 'x-slack-request-timestamp': String(timestampSeconds), 'x-slack-signature': `v0=${signature}` }
}

/** A block_actions payload as Slack posts it: form-encoded, one `payload` field of JSON. */
export function interactionBody (payload: unknown): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString()
}

/** A click on the Acknowledge button, shaped like Slack's block_actions payload. */
export function acknowledgeClick (opts: { incidentId: string, userId?: string, userName?: string, actionTs?: string, channel?: string, messageTs?: string }): Record<string, unknown> {
  const channel = opts.channel ?? 'C0123ABCD'
  return {
    type: 'block_actions',
    user: { id: opts.userId ?? 'U0123USER', username: opts.userName ?? 'jane.doe', name: opts.userName ?? 'jane.doe', team_id: 'T0FAKE000' },
    api_app_id: 'A0FAKE000',
    token: 'deprecated-verification-token',
    container: { type: 'message', message_ts: opts.messageTs ?? '1700000000.000001', channel_id: channel, is_ephemeral: false },
    trigger_id: '123.456.abc',
    team: { id: 'T0FAKE000', domain: 'example' },
    channel: { id: channel, name: 'incident-response' },
    response_url: 'https://hooks.slack.com/actions/T0FAKE000/123/abc',
    actions: [{ action_id: 'acknowledge', block_id: 'b1', text: { type: 'plain_text', text: '✋ Acknowledge', emoji: true }, value: opts.incidentId, style: 'primary', type: 'button', action_ts: opts.actionTs ?? '1700000100.123456' }]
  }
}
