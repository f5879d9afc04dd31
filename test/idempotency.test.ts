import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startServiceProcess, type ServiceProcess } from './helpers/alert-enricher-process.js'
import { catalogDocument, dedupKeyFor, entry, postWebhook, webhookPayload, writeCatalog, type PageOptions } from './helpers/delivery-fixtures.js'
import type { FakeServer } from './helpers/fake-http.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'
import { startFakeSlack, type FakeSlack } from './helpers/fake-slack.js'
import { sleep, waitUntil } from './helpers/prometheus.js'

// Idempotency end to end: the real service (child process) between "Alertmanager" and the
// fakes. Retries and HA duplicates reach Slack and PagerDuty exactly once; a changed alert set
// or status is a new notification; after IDEMPOTENCY_WINDOW_SECONDS the same notification
// (Alertmanager's repeat_interval reminder) goes out again.

const ROUTING_KEY = 'idempotencyroutingkey00000000001' // 32 chars

interface WebhookAnswer { status: string, enqueued: number, duplicates: number }

interface Setup { service: ServiceProcess, slack: FakeSlack, pagerduty: FakeServer, env: Record<string, string> }

async function setup (t: Test, env: Record<string, string> = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'ae-idem-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const slack = await startFakeSlack()
  t.teardown(slack.close)
  const pagerduty = await startFakePagerDuty()
  t.teardown(pagerduty.close)
  const catalogPath = writeCatalog(dir, catalogDocument({
    pagerduty: { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ROUTING_KEY' } },
    'slack-incident-response': { type: 'slack', channel: '#incident-response', webhookUrl: { env: 'SLACK_WEBHOOK_URL_INCIDENT_RESPONSE' } }
  }, [entry('idem-page', 'IdemPage', 'P0', ['pagerduty', 'slack-incident-response'])]))
  const serviceEnv = {
    CATALOG_PATH: catalogPath,
    PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
    PAGERDUTY_EVENTS_URL: pagerduty.url,
    SLACK_WEBHOOK_URL_INCIDENT_RESPONSE: slack.url,
    ...env
  }
  // A DATA_DIR the test owns: a restart reopens it.
  const service = await startServiceProcess(serviceEnv, { dataDir: join(dir, 'data') })
  t.teardown(service.stop)
  return { service, slack, pagerduty, env: serviceEnv }
}

async function post (t: Test, url: string, opts: PageOptions): Promise<WebhookAnswer> {
  const res = await postWebhook(url, webhookPayload(opts))
  t.equal(res.status, 200, `webhook ${opts.group} answered 200`)
  return res.json as WebhookAnswer
}

// What reached the fakes for one group: Slack messages carry `group <hash12>` in their
// context line; PagerDuty events carry dedup_key = sha256(groupKey).
function reached (s: Setup, group: string): { slack: number, pagerduty: string[] } {
  const groupKey = webhookPayload({ alertname: 'IdemPage', group }).groupKey
  const hash = dedupKeyFor(groupKey)
  return {
    slack: s.slack.accepted.filter((m) => JSON.stringify(m).includes(`group ${hash.slice(0, 12)}`)).length,
    pagerduty: (s.pagerduty.accepted as Array<{ dedup_key: string, event_action: string }>).filter((e) => e.dedup_key === hash).map((e) => e.event_action)
  }
}

async function waitForReached (s: Setup, group: string, slack: number, pagerduty: number): Promise<void> {
  await waitUntil(`${slack} Slack message(s) and ${pagerduty} PagerDuty event(s) for ${group}`, 20_000, async () => {
    const r = reached(s, group)
    return r.slack >= slack && r.pagerduty.length >= pagerduty
  }, () => JSON.stringify(reached(s, group)))
}

t.test('within the idempotency window', async (t) => {
  const s = await setup(t)
  const url = s.service.url
  const alerts = [{ instance: 'a' }, { instance: 'b' }]

  t.test('the same webhook twice (an Alertmanager retry) is one notification', async (t) => {
    const first = await post(t, url, { alertname: 'IdemPage', group: 'retry', alerts })
    t.match(first, { status: 'accepted', enqueued: 2, duplicates: 0 })
    const again = await post(t, url, { alertname: 'IdemPage', group: 'retry', alerts })
    t.match(again, { status: 'duplicate', enqueued: 0, duplicates: 2 })
    const reordered = await post(t, url, { alertname: 'IdemPage', group: 'retry', alerts: [...alerts].reverse() })
    t.match(reordered, { status: 'duplicate', enqueued: 0 }, 'the alert order does not matter')
  })

  t.test('HA peers posting the same group concurrently are one notification', async (t) => {
    // Two Alertmanagers, each retrying once: four concurrent posts of one payload.
    const answers = await Promise.all(Array.from({ length: 4 }, async () => await post(t, url, { alertname: 'IdemPage', group: 'ha', alerts })))
    t.same(answers.map((a) => a.status).sort(), ['accepted', 'duplicate', 'duplicate', 'duplicate'])
    t.equal(answers.reduce((n, a) => n + a.enqueued, 0), 2, 'two deliveries (Slack + PagerDuty) in all')
  })

  t.test('a changed alert set or status is a new notification', async (t) => {
    const grown = await post(t, url, { alertname: 'IdemPage', group: 'retry', alerts: [...alerts, { instance: 'c' }] })
    t.match(grown, { status: 'accepted', enqueued: 2 }, 'one more alert in the group')
    const partly = await post(t, url, { alertname: 'IdemPage', group: 'retry', alerts: [{ instance: 'a', status: 'resolved' }, { instance: 'b' }, { instance: 'c' }] })
    t.match(partly, { status: 'accepted', enqueued: 2 }, 'one alert of the group resolved')
    const resolved = await post(t, url, { alertname: 'IdemPage', group: 'retry', status: 'resolved', alerts: [{ instance: 'a' }, { instance: 'b' }, { instance: 'c' }] })
    t.match(resolved, { status: 'accepted', enqueued: 2 }, 'the group resolved')
    const resolvedAgain = await post(t, url, { alertname: 'IdemPage', group: 'retry', status: 'resolved', alerts: [{ instance: 'a' }, { instance: 'b' }, { instance: 'c' }] })
    t.match(resolvedAgain, { status: 'duplicate', enqueued: 0 }, 'and its retry is a duplicate')
  })

  t.test('exactly that reaches Slack and PagerDuty', async (t) => {
    await waitForReached(s, 'retry', 1, 1)
    await waitForReached(s, 'ha', 1, 1)
    // A later group, enqueued behind all of the above: once it has arrived, any duplicate
    // that had been enqueued would have arrived too.
    t.match(await post(t, url, { alertname: 'IdemPage', group: 'barrier' }), { status: 'accepted' })
    await waitForReached(s, 'barrier', 1, 1)
    // Four states of the retry group enqueued within milliseconds: per destination they go out
    // in order, and a state still pending when a newer one arrives is superseded (the newer one
    // carries the whole group). Each state is sent or superseded exactly once; the last word is
    // the resolve.
    const retry = reached(s, 'retry')
    t.equal(retry.pagerduty.at(-1), 'resolve', `PagerDuty's last event for the group is the resolve (${retry.pagerduty.join(', ')})`)
    t.equal(retry.pagerduty.filter((e) => e === 'resolve').length, 1)
    const retryRows = (await fetch(`${url}/api/v1/deliveries?limit=1000`).then(async (r) => await r.json() as { deliveries: Array<{ groupKey: string, destination: string, state: string, lastReason: string | null }> }))
      .deliveries.filter((d) => d.groupKey === webhookPayload({ alertname: 'IdemPage', group: 'retry' }).groupKey)
    for (const dest of ['pagerduty', 'slack-incident-response']) {
      const mine = retryRows.filter((d) => d.destination === dest)
      t.equal(mine.length, 4, `${dest}: four states, four deliveries`)
      const sent = mine.filter((d) => d.state === 'sent').length
      const superseded = mine.filter((d) => d.state === 'skipped' && d.lastReason === 'superseded').length
      t.equal(sent + superseded, 4, `${dest}: each sent or superseded (${sent} sent)`)
      t.equal(dest === 'pagerduty' ? retry.pagerduty.length : retry.slack, sent, `${dest}: what was sent is what arrived, once`)
    }
    t.same(reached(s, 'ha'), { slack: 1, pagerduty: ['trigger'] }, 'HA group: one message, one event')
    const rows = await fetch(`${url}/api/v1/deliveries?limit=1000`).then(async (r) => await r.json() as { deliveries: Array<{ groupKey: string, destination: string, state: string }> })
    const ha = rows.deliveries.filter((d) => d.groupKey === webhookPayload({ alertname: 'IdemPage', group: 'ha' }).groupKey)
    t.same(ha.map((d) => `${d.destination}:${d.state}`).sort(), ['pagerduty:sent', 'slack-incident-response:sent'], 'the outbox holds one delivery per destination for the HA group')
    t.equal(s.slack.received.length, s.slack.accepted.length, 'the fake Slack refused nothing')
    t.equal(s.pagerduty.received.length, s.pagerduty.accepted.length, 'the fake PagerDuty refused nothing')
  })
})

t.test('after the idempotency window the same notification goes out again (repeat_interval)', async (t) => {
  const windowMs = 1000
  const s = await setup(t, { IDEMPOTENCY_WINDOW_SECONDS: String(windowMs / 1000) })
  const url = s.service.url
  const first = await post(t, url, { alertname: 'IdemPage', group: 'reminder' })
  const answeredAt = Date.now()
  t.match(first, { status: 'accepted', enqueued: 2 })
  await waitForReached(s, 'reminder', 1, 1)
  // The key expires windowMs after the service stored it, which was before it answered.
  await sleep(Math.max(0, answeredAt + windowMs + 100 - Date.now()))
  const reminder = await post(t, url, { alertname: 'IdemPage', group: 'reminder' })
  t.match(reminder, { status: 'accepted', enqueued: 2, duplicates: 0 })
  await waitForReached(s, 'reminder', 2, 2)
  t.same(reached(s, 'reminder'), { slack: 2, pagerduty: ['trigger', 'trigger'] })
})

// PagerDuty keeps the last event per dedup_key: a trigger that arrives after the resolve
// re-opens the incident, and nothing will ever resolve it. So a stale trigger still being
// retried must not overtake the resolve that followed it.
t.test('a resolve is not overtaken by a retried trigger of the same group', async (t) => {
  const s = await setup(t)
  const groupKey = webhookPayload({ alertname: 'IdemPage', group: 'flapping' }).groupKey
  // PagerDuty fails this group's triggers (5xx: retried) until released.
  let failTriggers = true
  s.pagerduty.setMode({
    kind: 'intercept',
    reply: (req) => failTriggers && req.body.includes('"event_action":"trigger"') && req.body.includes(dedupKeyFor(groupKey))
      ? { status: 500, body: JSON.stringify({ status: 'error', message: 'HTTP 500' }) }
      : undefined
  })
  t.match(await post(t, s.service.url, { alertname: 'IdemPage', group: 'flapping' }), { status: 'accepted' })
  await s.pagerduty.waitForRequests(1, 20_000)
  t.match(await post(t, s.service.url, { alertname: 'IdemPage', group: 'flapping', status: 'resolved' }), { status: 'accepted' })
  await waitUntil('the resolve at PagerDuty', 20_000, async () => reached(s, 'flapping').pagerduty.includes('resolve'))
  failTriggers = false
  // Bounded: the trigger is either retried (and sent) or dropped as superseded.
  const rows = async (): Promise<Array<{ destination: string, state: string }>> =>
    (await fetch(`${s.service.url}/api/v1/deliveries?limit=1000`).then(async (r) => await r.json() as { deliveries: Array<{ groupKey: string, destination: string, state: string }> }))
      .deliveries.filter((d) => d.groupKey === groupKey && d.destination === 'pagerduty')
  await waitUntil('no PagerDuty delivery of the group pending', 20_000, async () => (await rows()).every((d) => d.state !== 'pending' && d.state !== 'sending'))
  const events = reached(s, 'flapping').pagerduty
  t.equal(events.at(-1), 'resolve', `the last event PagerDuty accepted for the group is the resolve (accepted: ${events.join(', ')})`)
})

t.test('fire, resolve, fire again within the window: two triggers and one resolve, in order; HA peers still collapse', async (t) => {
  const s = await setup(t)
  const url = s.service.url
  const fire = { alertname: 'IdemPage', group: 'refire' }
  t.match(await post(t, url, fire), { enqueued: 2 })
  await waitForReached(s, 'refire', 1, 1)
  t.match(await post(t, url, { ...fire, status: 'resolved' }), { enqueued: 2 })
  await waitForReached(s, 'refire', 2, 2)
  // The same labels, a new startsAt: it fired again now. Three HA peers post it at once.
  const refire = { ...fire, startsAt: new Date().toISOString() }
  const answers = await Promise.all([0, 1, 2].map(async () => await post(t, url, refire)))
  t.same(answers.map((a) => a.enqueued).sort(), [0, 0, 2], 'a new notification, enqueued once across three peers')
  await waitForReached(s, 'refire', 3, 3)
  await sleep(300) // room for a wrongly doubled send to arrive
  t.same(reached(s, 'refire'), { slack: 3, pagerduty: ['trigger', 'resolve', 'trigger'] })
})

t.test('the idempotency window holds across a restart', async (t) => {
  const s = await setup(t)
  const payload = webhookPayload({ alertname: 'IdemPage', group: 'restart' })
  t.match((await postWebhook(s.service.url, payload)).json, { enqueued: 2 })
  await waitForReached(s, 'restart', 1, 1)
  await s.service.stop()
  const again = await startServiceProcess({ ...s.env }, { dataDir: s.service.dataDir })
  t.teardown(again.stop)
  t.match((await postWebhook(again.url, payload)).json, { status: 'duplicate', enqueued: 0, duplicates: 2 }, 'the retry after the restart is a duplicate')
  await sleep(300)
  t.same(reached(s, 'restart'), { slack: 1, pagerduty: ['trigger'] })
})

t.test('the default window is 600 s on the running service, not a unit slip', async (t) => {
  const s = await setup(t)
  const payload = webhookPayload({ alertname: 'IdemPage', group: 'default-window' })
  t.match((await postWebhook(s.service.url, payload)).json, { enqueued: 2 })
  // Longer than 6 s (a window of 600 ms ×10, or 6 s): still inside 600 s.
  await sleep(7_000)
  t.match((await postWebhook(s.service.url, payload)).json, { status: 'duplicate', enqueued: 0 })
})
