import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseCatalog, type Catalog } from '../src/config/catalog.js'
import { createAcknowledger } from '../src/incidents/acknowledge.js'
import type { ApplyAcknowledgement } from '../src/incidents/types.js'
import { createMetrics, type Metrics } from '../src/metrics.js'
import { createDestinationRegistry } from '../src/notify/destinations.js'
import { createIncidentMessages } from '../src/notify/slack/incident-message.js'
import { createDispatcher, type Dispatcher } from '../src/outbox/dispatcher.js'
import { createIntake, type Intake } from '../src/outbox/intake.js'
import { createRateLimiter } from '../src/outbox/rate-limit.js'
import { createDeliverySender } from '../src/outbox/send.js'
import { createPostgresStore } from '../src/store/postgres/store.js'
import { createSqliteStore } from '../src/store/sqlite/store.js'
import type { Store } from '../src/store/types.js'
import { catalogDocument, entry, webhookPayload, type PageOptions } from './helpers/delivery-fixtures.js'
import { startFakeSlack, type FakeSlack } from './helpers/fake-slack.js'
import { startFakeSlackApi, type FakeSlackApi, type StoredMessage } from './helpers/fake-slack-api.js'
import { startPostgres } from './helpers/postgres.js'

// One Slack message per incident and bot-token channel, edited in place: the real store (SQLite,
// and PostgreSQL shared by two replicas), the real dispatcher, sender and destinations, against
// the fake Slack Web API, on a clock the test moves (the debounce is about time, not timing).

const TOKEN = 'xoxb-incident-message-token-0001'
const CHANNEL = 'C0INCIDENT'
const BOT = 'slack-bot'
const HOOK = 'slack-alerts'
const DEBOUNCE_MS = 3_000
const T0 = Date.parse('2026-11-26T20:11:00Z')

const silent = { debug () {}, info () {}, warn () {}, error () {} }

interface Replica { intake: Intake, acknowledge: ApplyAcknowledgement, dispatcher: Dispatcher, metrics: Metrics }
interface Rig { clock: { now: number }, api: FakeSlackApi, hook: FakeSlack, catalog: Catalog, replicas: Replica[], store: Store }

async function rig (t: Test, stores: Store[], clock: { now: number }, routes: { to: string[], escalateTo: string[] } = { to: [BOT, HOOK], escalateTo: [BOT] }): Promise<Rig> {
  const api = await startFakeSlackApi({ token: TOKEN, channels: [CHANNEL] })
  t.teardown(api.close)
  const hook = await startFakeSlack()
  t.teardown(hook.close)
  const doc = catalogDocument({
    [BOT]: { type: 'slack', channel: '#incident-response', channelId: CHANNEL, botToken: { env: 'SLACK_BOT_TOKEN' } },
    [HOOK]: { type: 'slack', channel: '#alerts', webhookUrl: { env: 'SLACK_WEBHOOK_URL_ALERTS' } }
  }, [{ ...entry('bot-page', 'BotPage', 'P0', routes.to), escalateTo: routes.escalateTo }])
  const parsed = parseCatalog(JSON.stringify(doc), 'catalog.yaml')
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems))
  const catalog = parsed.catalog
  const replicas = stores.map((store): Replica => {
    const metrics = createMetrics({ defaultMetrics: false })
    const destinations = createDestinationRegistry(catalog.doc.destinations, {
      env: { SLACK_BOT_TOKEN: TOKEN, SLACK_WEBHOOK_URL_ALERTS: hook.webhookUrl() },
      readFile: () => { throw new Error('no secret files here') },
      fetch: globalThis.fetch,
      timeoutMs: 5_000,
      pagerDutyEventsUrl: 'http://127.0.0.1:9/unused',
      slackApiUrl: api.apiUrl,
      now: () => new Date(clock.now)
    })
    const isSlackApp = (name: string): boolean => destinations.get(name)?.slackBot !== undefined
    const dispatcher = createDispatcher({ releaseClaimsAtStart: false }, {
      store,
      limiter: createRateLimiter(() => null),
      send: createDeliverySender({
        store,
        runtime: () => ({ catalog, destinations }),
        now: () => new Date(clock.now),
        incidentMessages: createIncidentMessages({ store, now: () => clock.now, debounceMs: DEBOUNCE_MS })
      }),
      now: () => clock.now,
      metrics,
      logger: silent,
      isSlackApp
    })
    return {
      metrics,
      dispatcher,
      intake: createIntake({ store, metrics, runtime: () => ({ catalog, isConfigured: () => true }), wakeDispatcher: () => {} }),
      acknowledge: createAcknowledger({ store, metrics, catalog: () => catalog, isConfigured: () => true, isSlackApp })
    }
  })
  return { clock, api, hook, catalog, replicas, store: stores[0] as Store }
}

