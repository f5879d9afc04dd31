import t from 'tap'
import { acknowledgementReply, escalationReply, slackRefreshBody } from '../src/incidents/slack-followups.js'

// What an acknowledgement or escalation says in a Slack incident message's thread, and the
// update body it queues: pure, shared by both store engines.

const AT = Date.parse('2026-11-26T14:02:30Z')

t.test('thread replies: who, how and when; Slack users mentioned, everything else escaped', async (t) => {
  t.equal(acknowledgementReply('acknowledge', 'ana (U0ANA)', 'slack', AT), '✋ Acknowledged by <@U0ANA> via Slack at 14:02 UTC')
  t.equal(acknowledgementReply('acknowledge', 'ana (U0ANA)', 'api', AT), '✋ Acknowledged by ana (U0ANA) via the API at 14:02 UTC', 'a mention only for Slack users')
  t.equal(acknowledgementReply('acknowledge', 'Ana <ops> & co', 'pagerduty', AT), '✋ Acknowledged by Ana &lt;ops&gt; &amp; co via PagerDuty at 14:02 UTC', 'no mrkdwn injection')
  t.equal(acknowledgementReply('unacknowledge', 'bob', 'api', AT), '↩️ Unacknowledged by bob via the API at 14:02 UTC: the response clock runs again')
  t.equal(acknowledgementReply('resolve', 'bob', 'pagerduty', AT), '✅ Resolved by bob via PagerDuty at 14:02 UTC')
  t.equal(escalationReply(2, AT, ['pagerduty-escalation', 'slack-bot']), '🚨 Not acknowledged by the deadline 14:02 UTC: escalation #2 to pagerduty-escalation, slack-bot')
  t.equal(escalationReply(1, AT, []), '🚨 Not acknowledged by the deadline 14:02 UTC: escalation #1')
})

t.test('the update body: the queued webhook again, with its first receive time kept through repeated updates', async (t) => {
  const queued = JSON.stringify({ alerts: [1], payload: { groupKey: 'g' } })
  const once = slackRefreshBody({ body: queued, receivedAt: 1_000 })
  t.same(JSON.parse(once ?? 'null'), { alerts: [1], payload: { groupKey: 'g' }, refresh: { receivedAt: 1_000 } })
  t.same(JSON.parse(slackRefreshBody({ body: once ?? '', receivedAt: 9_000 }) ?? 'null'), { alerts: [1], payload: { groupKey: 'g' }, refresh: { receivedAt: 1_000 } }, 'an update of an update renders the webhook as received')
  t.equal(slackRefreshBody({ body: JSON.stringify({ escalation: {} }), receivedAt: 1 }), undefined, 'not a queued webhook: nothing to re-render')
  t.equal(slackRefreshBody({ body: 'not json', receivedAt: 1 }), undefined)
})
