import type { Test } from 'tap'
import { Value } from '@sinclair/typebox/value'
import type { AcknowledgementRequest } from '../src/incidents/types.js'
import { SlackMessage, type Delivery, type EnqueueItem, type IncidentChange } from '../src/store/types.js'
import type { StoreFactory, StoreHarness } from './store-conformance.js'

// Slack app mode's half of the store contract, run by storeConformance for every engine: the
// incident message per destination (channel, ts, last update), and what an acknowledgement or
// an escalation queues for a bot-token channel told of the group (an update of its message in
// the group's order, a reply in its thread) in the transaction that applies it.

const T0 = 1_700_000_000_000
const MIN = 60_000
const BOT = 'slack-bot'
const HOOK = 'slack-hook'
const isSlackApp = (d: string): boolean => d === BOT

const queued = (note: string): string => JSON.stringify({ alerts: null, payload: { note } })
const firing = (destination: string, type: 'slack' | 'pagerduty', key: string, body: string): EnqueueItem =>
  ({ destination, type, priority: 'P0', status: 'firing', idempotencyKey: key, body })

function opened (escalateTo: Array<{ destination: string, type: 'slack' | 'pagerduty' }>): IncidentChange {
  return {
    kind: 'open', dedupKey: 'dk-g', title: 'HighErrorRate: errors', priority: 'P0', respondBy: T0 + 5 * MIN,
    alertname: 'HighErrorRate', team: 'platform', escalation: { escalateTo, repeatEveryMs: null }
  }
}

interface Ctx extends StoreHarness { clock: { now: number }, all: () => Promise<Delivery[]> }

async function open (t: Test, factory: StoreFactory): Promise<Ctx> {
  const clock = { now: T0 }
  const h = await factory(t, { idempotencyWindowMs: 60 * MIN, now: () => clock.now })
  return { ...h, clock, all: async () => (await h.store.list({ limit: 1000 })).sort((a, b) => a.id - b.id) }
}

// A group told to the bot channel, a webhook channel and PagerDuty; its incident opened.
async function notifiedGroup (s: Ctx, escalateTo: Array<{ destination: string, type: 'slack' | 'pagerduty' }> = []): Promise<number> {
  const r = await s.store.enqueue({
    groupKey: 'g', receivedAt: T0 - 1_000, resolved: false,
    plan: () => [firing(BOT, 'slack', 'k-bot', queued('first')), firing(HOOK, 'slack', 'k-hook', queued('first')), firing('pagerduty', 'pagerduty', 'k-pd', queued('first'))],
    incident: { receiver: 'team', decide: () => opened(escalateTo) }
  })
  await s.store.enqueue({ groupKey: 'g', receivedAt: T0, resolved: false, plan: () => [firing(BOT, 'slack', 'k-bot-2', queued('second'))] })
  return r.incident?.id ?? 0
}

const ack = (over: Partial<AcknowledgementRequest> = {}): AcknowledgementRequest =>
  ({ incidentId: 1, action: 'acknowledge', by: 'ana (U0ANA)', via: 'slack', at: T0 + MIN, ...over })
const opts = (slackApp?: (d: string) => boolean): Parameters<StoreHarness['store']['applyAcknowledgement']>[1] => ({
  restartClock: (_i, at) => at + 5 * MIN, isConfigured: () => true, eventKeyWindowMs: 24 * 60 * MIN, ...(slackApp !== undefined ? { isSlackApp: slackApp } : {})
})

