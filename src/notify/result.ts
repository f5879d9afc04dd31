import { Type, type Static } from '@sinclair/typebox'

// A closed set of failure reasons, as in Alertmanager's notify package. The same strings are
// the `reason` label of alert_enricher_notifications_total, so the set must stay small.
export const FailureReason = Type.Union([
  Type.Literal('rate_limited'),      // 429
  Type.Literal('server_error'),      // 5xx
  Type.Literal('timeout'),           // no answer within the per-request timeout
  Type.Literal('network'),           // connection refused/reset, DNS
  Type.Literal('client_error'),      // other 4xx: the request itself is wrong, retrying won't help
  Type.Literal('rejected'),          // 2xx transport but the service said no (Slack ok:false)
  Type.Literal('not_configured'),    // destination secret unset
  Type.Literal('expired'),           // retried past the maximum age
  Type.Literal('superseded'),        // a newer notification of the same group replaced it
  Type.Literal('resolved_while_deferred'), // held for business hours; the group resolved first
  // chat.update found no message to edit (deleted, or not ours to edit): post a new one instead.
  // The Slack bot notifier acts on it itself. A thread reply with no message to reply to (none
  // posted yet) is skipped with it.
  Type.Literal('message_gone'),
  // A Slack incident message was edited less than SLACK_UPDATE_DEBOUNCE_MS ago: the update waits
  // (the latest state wins; a newer one supersedes it).
  Type.Literal('debounced')
])
export type FailureReason = Static<typeof FailureReason>
export const FAILURE_REASONS: readonly FailureReason[] = [
  'rate_limited', 'server_error', 'timeout', 'network', 'client_error', 'rejected', 'not_configured', 'expired', 'superseded',
  'resolved_while_deferred', 'message_gone', 'debounced'
]

// Where a Slack Web API post landed: what chat.update and thread replies need later.
export const SlackMessageRef = Type.Object({
  channel: Type.String({ minLength: 1 }),
  ts: Type.String({ minLength: 1 })
})
export type SlackMessageRef = Static<typeof SlackMessageRef>

export const SendResult = Type.Union([
  Type.Object({ ok: Type.Literal(true), status: Type.Integer(), message: Type.Optional(SlackMessageRef) }),
  Type.Object({
    ok: Type.Literal(false),
    retryable: Type.Boolean(),
    reason: FailureReason,
    status: Type.Optional(Type.Integer()),
    retryAfterMs: Type.Optional(Type.Integer({ minimum: 0 })),
    // Nothing to send, and nothing wrong: stored as `skipped` with the reason (not a dead letter).
    skip: Type.Optional(Type.Literal(true)),
    // Human readable, already free of secrets (URLs and keys are never echoed).
    error: Type.String()
  })
])
export type SendResult = Static<typeof SendResult>