function sqliteStore (t: Test, clock: { now: number }): Store {
  const dir = mkdtempSync(join(tmpdir(), 'ae-slack-msg-'))
  const store = createSqliteStore({ dataDir: dir, idempotencyWindowMs: 600_000 }, { now: () => clock.now })
  t.teardown(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }) })
  return store
}

// Started just before the test clock's T0: the P0 deadline is 20:15 UTC on that clock.
const STARTS_AT = new Date(T0 - 5_000).toISOString()
const page = (instances: number, status: PageOptions['status'] = 'firing'): ReturnType<typeof webhookPayload> =>
  webhookPayload({ alertname: 'BotPage', group: 'checkout', status, startsAt: STARTS_AT, alerts: Array.from({ length: instances }, (_, i) => ({ instance: `host-${i}` })) })

async function post (r: Rig, replica: Replica, payload: ReturnType<typeof webhookPayload>): Promise<void> {
  await replica.intake(payload, JSON.stringify(payload), r.clock.now)
}

const topLevel = (api: FakeSlackApi): StoredMessage[] => api.messages.filter((m) => m.threadTs === undefined)
const replies = (api: FakeSlackApi): StoredMessage[] => api.messages.filter((m) => m.threadTs !== undefined)
const calls = (api: FakeSlackApi): string[] => api.received.map((c) => c.path.replace('/api/', ''))
const tsOf = (api: FakeSlackApi, i: number): unknown => (JSON.parse(api.received[i]?.body ?? '{}') as { ts?: unknown }).ts
const blocksOf = (m: StoredMessage | undefined): string => JSON.stringify(m?.blocks)

