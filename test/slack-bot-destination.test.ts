import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startServiceProcess } from './helpers/alert-enricher-process.js'
import { catalogDocument, entry, postWebhook, webhookPayload, writeCatalog } from './helpers/delivery-fixtures.js'
import { startFakeSlack } from './helpers/fake-slack.js'
import { acknowledgeClick, interactionBody, signSlackRequest, startFakeSlackApi } from './helpers/fake-slack-api.js'
import { startPostgres } from './helpers/postgres.js'
import { waitUntil } from './helpers/prometheus.js'

// A channel switched from an incoming webhook to the bot, end to end through the real service
// (a child process): the incident is one chat.postMessage to the channel id with the bearer
// token, then chat.update of that message through more alerts, the Acknowledge button (a
// signed interaction, replied in the thread) and the resolve; next to it a channel still on
// its incoming webhook posts each notification. A Slack error is a dead letter naming it.

const BOT_TOKEN = 'xoxb-e2e-bot-token-0001'
const CHANNEL = 'C0INCIDENT'
const SIGNING_SECRET = 'e2e-slack-signing-secret-0001'

interface DeliveryView { destination: string, groupKey: string, state: string, lastReason: string | null, lastError: string | null }

t.test('bot-token destination through the service', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-slack-bot-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const api = await startFakeSlackApi({ token: BOT_TOKEN, channels: [CHANNEL] })
  t.teardown(api.close)
  const webhook = await startFakeSlack()
  t.teardown(webhook.close)

  const catalogPath = writeCatalog(dir, catalogDocument({
    'slack-incident-response': { type: 'slack', channel: '#incident-response', channelId: CHANNEL, botToken: { env: 'SLACK_BOT_TOKEN' } },
    'slack-alerts': { type: 'slack', channel: '#alerts', webhookUrl: { env: 'SLACK_WEBHOOK_URL_ALERTS' } }
  }, [entry('bot-page', 'BotPage', 'P0', ['slack-incident-response', 'slack-alerts'])]))
  const service = await startServiceProcess({
    CATALOG_PATH: catalogPath,
    NOTIFY_TIMEOUT_MS: '2000',
    SLACK_API_URL: api.apiUrl,
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_WEBHOOK_URL_ALERTS: webhook.webhookUrl(),
    SLACK_UPDATE_DEBOUNCE_MS: '500'
  })
  t.teardown(service.stop)
  const deliveries = async (): Promise<DeliveryView[]> =>
    ((await (await fetch(`${service.url}/api/v1/deliveries?limit=1000`)).json()) as { deliveries: DeliveryView[] }).deliveries
  const settled = async (groupKey: string, destination: string, state: string): Promise<DeliveryView> => {
    let found: DeliveryView | undefined
    await waitUntil(`${destination} ${state}`, 20_000, async () => {
      found = (await deliveries()).find((d) => d.groupKey === groupKey && d.destination === destination && d.state === state)
      return found !== undefined
    }, () => JSON.stringify(found))
    return found as DeliveryView
  }

  const firing = webhookPayload({ alertname: 'BotPage', group: 'checkout' })
  t.equal((await postWebhook(service.url, firing)).status, 200)
  await settled(firing.groupKey, 'slack-incident-response', 'sent')
  await settled(firing.groupKey, 'slack-alerts', 'sent')
  t.equal(api.messages.length, 1, 'one chat.postMessage')
  const posted = api.received[0]
  t.equal(posted?.path, '/api/chat.postMessage')
  t.equal(posted?.headers.authorization, `Bearer ${BOT_TOKEN}`)
  t.equal(posted?.headers['content-type'], 'application/json; charset=utf-8')
  t.match(api.messages[0], { channel: CHANNEL, text: /P0\] FIRING: BotPage/ }, 'to the channel id, with the fallback text')
  t.match(JSON.stringify(api.messages[0]?.blocks), /to #incident-response/, 'the message names the channel for humans')
  t.equal(webhook.accepted.length, 1, 'the webhook channel still gets its post')

  // The bot message carries the incident's Acknowledge button; a signed click acknowledges it.
  const incidents = async (): Promise<Array<{ id: number, groupKey: string, state: string, acknowledgedBy: string | null, acknowledgedVia: string | null }>> =>
    ((await (await fetch(`${service.url}/api/v1/incidents`)).json()) as { incidents: Array<{ id: number, groupKey: string, state: string, acknowledgedBy: string | null, acknowledgedVia: string | null }> }).incidents
  const incident = (await incidents()).find((i) => i.groupKey === firing.groupKey)
  const button = JSON.stringify(api.messages[0]?.blocks).match(/"action_id":"acknowledge","value":"(\d+)"/)
  t.equal(button?.[1], String(incident?.id), "the Acknowledge button's value is the incident id")
  t.notMatch(JSON.stringify(webhook.accepted[0]), /"action_id":"acknowledge"/, 'no button where clicks cannot come back (incoming webhook)')
  const click = interactionBody(acknowledgeClick({ incidentId: String(incident?.id), userId: 'U0ANA', userName: 'ana', channel: CHANNEL }))
  const answer = await fetch(`${service.url}/integrations/slack/interactions`, {
    method: 'POST', body: click, headers: { 'content-type': 'application/x-www-form-urlencoded', ...signSlackRequest(SIGNING_SECRET, click, Math.floor(Date.now() / 1000)) }
  })
  t.equal(answer.status, 200)
  t.match((await incidents()).find((i) => i.groupKey === firing.groupKey), { state: 'acknowledged', acknowledgedBy: 'ana (U0ANA)', acknowledgedVia: 'slack' }, 'acknowledged by the Slack user')

  // Two more alerts, the acknowledgement and the resolve: edits of that one message.
  const grown = (n: number): ReturnType<typeof webhookPayload> =>
    webhookPayload({ alertname: 'BotPage', group: 'checkout', alerts: Array.from({ length: n }, (_, i) => ({ instance: `host-${i}` })) })
  t.equal((await postWebhook(service.url, grown(2))).status, 200)
  t.equal((await postWebhook(service.url, grown(3))).status, 200)
  const message = (): string => JSON.stringify(api.messages.find((m) => m.threadTs === undefined)?.blocks)
  await waitUntil('the message shows three alerts and the acknowledgement', 20_000, async () => /host-2/.test(message()) && /Acknowledged by ana/.test(message()), message)
  await waitUntil('the acknowledgement replied in the thread', 20_000, async () => api.messages.some((m) => m.threadTs !== undefined))
  const resolved = webhookPayload({ alertname: 'BotPage', group: 'checkout', status: 'resolved', alerts: [0, 1, 2].map((i) => ({ instance: `host-${i}` })) })
  t.equal((await postWebhook(service.url, resolved)).status, 200)
  await waitUntil('the message reads resolved', 20_000, async () => /RESOLVED: BotPage/.test(api.messages.find((m) => m.threadTs === undefined)?.text ?? ''))

  const bodies = api.received.map((r) => ({ method: r.path.replace('/api/', ''), json: JSON.parse(r.body) as { ts?: string, thread_ts?: string, text: string, blocks?: unknown[] } }))
  const posts = bodies.filter((b) => b.method === 'chat.postMessage' && b.json.thread_ts === undefined)
  t.equal(posts.length, 1, 'exactly one chat.postMessage for the incident')
  const ts = api.messages[0]?.ts
  const updates = bodies.filter((b) => b.method === 'chat.update')
  t.ok(updates.length >= 2, `updates of the message (${updates.length})`)
  t.ok(updates.every((u) => u.json.ts === ts), 'every update edits that same ts')
  // Each update shows a state at least as late as the one before: never out of order.
  const stage = (u: { json: { text: string, blocks?: unknown[] } }): number => {
    const text = JSON.stringify(u.json.blocks)
    if (/RESOLVED/.test(u.json.text)) return 5
    if (/Acknowledged by ana/.test(text)) return 4
    return (text.match(/host-\d/g) ?? []).length > 0 ? new Set(text.match(/host-\d/g)).size : 1
  }
  const stages = updates.map(stage)
  t.same(stages, [...stages].sort((x, y) => x - y), `updates in order (${stages.join(' → ')})`)
  t.equal(stages.at(-1), 5, 'the last update reads resolved')
  const replies = api.messages.filter((m) => m.threadTs !== undefined)
  t.match(replies, [{ threadTs: ts, text: /^✋ Acknowledged by <@U0ANA> via Slack at \d\d:\d\d UTC$/ }], 'one thread reply, for the acknowledgement')
  t.equal(api.messages.filter((m) => m.threadTs === undefined).length, 1, 'one message in the channel')
  t.equal(webhook.accepted.length, 4, 'the incoming-webhook channel: one post per notification, as before')

  api.failWith('not_in_channel')
  const other = webhookPayload({ alertname: 'BotPage', group: 'payments' })
  t.equal((await postWebhook(service.url, other)).status, 200)
  const dead = await settled(other.groupKey, 'slack-incident-response', 'dead')
  t.match(dead, { lastReason: 'rejected', lastError: 'Slack chat.postMessage: not_in_channel' }, 'a dead letter naming the Slack error')
  const catalog = await (await fetch(`${service.url}/api/v1/catalog`)).json() as { catalog: { destinations: Record<string, unknown> } }
  t.same(catalog.catalog.destinations['slack-incident-response'], { type: 'slack', channel: '#incident-response', channelId: CHANNEL, botToken: { env: 'SLACK_BOT_TOKEN' } }, 'the catalog API shows the token\'s reference only')
  t.notOk(service.output().includes(BOT_TOKEN), 'the token is not in the log')
})

