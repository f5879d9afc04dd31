import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { formatUtc } from '../notify/group-view.js'
import { escapeMrkdwn } from '../notify/text.js'
import type { AckAction, AckSource } from './types.js'

// What an acknowledgement or an escalation queues for a bot-token Slack destination told of
// the group, inside the store transaction that applies it (both engines build the same rows
// from here): an update of the incident's message and a short reply in its thread. Pure.

// The update: the destination's latest queued webhook of the group again, marked so the sender
// enriches it with its original receive time. Queued in the group's own (destination, group)
// order, so it never overtakes nor is overtaken by the group's notifications, and a newer one
// supersedes it: the message shows the latest state, read from the store at send time.
export const SlackRefresh = Type.Object({ receivedAt: Type.Integer({ description: 'the queued webhook\'s own receive time (Unix ms)' }) })

export function slackRefreshBody (latest: { body: string, receivedAt: number }): string | undefined {
  let queued: unknown
  try {
    queued = JSON.parse(latest.body)
  } catch (err) {
    // Bodies are written by this service as JSON; one that is not has nothing to re-render.
    if (err instanceof SyntaxError) return undefined
    throw err
  }
  if (typeof queued !== 'object' || queued === null || !('payload' in queued)) return undefined
  const previous = (queued as { refresh?: { receivedAt?: unknown } }).refresh?.receivedAt
  const receivedAt = typeof previous === 'number' ? previous : latest.receivedAt
  return JSON.stringify({ ...queued, refresh: { receivedAt } })
}

// Idempotency keys of the follow-ups, one per incident, change and destination: a retried
// acknowledgement or a re-fired timer queues neither twice (the same on both engines).
export function slackFollowUpKeys (incidentGroup: string, kind: string, destination: string): { update: string, reply: string } {
  return { update: `${incidentGroup}:slack-update:${kind}:${destination}`, reply: `${incidentGroup}:slack-reply:${kind}:${destination}` }
}

// The thread reply: rendered when queued (it says what happened then), sent to the message's
// thread at send time; skipped when the destination has no message of the incident yet.
export const SlackReplyBody = Type.Object({
  slackReply: Type.Object({ incidentId: Type.Integer({ minimum: 1 }), text: Type.String({ minLength: 1 }), broadcast: Type.Boolean() })
})
export type SlackReplyBody = Static<typeof SlackReplyBody>
export const slackReplyBody = TypeCompiler.Compile(SlackReplyBody)

export function replyBody (incidentId: number, text: string, broadcast: boolean): string {
  return JSON.stringify({ slackReply: { incidentId, text, broadcast } } satisfies SlackReplyBody)
}

const VIA: Record<AckSource, string> = { pagerduty: 'PagerDuty', api: 'the API', slack: 'Slack' }
const hhmm = (at: number): string => formatUtc(new Date(at)).slice(11)

// A Slack user recorded as "name (U0123)" is mentioned (<@U0123> reads "@name" in Slack).
function who (by: string, via: AckSource): string {
  const m = /^(.*) \(([UW][A-Z0-9]+)\)$/.exec(by)
  return via === 'slack' && m !== null ? `<@${m[2] as string}>` : escapeMrkdwn(by)
}

/** "✋ Acknowledged by <@U0ANA> via Slack at 14:02 UTC", and the same for the other actions. */
export function acknowledgementReply (action: AckAction, by: string, via: AckSource, at: number): string {
  const tail = `by ${who(by, via)} via ${VIA[via]} at ${hhmm(at)}`
  if (action === 'acknowledge') return `✋ Acknowledged ${tail}`
  if (action === 'unacknowledge') return `↩️ Unacknowledged ${tail}: the response clock runs again`
  return `✅ Resolved ${tail}`
}

/** "🚨 Not acknowledged by the deadline 14:05 UTC: escalation #1 to pagerduty-escalation". */
export function escalationReply (number: number, respondBy: number, targets: readonly string[]): string {
  const to = targets.length === 0 ? '' : ` to ${targets.map(escapeMrkdwn).join(', ')}`
  return `🚨 Not acknowledged by the deadline ${hhmm(respondBy)}: escalation #${number}${to}`
}