t.test('life cycle: one post, then updates of that ts in order, debounced; the acknowledgement replies in the thread; a deleted message is posted anew', async (t) => {
  const clock = { now: T0 }
  const r = await rig(t, [sqliteStore(t, clock)], clock)
  const [a] = r.replicas as [Replica]

  await post(r, a, page(1))
  await a.dispatcher.runOnce()
  t.same(calls(r.api), ['chat.postMessage'], 'the first notification posts')
  const [first] = topLevel(r.api)
  t.match(first, { channel: CHANNEL, text: /FIRING: BotPage/ })
  const [incident] = await r.store.listIncidents({ limit: 1 })
  t.match(await r.store.slackMessage(incident?.id ?? 0, BOT), { channel: CHANNEL, ts: first?.ts, postedAt: T0, lastUpdateAt: T0 }, 'its channel and ts are stored with the incident')

  // Two more alerts in quick succession: held until the debounce has passed, the older one superseded.
  clock.now = T0 + 1_000
  await post(r, a, page(2))
  await a.dispatcher.runOnce()
  clock.now = T0 + 1_500
  await post(r, a, page(3))
  await a.dispatcher.runOnce()
  t.same(calls(r.api), ['chat.postMessage'], 'no update within the debounce')
  const waiting = (await r.store.list({ state: 'pending', limit: 10 })).filter((d) => d.destination === BOT)
  t.match(waiting, [{ lastReason: 'debounced', nextAttemptAt: T0 + DEBOUNCE_MS }], 'the latest one waits until the debounce has passed')
  const skipped = (await r.store.list({ state: 'skipped', limit: 10 })).filter((d) => d.destination === BOT)
  t.match(skipped, [{ lastReason: 'superseded' }], 'the one it replaced is skipped')
  clock.now = T0 + DEBOUNCE_MS
  await a.dispatcher.runOnce()
  t.same(calls(r.api), ['chat.postMessage', 'chat.update'], 'one update for two changes')
  t.equal(tsOf(r.api, 1), first?.ts, 'of the same ts')
  t.match(blocksOf(topLevel(r.api)[0]), /host-2/, 'showing the latest state (three alerts)')
  t.equal(r.hook.accepted.length, 3, 'the incoming-webhook channel still gets one post per notification')

  // An acknowledgement (the Slack button's path): the message is edited and the thread told.
  clock.now = T0 + 3_500
  t.equal((await a.acknowledge({ incidentId: incident?.id ?? 0, action: 'acknowledge', by: 'ana (U0ANA)', via: 'slack', at: clock.now })).outcome, 'applied')
  await a.dispatcher.runOnce()
  t.match(replies(r.api), [{ channel: CHANNEL, threadTs: first?.ts, text: '✋ Acknowledged by <@U0ANA> via Slack at 20:11 UTC' }], 'a reply in the message\'s thread, at once')
  t.equal(replies(r.api)[0]?.replyBroadcast, undefined, 'not broadcast')
  t.equal(calls(r.api).filter((c) => c === 'chat.update').length, 1, 'the update waits for the debounce')
  clock.now = T0 + 2 * DEBOUNCE_MS
  await a.dispatcher.runOnce()
  t.match(blocksOf(topLevel(r.api)[0]), /Acknowledged by ana \(U0ANA\) via Slack/, 'the message shows who acknowledged it')
  t.notMatch(blocksOf(topLevel(r.api)[0]), /"action_id":"acknowledge"/, 'and no longer offers the button')

  // Someone deleted the message: the next change posts a new one and its ts is stored.
  r.api.deleteMessage(CHANNEL, first?.ts ?? '')
  clock.now = T0 + 10_000
  await post(r, a, page(3, 'resolved'))
  await a.dispatcher.runOnce()
  t.same(calls(r.api).slice(-2), ['chat.update', 'chat.postMessage'], 'message_not_found on update, then a new post')
  const [repost] = topLevel(r.api)
  t.not(repost?.ts, first?.ts)
  t.match(repost, { text: /RESOLVED: BotPage/ }, 'the final message reads resolved')
  t.equal((await r.store.slackMessage(incident?.id ?? 0, BOT))?.ts, repost?.ts, 'the new ts is stored')
  t.same(topLevel(r.api).length, 1, 'one message for the incident in the channel')
  t.same(first?.edits.length, 3, 'the first message: posted, then edited twice, never out of order')
  t.match(first?.edits, [/FIRING/, /FIRING/, /FIRING/])
  const sent = await r.store.list({ state: 'sent', limit: 100 })
  t.ok(sent.filter((d) => d.destination === BOT).every((d) => d.lastReason === null || d.lastReason === 'debounced'), 'nothing dead-lettered on the way')
  t.equal((await r.store.list({ state: 'dead', limit: 10 })).length, 0)
  const debounced = (await a.metrics.notifications.get()).values.find((v) => v.labels.destination === BOT && v.labels.reason === 'debounced')
  t.ok((debounced?.value ?? 0) >= 2, 'debounced updates are counted under their own reason')
})

