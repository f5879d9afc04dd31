import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t, { type Test } from 'tap'
import { startServiceProcess, type ServiceProcess } from './helpers/alert-enricher-process.js'
import { exampleConfigFor, startAlertmanager, type PostableAlert, type RunningAlertmanager } from './helpers/alertmanager.js'
import { catalogDocument, entry, writeCatalog } from './helpers/delivery-fixtures.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'
import { startFakeSlack } from './helpers/fake-slack.js'
import { startPostgres } from './helpers/postgres.js'
import { sleep, waitUntil } from './helpers/prometheus.js'

// High availability end to end: three real Alertmanagers clustered with each other (gossip on
// loopback), each posting (examples/alertmanager.yml) to its own replica; the three replicas
// share one PostgreSQL. 200 groups fire, then resolve; one replica is SIGKILLed mid-stream and
// restarted on its port. Every group's trigger and resolve reach PagerDuty, in that order, and
// nothing reaches PagerDuty or Slack twice, except a send the kill interrupted between the
// send and its mark (at-least-once): those are exactly the deliveries claimed more than once.

const GROUPS = 200
const TOKEN = 'haWebhookBearerToken0123456789'
const ROUTING_KEY = 'haroutingkey00000000000000000001' // 32 chars

interface PdEvent { event_action: 'trigger' | 'resolve', dedup_key: string }

