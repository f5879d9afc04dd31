import type { SendResult, SlackMessageRef } from '../result.js'
import type { Notifier, NotifierDeps } from '../types.js'
import { createSlackWebApi } from './web-api.js'

// A Slack destination in bot-token form. `send` posts a new message; `deliver` with a
// previousMessage edits that message with chat.update instead, and posts anew when Slack says
// the message is gone (incident-message.ts keeps one message per incident with it). `reply`
// answers in a message's thread.

export interface SlackBotConfig { apiUrl: string, token: string, channelId: string }

export interface DeliverOptions {
  /** The incident's message in this channel, once stored: edited in place instead of posting. */
  previousMessage?: SlackMessageRef
}

export interface SlackBotNotifier extends Notifier {
  deliver: (body: unknown, opts?: DeliverOptions) => Promise<SendResult>
  /** A short reply in `parent`'s thread; `broadcast` also shows it in the channel. */
  reply: (parent: SlackMessageRef, text: string, opts?: { broadcast?: boolean }) => Promise<SendResult>
}

export function createSlackBotNotifier (cfg: SlackBotConfig, deps: NotifierDeps): SlackBotNotifier {
  const api = createSlackWebApi({ apiUrl: cfg.apiUrl, token: cfg.token }, deps)

  async function deliver (body: unknown, opts: DeliverOptions = {}): Promise<SendResult> {
    const message = asMessage(body)
    if (message === undefined) return { ok: false, retryable: false, reason: 'client_error', error: 'Slack body has no text' }
    const prev = opts.previousMessage
    if (prev !== undefined) {
      const updated = await api.update({ channel: prev.channel, ts: prev.ts, ...message })
      if (updated.ok || updated.reason !== 'message_gone') return updated
    }
    return await api.postMessage({ channel: cfg.channelId, ...message })
  }

  return {
    send: async (body) => await deliver(body),
    deliver,
    reply: async (parent, text, opts = {}) => await api.postMessage({
      channel: parent.channel,
      text,
      thread_ts: parent.ts,
      ...(opts.broadcast === true ? { reply_broadcast: true } : {})
    })
  }
}

function asMessage (body: unknown): { text: string, blocks?: unknown[] } | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const { text, blocks } = body as { text?: unknown, blocks?: unknown }
  if (typeof text !== 'string' || text === '') return undefined
  return Array.isArray(blocks) ? { text, blocks } : { text }
}
