import type { SlackReplyBody } from '../../incidents/slack-followups.js'
import type { Store } from '../../store/types.js'
import type { SendResult } from '../result.js'
import type { SlackBotNotifier } from './bot-notifier.js'

// One Slack message per incident and bot-token destination, edited in place. The first send
// posts it and stores its channel and ts (in the store, so any replica edits it); every later
// one is a chat.update of that ts with the latest rendering, or a new post (and its ts stored)
// when Slack says the message is gone. At most one update per message every `debounceMs`: a
// send that comes sooner answers `debounced` with the time left, and the dispatcher puts the
// delivery back until then (a newer delivery of the group supersedes it meanwhile: the latest
// state wins, and the outbox's per-group order keeps updates from overtaking each other).

export interface IncidentMessagesDeps {
  store: Pick<Store, 'slackMessage' | 'saveSlackMessage'>
  now: () => number
  debounceMs: number
  // Posted or edited, but the ts could not be stored: the next send posts a new message.
  onSaveError?: (err: unknown, where: { incidentId: number, destination: string }) => void
}

export interface IncidentMessages {
  /** Posts the incident's message to `destination`, or edits the one posted before. */
  deliver: (bot: SlackBotNotifier, destination: string, incidentId: number, body: unknown) => Promise<SendResult>
  /** A reply in the thread of the incident's message; skipped when none is posted yet. */
  reply: (bot: SlackBotNotifier, destination: string, body: SlackReplyBody) => Promise<SendResult>
}

export function createIncidentMessages (deps: IncidentMessagesDeps): IncidentMessages {
  return {
    async deliver (bot, destination, incidentId, body) {
      // A throw here is the store's (logged and counted): the send is retried.
      const previous = await deps.store.slackMessage(incidentId, destination)
      const now = deps.now()
      if (previous !== null && now < previous.lastUpdateAt + deps.debounceMs) {
        const waitMs = previous.lastUpdateAt + deps.debounceMs - now
        return { ok: false, retryable: true, reason: 'debounced', retryAfterMs: waitMs, error: `message ${previous.ts} was updated ${now - previous.lastUpdateAt} ms ago; this update waits ${waitMs} ms` }
      }
      const result = await bot.deliver(body, previous === null ? {} : { previousMessage: { channel: previous.channel, ts: previous.ts } })
      if (result.ok && result.message !== undefined) {
        try {
          await deps.store.saveSlackMessage({ incidentId, destination, channel: result.message.channel, ts: result.message.ts, at: deps.now() })
        } catch (err) {
          // Slack has it: reporting a failure would send it again. The store counted the error.
          deps.onSaveError?.(err, { incidentId, destination })
        }
      }
      return result
    },
    async reply (bot, destination, body) {
      const { incidentId, text, broadcast } = body.slackReply
      const message = await deps.store.slackMessage(incidentId, destination)
      if (message === null) {
        return { ok: false, retryable: false, skip: true, reason: 'message_gone', error: `incident ${incidentId} has no message in this channel yet: thread reply not sent` }
      }
      return await bot.reply({ channel: message.channel, ts: message.ts }, text, { broadcast })
    }
  }
}