t.test('three clustered Alertmanagers, three replicas, one PostgreSQL: every trigger and resolve, once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-ha-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const tokenFile = join(dir, 'token')
  writeFileSync(tokenFile, TOKEN)
  const server = await startPostgres()
  t.teardown(server.stop)
  const url = server.url(await server.createDatabase('ha'))
  const pagerduty = await startFakePagerDuty()
  const slack = await startFakeSlack()
  t.teardown(async () => { await Promise.all([pagerduty.close(), slack.close()]) })
  // Limits raised so 400 pages drain in seconds (the limit's sharing has its own test).
  const catalogPath = writeCatalog(dir, catalogDocument({
    pagerduty: { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ROUTING_KEY' }, rateLimit: { perSecond: 500, burst: 500 } },
    'slack-ha': { type: 'slack', channel: '#ha', webhookUrl: { env: 'SLACK_WEBHOOK_URL_HA' }, rateLimit: { perSecond: 500, burst: 500 } }
  }, [entry('ha-page', 'HaPage', 'P0', ['pagerduty', 'slack-ha'])]))
  const env = {
    CATALOG_PATH: catalogPath,
    DATABASE_URL: url,
    NOTIFY_TIMEOUT_MS: '2000',
    WEBHOOK_BEARER_TOKEN: TOKEN,
    PAGERDUTY_EVENTS_URL: pagerduty.url,
    PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
    SLACK_WEBHOOK_URL_HA: slack.webhookUrl('T0HA/B0HA/haslacktoken')
  }
  const { replicas, ams } = await startHaCluster(t, env, tokenFile)

  const startsAt = new Date(Date.now() - 60_000).toISOString()
  const alert = (g: number, endsAt?: string): PostableAlert => ({
    labels: { alertname: 'HaPage', severity: 'critical', service: `svc-${g}`, namespace: 'production' },
    annotations: { summary: `group ${g} is down` },
    startsAt,
    ...(endsAt !== undefined ? { endsAt } : {})
  })
  // Prometheus sends every alert to every Alertmanager of the cluster.
  const toAll = async (alerts: PostableAlert[]): Promise<void> => { await Promise.all(ams.map(async (am) => { await am.postAlerts(alerts) })) }
  const events = (): PdEvent[] => pagerduty.accepted as PdEvent[]
  const count = (action: PdEvent['event_action']): number => new Set(events().filter((e) => e.event_action === action).map((e) => e.dedup_key)).size

  for (let g = 0; g < GROUPS; g += 20) await toAll(Array.from({ length: 20 }, (_, i) => alert(g + i)))
  // Mid-stream: some triggers are out, others are still being sent.
  await waitUntil('the first triggers', 30_000, async () => count('trigger') >= 20)
  const port = replicas[1]!.port
  await replicas[1]!.kill()
  const triggersAtKill = count('trigger')
  replicas[1] = await startServiceProcess(env, { port, readyTimeoutMs: 30_000 })
  await waitUntil('every trigger', 60_000, async () => count('trigger') === GROUPS, () => `${count('trigger')} of ${GROUPS}`)

  const endsAt = new Date(Date.now() - 1_000).toISOString()
  for (let g = 0; g < GROUPS; g += 20) await toAll(Array.from({ length: 20 }, (_, i) => alert(g + i, endsAt)))
  await waitUntil('every resolve', 60_000, async () => count('resolve') === GROUPS, () => `${count('resolve')} of ${GROUPS}`)
  // Let late duplicates (if any) arrive before counting: a lapsed claim returns after its lease.
  await sleep(15_000)

  const byKey = new Map<string, string[]>()
  for (const e of events()) byKey.set(e.dedup_key, [...(byKey.get(e.dedup_key) ?? []), e.event_action])
  t.equal(byKey.size, GROUPS, 'one PagerDuty incident per group')
  const outOfOrder = [...byKey].filter(([, actions]) => actions.lastIndexOf('trigger') > actions.indexOf('resolve'))
  t.same(outOfOrder, [], 'every group: trigger, then resolve, never a trigger after its resolve')

  const db = new pg.Client({ connectionString: url })
  await db.connect()
  t.teardown(async () => { await db.end() })
  const { rows } = await db.query<{ destination: string, reclaimed: string, sent: string, total: string }>(`SELECT destination,
      count(*) FILTER (WHERE attempts > 1) AS reclaimed, count(*) FILTER (WHERE state = 'sent') AS sent, count(*) AS total
    FROM deliveries GROUP BY destination ORDER BY destination`)
  const of = (d: string): { reclaimed: number, sent: number, total: number } => {
    const r = rows.find((x) => x.destination === d)
    return { reclaimed: Number(r?.reclaimed ?? 0), sent: Number(r?.sent ?? 0), total: Number(r?.total ?? 0) }
  }
  const pd = of('pagerduty')
  const sl = of('slack-ha')
  t.same([pd.total, sl.total], [2 * GROUPS, 2 * GROUPS], 'one delivery per group, status and destination: the HA copies collapsed')
  t.same([pd.sent, sl.sent], [2 * GROUPS, 2 * GROUPS], 'all sent')
  const pdExtra = events().length - 2 * GROUPS
  const slackExtra = slack.accepted.length - 2 * GROUPS
  t.comment(`${triggersAtKill} triggers out at the kill; duplicates: PagerDuty ${pdExtra}, Slack ${slackExtra}; claimed more than once: PagerDuty ${pd.reclaimed}, Slack ${sl.reclaimed}`)
  t.ok(pdExtra >= 0 && pdExtra <= pd.reclaimed, `PagerDuty: no event twice but a send the kill interrupted (${pdExtra} extra ≤ ${pd.reclaimed} reclaimed)`)
  t.ok(slackExtra >= 0 && slackExtra <= sl.reclaimed, `Slack: no message twice but a send the kill interrupted (${slackExtra} extra ≤ ${sl.reclaimed} reclaimed)`)
  t.ok(pd.reclaimed + sl.reclaimed <= 32, 'only what the killed replica had in flight was claimed again (≤ its concurrency per destination)')
})

