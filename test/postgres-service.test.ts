import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t, { type Test } from 'tap'
import { REPO_ROOT, startServiceProcess, type ServiceProcess } from './helpers/alert-enricher-process.js'
import { catalogDocument, dedupKeyFor, entry, postWebhook, webhookPayload, writeCatalog } from './helpers/delivery-fixtures.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'
import { acknowledgeClick, interactionBody, signSlackRequest } from './helpers/fake-slack-api.js'
import { pagerDutyEventBody, signPagerDuty } from './helpers/pagerduty-webhook.js'
import { startPostgres } from './helpers/postgres.js'
import { sleep, waitUntil } from './helpers/prometheus.js'

// The real service (`node dist/cli.js`) on PostgreSQL: two replicas share one database; pages
// posted to either reach PagerDuty once; the database stopped and started under a stream of
// pages: 503s while it is down (readiness naming the cause), nothing acknowledged lost, both
// replicas ready again by themselves; `migrate` alone; the URL's password never shown.

const ROUTING_KEY = 'postgresroutingkey00000000000001' // 32 chars
const DB_PASSWORD = 'SECRETdbPassw0rd'

const server = await startPostgres()
t.teardown(server.stop)

t.test('two replicas on one PostgreSQL: the database stopped and started under load', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-pg-service-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const catalogPath = writeCatalog(dir, catalogDocument(
    { pagerduty: { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ROUTING_KEY' }, rateLimit: { perSecond: 100, burst: 100 } } },
    [entry('pg-page', 'PgPage', 'P0', ['pagerduty'])]
  ))
  const pagerduty = await startFakePagerDuty()
  t.teardown(pagerduty.close)
  const db = await server.createDatabase('svc')
  // Trust authentication accepts any password: this one exists only to prove it never shows.
  const databaseUrl = server.url(db).replace('postgres@', `postgres:${DB_PASSWORD}@`)
  const env = {
    CATALOG_PATH: catalogPath,
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'debug',
    NOTIFY_TIMEOUT_MS: '2000',
    PAGERDUTY_EVENTS_URL: pagerduty.url,
    PAGERDUTY_ROUTING_KEY: ROUTING_KEY
  }
  const start = async (): Promise<ServiceProcess> => await startServiceProcess(env, { maxOutputChars: 64 * 1024 * 1024 })
  const replicas: ServiceProcess[] = [await start(), await start()]
  t.teardown(async () => { for (const r of replicas) await r.stop() })

  const acknowledged = new Set<string>()
  const statuses = new Map<string, number>()
  let n = 0
  let sending = true
  // Like Alertmanager: retries a page until a 2xx; alternates between the replicas.
  async function sender (): Promise<void> {
    while (sending && n < 400) {
      const i = n++
      const payload = webhookPayload({ alertname: 'PgPage', group: `page-${i}`, alerts: [{ instance: `host-${i}` }] })
      for (let attempt = 0; attempt < 400 && sending; attempt++) {
        const res = await postWebhook(replicas[(i + attempt) % 2]!.url, payload, { timeoutMs: 10_000 })
        statuses.set(String(res.status), (statuses.get(String(res.status)) ?? 0) + 1)
        if (res.status === 200 || res.status === 202) { acknowledged.add(payload.groupKey); break }
        await sleep(50)
      }
      await sleep(20)
    }
  }
  const senders = [sender(), sender()]
  await waitUntil('pages flowing', 10_000, async () => acknowledged.size >= 20)

  await server.pause()
  // Whatever happens below, the database comes back for the next test.
  t.teardown(async () => { await server.resume().catch(() => undefined) })
  const down = await postWebhook(replicas[0]!.url, webhookPayload({ alertname: 'PgPage', group: 'during-outage', alerts: [{ instance: 'x' }] }))
  t.equal(down.status, 503, '/webhook answers 503 while the database is down (Alertmanager retries)')
  const notReady: string[] = []
  await waitUntil('both replicas not ready', 10_000, async () => {
    notReady.length = 0
    for (const r of replicas) {
      const res = await fetch(`${r.url}/-/ready`)
      if (res.status === 503) notReady.push(await res.text())
    }
    return notReady.length === 2
  })
  for (const body of notReady) t.match(body, /store|database/, '/-/ready names the cause')
  const healthy = await fetch(`${replicas[1]!.url}/-/healthy`)
  t.equal(healthy.status, 200, 'alive: losing the database is not a reason to restart')
  await sleep(1_500)
  await server.resume()
  await waitUntil('both replicas ready again by themselves', 15_000, async () => {
    const codes = await Promise.all(replicas.map(async (r) => (await fetch(`${r.url}/-/ready`)).status))
    return codes.every((c) => c === 200)
  })
  await waitUntil('more pages after the outage', 10_000, async () => acknowledged.size >= 60)
  sending = false
  await Promise.all(senders)

  const atPagerDuty = (): Set<string> => new Set((pagerduty.accepted as Array<{ dedup_key: string }>).map((e) => e.dedup_key))
  const missing = (): string[] => [...acknowledged].filter((g) => !atPagerDuty().has(dedupKeyFor(g)))
  await waitUntil('every acknowledged page at PagerDuty', 20_000, async () => missing().length === 0,
    () => `${missing().length} missing\n${replicas.map((r) => r.output()).join('\n---\n')}`).catch((err: unknown) => { t.comment(String(err)) })
  t.same(missing(), [], `no acknowledged page lost (${acknowledged.size} acknowledged; statuses ${JSON.stringify(Object.fromEntries(statuses))})`)
  t.ok((statuses.get('503') ?? 0) > 0, 'the senders saw 503s during the outage')

  // Both replicas sent: the work was shared, not all claimed by one.
  const output = replicas.map((r) => r.output())
  for (const [i, out] of output.entries()) t.match(out, /"msg":"notification sent"/, `replica ${i + 1} sent some`)
  // The password never reaches logs, readiness or metrics.
  const metrics = await Promise.all(replicas.map(async (r) => await (await fetch(`${r.url}/metrics`)).text()))
  const seen = [...output, ...notReady, ...metrics].join('\n')
  t.notOk(seen.includes(DB_PASSWORD), 'the DATABASE_URL password appears in no log, readiness body or metric')
  t.match(output.join('\n'), /store operation failed/, 'the outage was logged')
})

// A temporary catalog paging PagerDuty for PgPage (P0), and the fake PagerDuty it pages.
async function pagingCatalog (t: Test, prefix: string): Promise<{ catalogPath: string, pagerduty: Awaited<ReturnType<typeof startFakePagerDuty>> }> {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const catalogPath = writeCatalog(dir, catalogDocument(
    { pagerduty: { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ROUTING_KEY' } } },
    [entry('pg-page', 'PgPage', 'P0', ['pagerduty'])]
  ))
  const pagerduty = await startFakePagerDuty()
  t.teardown(pagerduty.close)
  return { catalogPath, pagerduty }
}

t.test('started while the database is down: probes answer at once, ready by itself once it is up', async (t) => {
  const { catalogPath, pagerduty } = await pagingCatalog(t, 'ae-pg-down-')
  // Created while the server runs; the service migrates it once it gets through.
  const db = await server.createDatabase('down')
  const databaseUrl = server.url(db).replace('postgres@', `postgres:${DB_PASSWORD}@`)
  await server.pause()
  t.teardown(async () => { await server.resume().catch(() => undefined) })

  const service = await startServiceProcess({
    CATALOG_PATH: catalogPath,
    DATABASE_URL: databaseUrl,
    PAGERDUTY_EVENTS_URL: pagerduty.url,
    PAGERDUTY_ROUTING_KEY: ROUTING_KEY
  }, { waitForReady: false })
  t.teardown(service.stop)

  const ready = await fetch(`${service.url}/-/ready`)
  const readyBody = await ready.text()
  t.equal(ready.status, 503, '/-/ready answers 503 while the database is down')
  t.match(readyBody, /database unavailable: .*(ECONNREFUSED|not connected yet)/, '/-/ready names the database as the cause')
  t.equal((await fetch(`${service.url}/-/healthy`)).status, 200, 'alive: no restart loop for a database outage')
  const payload = webhookPayload({ alertname: 'PgPage', group: 'after-outage', alerts: [{ instance: 'db-down' }] })
  t.equal((await postWebhook(service.url, payload)).status, 503, '/webhook answers 503 (Alertmanager retries)')
  // Failed attempts are retried, each logged and counted.
  await waitUntil('two failed attempts logged', 10_000, async () => (service.output().match(/cannot start on the database; retrying/g) ?? []).length >= 2, service.output)
  const metrics = await (await fetch(`${service.url}/metrics`)).text()
  t.match(metrics, /^alert_enricher_store_errors_total\{operation="connect"\} [1-9]/m, 'store_errors_total{operation="connect"} moved')
  t.notOk([service.output(), readyBody, metrics].join('\n').includes(DB_PASSWORD), 'no password in logs, readiness or metrics')

  await server.resume()
  await waitUntil('ready by itself once the database is up', 40_000, async () => (await fetch(`${service.url}/-/ready`)).status === 200, service.output)
  const accepted = await postWebhook(service.url, payload)
  t.equal(accepted.status, 200, 'the webhook Alertmanager retries is accepted')
  await waitUntil('the page at PagerDuty', 10_000, async () =>
    (pagerduty.accepted as Array<{ dedup_key: string }>).some((e) => e.dedup_key === dedupKeyFor(payload.groupKey)), service.output)
  t.pass('the page reached PagerDuty')
})

t.test('a NUL character in text we would store: 4xx (or an ignored PagerDuty event), never a 5xx, as on SQLite', async (t) => {
  // PostgreSQL's text type cannot hold U+0000: before the HTTP edge refused it, the insert
  // failed and /webhook answered 503, so Alertmanager retried the payload forever.
  const { catalogPath, pagerduty } = await pagingCatalog(t, 'ae-pg-nul-')
  const ADMIN = 'nul-admin-token'
  const PD_SECRET = 'nul-pagerduty-webhook-secret'
  const SLACK_SECRET = 'nul-slack-signing-secret'
  const service = await startServiceProcess({
    CATALOG_PATH: catalogPath,
    DATABASE_URL: server.url(await server.createDatabase('nul')),
    PAGERDUTY_EVENTS_URL: pagerduty.url,
    PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
    ADMIN_BEARER_TOKEN: ADMIN,
    PAGERDUTY_WEBHOOK_SECRET: PD_SECRET,
    SLACK_SIGNING_SECRET: SLACK_SECRET
  })
  t.teardown(service.stop)
  const admin = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }

  const clean = webhookPayload({ alertname: 'PgPage', group: 'nul' })
  t.equal((await postWebhook(service.url, clean)).status, 200, 'the clean payload is accepted')
  const [alert] = clean.alerts
  const cases: Array<[string, unknown, RegExp]> = [
    ['groupKey', { ...clean, groupKey: '{}:{alertname="a\u0000b"}' }, /^groupKey: contains a NUL character/],
    ['receiver', { ...clean, receiver: 'enri\u0000cher' }, /^receiver: contains a NUL character/],
    ['a label value', { ...clean, alerts: [{ ...alert, labels: { ...alert?.labels, alertname: 'Pg\u0000Page' } }] }, /^alerts\[0\]\.labels\.alertname: contains a NUL character/],
    ['a label name', { ...clean, alerts: [{ ...alert, labels: { ...alert?.labels, 'a\u0000b': 'x' } }] }, /^alerts\[0\]\.labels\["a\\u0000b"\]: the name contains a NUL character/],
    ['an annotation', { ...clean, alerts: [{ ...alert, annotations: { summary: 'dis\u0000k full' } }] }, /^alerts\[0\]\.annotations\.summary: contains a NUL character/]
  ]
  for (const [what, payload, message] of cases) {
    const res = await postWebhook(service.url, payload)
    t.equal(res.status, 400, `${what} with a NUL: 400 (groupKey and receiver were 503)`)
    t.match(res.json, { error: 'invalid_payload', message }, `${what}: the message names the field`)
  }
  const metrics = await (await fetch(`${service.url}/metrics`)).text()
  t.match(metrics, new RegExp(`^alert_enricher_webhooks_received_total\\{outcome="bad_request"\\} ${cases.length}$`, 'm'), 'counted as bad_request')
  t.match(metrics, /^alert_enricher_webhooks_received_total\{outcome="unavailable"\} 0$/m, 'none as unavailable')

  const listed = await (await fetch(`${service.url}/api/v1/incidents`, { headers: admin })).json() as { incidents: Array<{ id: number }> }
  const id = listed.incidents[0]?.id ?? 0
  const ack = await fetch(`${service.url}/api/v1/incidents/${id}/ack`, { method: 'POST', headers: admin, body: JSON.stringify({ by: 'a\u0000b' }) })
  t.equal(ack.status, 400, 'an acknowledgement by a name with a NUL: 400')
  t.match(await ack.json(), { error: 'bad_request', message: /^by: contains a NUL character/ })

  const click = interactionBody(acknowledgeClick({ incidentId: String(id), userName: 'ana\u0000' }))
  const slack = await fetch(`${service.url}/integrations/slack/interactions`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...signSlackRequest(SLACK_SECRET, click, Math.floor(Date.now() / 1000)) },
    body: click
  })
  t.equal(slack.status, 400, 'a Slack click by a user whose name holds a NUL: 400, not "could not record it"')
  t.match(await slack.json(), { error: 'invalid_payload', message: /^payload\.user\.name contains a NUL character/ })

  // PagerDuty disables a subscription after three 4xx in a row: such an event is ignored (200).
  for (const [what, body] of [
    ['agent', pagerDutyEventBody('incident.acknowledged', { incidentKey: dedupKeyFor(clean.groupKey), agent: { id: 'PNUL', summary: 'ana\u0000' } })],
    ['incident_key', pagerDutyEventBody('incident.acknowledged', { id: 'NULKEY', incidentKey: 'abc\u0000' })]
  ] as const) {
    const res = await fetch(`${service.url}/integrations/pagerduty`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-pagerduty-signature': signPagerDuty(body, PD_SECRET) }, body })
    t.equal(res.status, 200, `PagerDuty event with a NUL in its ${what}: 200`)
    t.match(await res.json(), { outcome: 'unrecognized' })
  }

  t.equal((await fetch(`${service.url}/-/ready`)).status, 200, 'still ready: nothing failed in the store')
  const fine = await fetch(`${service.url}/api/v1/incidents/${id}/ack`, { method: 'POST', headers: admin, body: JSON.stringify({ by: 'ana' }) })
  t.match(await fine.json(), { state: 'acknowledged', acknowledgedBy: 'ana' }, 'a clean acknowledgement still goes through')
})

t.test('a groupKey of ~9,000 incompressible characters: 200, paged and resolved at PagerDuty, still ready', async (t) => {
  // Longer than a PostgreSQL B-tree entry may be: while indexes held the raw key, every try of
  // this webhook failed (503) and Alertmanager gave up on the group.
  const { catalogPath, pagerduty } = await pagingCatalog(t, 'ae-pg-long-')
  const service = await startServiceProcess({
    CATALOG_PATH: catalogPath,
    DATABASE_URL: server.url(await server.createDatabase('long')),
    PAGERDUTY_EVENTS_URL: pagerduty.url,
    PAGERDUTY_ROUTING_KEY: ROUTING_KEY
  })
  t.teardown(service.stop)
  const group = randomBytes(6_750).toString('base64')
  const firing = webhookPayload({ alertname: 'PgPage', group })
  t.ok(firing.groupKey.length > 9_000, `the groupKey has ${firing.groupKey.length} characters`)
  const events = (action: string): unknown[] => (pagerduty.accepted as Array<{ dedup_key: string, event_action: string }>)
    .filter((e) => e.dedup_key === dedupKeyFor(firing.groupKey) && e.event_action === action)

  t.equal((await postWebhook(service.url, firing)).status, 200, 'the firing webhook is accepted')
  await waitUntil('the trigger at PagerDuty', 10_000, async () => events('trigger').length === 1, service.output)
  const resolved = webhookPayload({ alertname: 'PgPage', group, status: 'resolved' })
  t.equal(resolved.groupKey, firing.groupKey)
  t.equal((await postWebhook(service.url, resolved)).status, 200, 'its resolve is accepted')
  await waitUntil('the resolve at PagerDuty', 10_000, async () => events('resolve').length === 1, service.output)
  t.equal((await fetch(`${service.url}/-/ready`)).status, 200, 'still ready: nothing failed in the store')
  const metrics = await (await fetch(`${service.url}/metrics`)).text()
  t.match(metrics, /^alert_enricher_webhooks_received_total\{outcome="unavailable"\} 0$/m, 'no webhook answered 503')
})

t.test('a database migrated by a newer build: serve refuses to run, with the reason', async (t) => {
  const url = server.url(await server.createDatabase('newer')).replace('postgres@', `postgres:${DB_PASSWORD}@`)
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  await db.query('CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())')
  await db.query("INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')")
  await db.end()
  const dir = mkdtempSync(join(tmpdir(), 'ae-pg-newer-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const r = spawnSync(process.execPath, ['dist/cli.js', 'serve'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: url, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir },
    encoding: 'utf8',
    timeout: 30_000
  })
  t.equal(r.status, 1, 'exits 1 (not retried: waiting cannot fix it)')
  t.match(r.stderr, /schema is at version 9999.*newer alert-enricher.*refusing to start/)
  t.notOk((r.stdout + r.stderr).includes(DB_PASSWORD))
})

t.test('alert-enricher migrate applies the migrations alone; without DATABASE_URL it says so', async (t) => {
  const url = server.url(await server.createDatabase('cli')).replace('postgres@', `postgres:${DB_PASSWORD}@`)
  const cli = (env: Record<string, string>): { status: number | null, out: string } => {
    const r = spawnSync(process.execPath, ['dist/cli.js', 'migrate'], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30_000 })
    return { status: r.status, out: r.stdout + r.stderr }
  }
  const first = cli({ DATABASE_URL: url })
  t.equal(first.status, 0, first.out)
  t.match(first.out, /applied 1.*schema at version \d+/)
  const again = cli({ DATABASE_URL: url })
  t.equal(again.status, 0)
  t.match(again.out, /already at version/)
  t.notOk(first.out.includes(DB_PASSWORD) || again.out.includes(DB_PASSWORD), 'no password in its output')
  const missing = cli({})
  t.equal(missing.status, 2)
  t.match(missing.out, /DATABASE_URL/)
  const refused = cli({ DATABASE_URL: `postgres://postgres:${DB_PASSWORD}@127.0.0.1:1/nowhere` })
  t.equal(refused.status, 1)
  t.notOk(refused.out.includes(DB_PASSWORD), 'a failed connection does not echo the password')
})