export function slackConformance (t: Test, factory: StoreFactory): void {
  t.test('slack messages: none before the first post; a post stores channel and ts; an update moves only its time', async (t) => {
    const s = await open(t, factory)
    const id = await notifiedGroup(s)
    t.equal(await s.store.slackMessage(id, BOT), null)
    await s.store.saveSlackMessage({ incidentId: id, destination: BOT, channel: 'C0INCIDENT', ts: '1700000000.000001', at: T0 })
    const posted = await s.store.slackMessage(id, BOT)
    t.ok(Value.Check(SlackMessage, posted), 'round-trips through the SlackMessage schema')
    t.same(posted, { incidentId: id, destination: BOT, channel: 'C0INCIDENT', ts: '1700000000.000001', postedAt: T0, lastUpdateAt: T0 })
    await s.store.saveSlackMessage({ incidentId: id, destination: BOT, channel: 'C0INCIDENT', ts: '1700000000.000001', at: T0 + 5_000 })
    t.same(await s.store.slackMessage(id, BOT), { ...posted, lastUpdateAt: T0 + 5_000 }, 'an update: same ts, postedAt stays')
    await s.store.saveSlackMessage({ incidentId: id, destination: BOT, channel: 'C0INCIDENT', ts: '1700000009.000002', at: T0 + 9_000 })
    t.same(await s.store.slackMessage(id, BOT), { ...posted, ts: '1700000009.000002', postedAt: T0 + 9_000, lastUpdateAt: T0 + 9_000 }, 'a repost (the message was gone): the new ts')
    t.equal(await s.store.slackMessage(id, 'slack-other'), null, 'per destination')
    t.equal(await s.store.slackMessage(id + 1, BOT), null, 'per incident')
    const reopened = await s.reopen()
    t.equal((await reopened.slackMessage(id, BOT))?.ts, '1700000009.000002', 'kept across a restart: any replica or the next process edits it')
  })

  t.test('slack: an acknowledgement queues, for each bot channel told of the group, an update in the group and a reply in the incident\'s thread', async (t) => {
    const s = await open(t, factory)
    const id = await notifiedGroup(s)
    const before = (await s.all()).length
    t.equal((await s.store.applyAcknowledgement(ack({ incidentId: id }), opts(isSlackApp))).outcome, 'applied')
    const added = (await s.all()).slice(before)
    const slack = added.filter((d) => d.type === 'slack')
    t.same(slack.map((d) => [d.destination, d.groupKey, d.state]), [[BOT, 'g', 'pending'], [BOT, `incident:${id}`, 'pending']], 'the bot channel only, not the webhook channel')
    t.same(slack[0]?.body, { alerts: null, payload: { note: 'second' }, refresh: { receivedAt: T0 } }, 'the update re-renders the latest queued webhook, from its own receive time')
    t.same(slack[1]?.body, { slackReply: { incidentId: id, text: `✋ Acknowledged by <@U0ANA> via Slack at ${new Date(T0 + MIN).toISOString().slice(11, 16)} UTC`, broadcast: false } })
    t.equal(slack[0]?.priority, 'P0')
    t.ok(added.some((d) => d.type === 'pagerduty'), 'PagerDuty still hears of it')
    t.equal((await s.store.applyAcknowledgement(ack({ incidentId: id }), opts(isSlackApp))).outcome, 'no_change')
    t.equal((await s.all()).length, before + added.length, 'no change, nothing queued')

    // The update is ordered behind the group's unsettled delivery to the same channel.
    const claimed = await s.store.claim({ now: s.clock.now + 2 * MIN, limit: 100, leaseMs: 30_000, excludeDestinations: [], admit: () => true })
    t.same(claimed.filter((d) => d.destination === BOT).map((d) => d.groupKey), ['g', `incident:${id}`], 'one per channel and group')
    t.equal(claimed.find((d) => d.destination === BOT && d.groupKey === 'g')?.idempotencyKey, 'k-bot-2', 'the webhook before the update')

    const plain = await open(t, factory)
    const other = await notifiedGroup(plain)
    const n = (await plain.all()).length
    await plain.store.applyAcknowledgement(ack({ incidentId: other }), opts())
    t.same((await plain.all()).slice(n).map((d) => d.type), ['pagerduty'], 'without bot channels: as before')
  })

  t.test('slack: an unacknowledge and a resolve by hand reply too; a newer webhook supersedes a pending update', async (t) => {
    const s = await open(t, factory)
    const id = await notifiedGroup(s)
    await s.store.applyAcknowledgement(ack({ incidentId: id }), opts(isSlackApp))
    await s.store.applyAcknowledgement(ack({ incidentId: id, action: 'unacknowledge', by: 'bob', via: 'api', at: T0 + 2 * MIN }), opts(isSlackApp))
    await s.store.applyAcknowledgement(ack({ incidentId: id, action: 'resolve', by: 'bob', via: 'api', at: T0 + 3 * MIN }), opts(isSlackApp))
    const replies = (await s.all()).filter((d) => d.groupKey === `incident:${id}` && d.destination === BOT).map((d) => (d.body as { slackReply: { text: string } }).slackReply.text)
    t.match(replies, [/^✋ Acknowledged by <@U0ANA>/, /^↩️ Unacknowledged by bob via the API at .*: the response clock runs again$/, /^✅ Resolved by bob via the API/])
    const r = await s.store.enqueue({ groupKey: 'g', receivedAt: s.clock.now, resolved: false, plan: () => [firing(BOT, 'slack', 'k-bot-3', queued('third'))] })
    t.equal(r.superseded.filter((d) => d.destination === BOT).length, 4, 'the pending webhook and updates of the group give way to the newest')
  })

  t.test('slack: an escalation edits the bot channel\'s message and replies with reply_broadcast, instead of a new post there', async (t) => {
    const s = await open(t, factory)
    const id = await notifiedGroup(s, [{ destination: 'pagerduty-escalation', type: 'pagerduty' }, { destination: BOT, type: 'slack' }])
    s.clock.now = T0 + 5 * MIN
    const before = (await s.all()).length
    const r = await s.store.fireDueEscalations({ now: s.clock.now, limit: 10, isConfigured: () => true, isSlackApp })
    t.same(r.fired[0]?.deliveries.map((d) => [d.destination, d.state]), [[BOT, 'pending'], ['pagerduty-escalation', 'pending']], 'the reply counts as the escalation there')
    const added = (await s.all()).slice(before)
    t.same(added.map((d) => [d.destination, d.groupKey]), [[BOT, 'g'], [BOT, `incident:${id}`], ['pagerduty-escalation', `incident:${id}`]])
    t.match(added[0]?.body, { payload: { note: 'second' }, refresh: { receivedAt: T0 } })
    t.same(added[1]?.body, { slackReply: { incidentId: id, text: `🚨 Not acknowledged by the deadline ${new Date(T0 + 5 * MIN).toISOString().slice(11, 16)} UTC: escalation #1 to pagerduty-escalation, slack-bot`, broadcast: true } })
    t.match(added[2]?.body, { escalation: { incidentId: id, number: 1 } })

    const plain = await open(t, factory)
    await notifiedGroup(plain, [{ destination: BOT, type: 'slack' }])
    plain.clock.now = T0 + 5 * MIN
    const f = await plain.store.fireDueEscalations({ now: plain.clock.now, limit: 10, isConfigured: () => true })
    t.same(f.fired[0]?.deliveries.map((d) => d.destination), [BOT], 'without the predicate: an escalation delivery, as before')
    t.match((await plain.store.get(f.fired[0]?.deliveries[0]?.id ?? 0))?.body, { escalation: { number: 1 } })
  })

  t.test('markSkipped: nothing to send is skipped with its reason, while the claim holds', async (t) => {
    const s = await open(t, factory)
    await notifiedGroup(s)
    const [d] = await s.store.claim({ now: s.clock.now, limit: 1, leaseMs: 30_000, excludeDestinations: [], admit: () => true })
    t.equal(await s.store.markSkipped(d as Delivery, 'message_gone', 'no message yet'), 'done')
    t.match(await s.store.get(d?.id ?? 0), { state: 'skipped', lastReason: 'message_gone', lastError: 'no message yet', claimedUntil: null })
    t.equal(await s.store.markSkipped(d as Delivery, 'message_gone', 'again'), 'lost_claim')
  })
}