t.test('three replicas, one PostgreSQL: an unacknowledged P0 escalates exactly once', async (t) => {
  const RESPONSE_SECONDS = 6
  const INCIDENTS = 5
  const ESCALATION_KEY = 'haescalationkey00000000000000001' // 32 chars
  const dir = mkdtempSync(join(tmpdir(), 'ae-ha-esc-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const tokenFile = join(dir, 'token')
  writeFileSync(tokenFile, TOKEN)
  const server = await startPostgres()
  t.teardown(server.stop)
  const url = server.url(await server.createDatabase('haesc'))
  const pagerduty = await startFakePagerDuty()
  t.teardown(async () => { await pagerduty.close() })
  const doc = catalogDocument({
    pagerduty: { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ROUTING_KEY' } },
    'pagerduty-escalation': { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ESCALATION_ROUTING_KEY' } }
  }, [entry('ha-page', 'HaPage', 'P0', ['pagerduty'])])
  // No repeats: every escalation page beyond one per incident is a double fire.
  doc.priorities.P0 = { ...doc.priorities.P0, responseTime: `PT${RESPONSE_SECONDS}S`, escalateTo: ['pagerduty-escalation'] }
  const env = {
    CATALOG_PATH: writeCatalog(dir, doc),
    DATABASE_URL: url,
    WEBHOOK_BEARER_TOKEN: TOKEN,
    PAGERDUTY_EVENTS_URL: pagerduty.url,
    PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
    PAGERDUTY_ESCALATION_ROUTING_KEY: ESCALATION_KEY
  }
  const { ams } = await startHaCluster(t, env, tokenFile)

  const startsAt = new Date().toISOString()
  const alerts: PostableAlert[] = Array.from({ length: INCIDENTS }, (_, g) => ({
    labels: { alertname: 'HaPage', severity: 'critical', service: `esc-${g}`, namespace: 'production' },
    annotations: { summary: `group ${g} is down` },
    startsAt
  }))
  await Promise.all(ams.map(async (am) => { await am.postAlerts(alerts) }))
  const events = (): Array<PdEvent & { routing_key: string }> => pagerduty.accepted as Array<PdEvent & { routing_key: string }>
  const escalations = (): string[] => events().filter((e) => e.routing_key === ESCALATION_KEY).map((e) => e.dedup_key)
  await waitUntil('every escalation page', 60_000, async () => new Set(escalations()).size === INCIDENTS, () => `${new Set(escalations()).size} of ${INCIDENTS}`)
  // Three replicas keep polling the timers: a double fire would show up within a few polls.
  await sleep(5_000)
  t.equal(new Set(events().filter((e) => e.routing_key === ROUTING_KEY).map((e) => e.dedup_key)).size, INCIDENTS, 'one page per group')
  t.equal(escalations().length, INCIDENTS, 'one escalation page per incident, across the three replicas')

  const db = new pg.Client({ connectionString: url })
  await db.connect()
  t.teardown(async () => { await db.end() })
  const { rows } = await db.query<{ escalations: number, breached: boolean, next: string | null }>(
    'SELECT escalations, breached_at IS NOT NULL AS breached, next_escalation_at AS next FROM incidents ORDER BY id')
  t.same(rows, Array.from({ length: INCIDENTS }, () => ({ escalations: 1, breached: true, next: null })), 'each incident: breached, escalated once, timer cleared')
  const esc = await db.query<{ n: string }>("SELECT count(*) AS n FROM deliveries WHERE group_key LIKE 'incident:%'")
  t.equal(Number(esc.rows[0]!.n), INCIDENTS, 'one escalation delivery per incident in the outbox')
})

// Three replicas on one database, each with its own Alertmanager, the three Alertmanagers
// gossiping as one cluster (as an HA deployment runs them).
async function startHaCluster (t: Test, env: Record<string, string>, tokenFile: string): Promise<{ replicas: ServiceProcess[], ams: RunningAlertmanager[] }> {
  const replicas: ServiceProcess[] = []
  for (let i = 0; i < 3; i++) replicas.push(await startServiceProcess(env, { readyTimeoutMs: 30_000 }))
  t.teardown(async () => { for (const r of replicas) await r.stop() })
  const ams: RunningAlertmanager[] = []
  for (let i = 0; i < 3; i++) {
    const am = await startAlertmanager({
      configYaml: exampleConfigFor({ webhookUrl: `${replicas[i]!.url}/webhook`, credentialsFile: tokenFile, groupWait: '1s', groupInterval: '1s' }),
      cluster: { peers: ams.map((a) => a.clusterAddress!), peerTimeout: '1s' }
    })
    ams.push(am)
    t.teardown(am.stop)
  }
  await waitUntil('the three Alertmanagers gossiping as one cluster', 30_000, async () =>
    (await Promise.all(ams.map(async (am) => await am.metrics()))).every((m) => /^alertmanager_cluster_members 3$/m.test(m)))
  return { replicas, ams }
}