t.test('escalation: the bot channel\'s message is edited and the thread hears it with reply_broadcast, no new post', async (t) => {
  const clock = { now: T0 }
  const r = await rig(t, [sqliteStore(t, clock)], clock)
  const [a] = r.replicas as [Replica]
  await post(r, a, page(1))
  await a.dispatcher.runOnce()
  const [message] = topLevel(r.api)
  clock.now = T0 + 5 * 60_000 + 1_000
  await a.dispatcher.runOnce()
  t.same(calls(r.api).slice(1).sort(), ['chat.postMessage', 'chat.update'], 'an update and a reply')
  t.match(replies(r.api), [{ threadTs: message?.ts, replyBroadcast: true, text: /^🚨 Not acknowledged by the deadline 20:15 UTC: escalation #1 to slack-bot$/ }])
  t.match(blocksOf(topLevel(r.api)[0]), /Not acknowledged: escalated to/, 'the message says it escalated')
  clock.now += 2 * DEBOUNCE_MS
  await a.dispatcher.runOnce()
  t.equal(calls(r.api).length, 3, 'nothing else for that channel: no separate escalation message or edit')
  t.same(await r.store.list({ state: 'pending', limit: 10 }), [], 'nothing left to send')
  t.equal(topLevel(r.api).length, 1, 'one message in the channel')
})

t.test('an escalation to a bot channel not told of the group before: its message there, edited from then on', async (t) => {
  const clock = { now: T0 }
  const r = await rig(t, [sqliteStore(t, clock)], clock, { to: [HOOK], escalateTo: [BOT] })
  const [a] = r.replicas as [Replica]
  await post(r, a, page(1))
  await a.dispatcher.runOnce()
  t.same(calls(r.api), [], 'the bot channel hears nothing before the breach')
  clock.now = T0 + 5 * 60_000 + 1_000
  await a.dispatcher.runOnce()
  t.same(calls(r.api), ['chat.postMessage'], 'the escalation posts')
  const [message] = topLevel(r.api)
  t.match(message, { text: /ESCALATION P0: not acknowledged/ })
  const [incident] = await r.store.listIncidents({ limit: 1 })
  t.equal((await r.store.slackMessage(incident?.id ?? 0, BOT))?.ts, message?.ts, 'and is the incident\'s message there')
  clock.now += DEBOUNCE_MS
  await post(r, a, page(1, 'resolved'))
  await a.dispatcher.runOnce()
  t.same(calls(r.api), ['chat.postMessage', 'chat.update'], 'the resolve edits it')
  t.match(topLevel(r.api), [{ ts: message?.ts, text: /RESOLVED: BotPage/ }])
})

t.test('a thread reply with no message yet is skipped, not dead-lettered', async (t) => {
  const clock = { now: T0 }
  const store = sqliteStore(t, clock)
  const messages = createIncidentMessages({ store, now: () => clock.now, debounceMs: DEBOUNCE_MS })
  const bot = { send: async () => { throw new Error('not called') }, deliver: async () => { throw new Error('not called') }, reply: async () => { throw new Error('not called') } }
  t.match(await messages.reply(bot, BOT, { slackReply: { incidentId: 7, text: 'hi', broadcast: false } }), { ok: false, skip: true, reason: 'message_gone', error: /no message in this channel yet/ })
})

t.test('two replicas on one PostgreSQL: the replica that did not post the message edits it', async (t) => {
  const server = await startPostgres()
  t.teardown(server.stop)
  const url = server.url(await server.createDatabase('slackmsg'))
  const clock = { now: T0 }
  const open = async (): Promise<Store> => {
    const s = await createPostgresStore({ url, idempotencyWindowMs: 600_000, poolSize: 4 }, { now: () => clock.now })
    t.teardown(async () => { await s.close() })
    return s
  }
  const r = await rig(t, [await open(), await open()], clock)
  const [a, b] = r.replicas as [Replica, Replica]
  await post(r, a, page(1))
  await a.dispatcher.runOnce()
  t.same(calls(r.api), ['chat.postMessage'], 'replica A posts')
  const ts = topLevel(r.api)[0]?.ts
  clock.now = T0 + DEBOUNCE_MS
  await post(r, b, page(2))
  await b.dispatcher.runOnce()
  t.same(calls(r.api), ['chat.postMessage', 'chat.update'], 'replica B updates')
  t.equal(tsOf(r.api, 1), ts, 'the message A posted')
  t.match(blocksOf(topLevel(r.api)[0]), /host-1/)
  clock.now = T0 + 2 * DEBOUNCE_MS
  const [incident] = await r.store.listIncidents({ limit: 1 })
  await b.acknowledge({ incidentId: incident?.id ?? 0, action: 'acknowledge', by: 'bob', via: 'api', at: clock.now })
  await a.dispatcher.runOnce()
  t.same(calls(r.api).slice(2).sort(), ['chat.postMessage', 'chat.update'], 'an acknowledgement taken by B: A edits the message and replies')
  t.match(replies(r.api), [{ threadTs: ts, text: /^✋ Acknowledged by bob via the API/ }])
  t.equal(topLevel(r.api).length, 1)
})