t.test('two replicas on one PostgreSQL: the replica that did not post the message edits it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-slack-ha-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const server = await startPostgres()
  t.teardown(server.stop)
  const api = await startFakeSlackApi({ token: BOT_TOKEN, channels: [CHANNEL] })
  t.teardown(api.close)
  const catalogPath = writeCatalog(dir, catalogDocument({
    'slack-incident-response': { type: 'slack', channel: '#incident-response', channelId: CHANNEL, botToken: { env: 'SLACK_BOT_TOKEN' } }
  }, [entry('bot-page', 'BotPage', 'P0', ['slack-incident-response'])]))
  const env = {
    CATALOG_PATH: catalogPath,
    DATABASE_URL: server.url(await server.createDatabase('slackha')),
    NOTIFY_TIMEOUT_MS: '2000',
    SLACK_API_URL: api.apiUrl,
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_UPDATE_DEBOUNCE_MS: '0'
  }
  const a = await startServiceProcess(env)
  t.teardown(a.stop)
  const b = await startServiceProcess(env)
  t.teardown(b.stop)

  const page = (n: number): ReturnType<typeof webhookPayload> =>
    webhookPayload({ alertname: 'BotPage', group: 'ha', alerts: Array.from({ length: n }, (_, i) => ({ instance: `host-${i}` })) })
  t.equal((await postWebhook(a.url, page(1))).status, 200)
  await waitUntil('the message posted', 20_000, async () => api.messages.length === 1)
  const ts = api.messages[0]?.ts
  // Replica A is gone: whatever happens next, B does it, from what the database holds.
  await a.stop()
  t.equal((await postWebhook(b.url, page(2))).status, 200)
  await waitUntil('the message edited', 20_000, async () => /host-1/.test(JSON.stringify(api.messages[0]?.blocks)))
  const incidents = ((await (await fetch(`${b.url}/api/v1/incidents`)).json()) as { incidents: Array<{ id: number }> }).incidents
  const click = interactionBody(acknowledgeClick({ incidentId: String(incidents[0]?.id), userId: 'U0BEA', userName: 'bea', channel: CHANNEL, messageTs: ts ?? '' }))
  const answer = await fetch(`${b.url}/integrations/slack/interactions`, {
    method: 'POST', body: click, headers: { 'content-type': 'application/x-www-form-urlencoded', ...signSlackRequest(SIGNING_SECRET, click, Math.floor(Date.now() / 1000)) }
  })
  t.equal(answer.status, 200)
  await waitUntil('the acknowledgement shown and replied', 20_000, async () =>
    /Acknowledged by bea/.test(JSON.stringify(api.messages[0]?.blocks)) && api.messages.some((m) => m.threadTs === ts))
  const calls = api.received.map((r) => ({ path: r.path, json: JSON.parse(r.body) as { ts?: string, thread_ts?: string } }))
  t.equal(calls.filter((c) => c.path === '/api/chat.postMessage' && c.json.thread_ts === undefined).length, 1, 'posted once, by A')
  t.ok(calls.filter((c) => c.path === '/api/chat.update').every((c) => c.json.ts === ts), 'B edits the ts A stored')
  t.equal(api.messages.filter((m) => m.threadTs === undefined).length, 1)
  t.notOk(b.output().includes(BOT_TOKEN), 'the token is not in the log')
})
