import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import t, { type Test } from 'tap'
import { LOG_REDACT_PATHS } from '../src/app.js'
import { buildTestApp } from './helpers/app.js'
import { startServiceProcess } from './helpers/alert-enricher-process.js'
import { catalogDocument, entry, postWebhook, webhookPayload, writeCatalog } from './helpers/delivery-fixtures.js'
import type { FakeMode, FakeServer } from './helpers/fake-http.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'
import { startFakeSlack } from './helpers/fake-slack.js'
import { createRecordingAcknowledgements, pagerDutyEventBody, pagerDutyFixtureText, signPagerDuty } from './helpers/pagerduty-webhook.js'
import { acknowledgeClick, interactionBody, signSlackRequest, startFakeSlackApi } from './helpers/fake-slack-api.js'
import { startPostgres } from './helpers/postgres.js'
import { freePort, waitUntil } from './helpers/prometheus.js'
import { spawnSync } from 'node:child_process'
import { REPO_ROOT } from './helpers/alert-enricher-process.js'

// Secrets never leak: the real service (a child process logging at trace level) is driven
// through every delivery path — sent, retried (500, 429 + Retry-After, timeout, connection
// refused), dead (404, 410, 400 and Slack ok:false, some of them echoing the secret back),
// skipped — and every request rejection, PagerDuty webhooks (signed with either of two
// rotating secrets, badly signed) included. Then no secret may appear in the log, /metrics,
// the deliveries API (every state), the catalog API, or any error body; while the fakes
// prove the secrets were used for the deliveries themselves.

const SLACK_TOKEN = 'SECRETslacktoken123'
const DEPLOY_TOKEN = 'SECRETdeploytoken456'
const ROUTING_KEY = 'R0UT1NGKEYsecretsecretsecret0001' // 32 chars, as PagerDuty requires
const ESCALATION_KEY = 'ESCALAT10NsecretsecretsecretKEY2' // the escalation service's, 32 chars
const BEARER = 'BEARERsecretWEBHOOKtoken789'
// Two, as during a rotation: PAGERDUTY_WEBHOOK_SECRET="old,new".
const PD_OLD = 'PDWEBHOOKsecretOLD0123456789'
const PD_NEW = 'PDWEBHOOKsecretNEW9876543210'
const BOT_TOKEN = 'xoxb-SECRETbotTOKEN-0123456789'
const SIGNING_SECRET = 'SECRETslackSIGNINGsecret0123456789'
const BOT_CHANNEL = 'C0SECRETS1'

interface DeliveryView { id: number, destination: string, groupKey: string, state: string, attempts: number, lastReason: string | null, lastError: string | null }

t.test('no secret reaches logs, metrics, API output or error bodies, while deliveries use them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-secrets-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const slack = await startFakeSlack()
  t.teardown(slack.close)
  const pagerduty = await startFakePagerDuty()
  t.teardown(pagerduty.close)
  const slackApi = await startFakeSlackApi({ token: BOT_TOKEN, channels: [BOT_CHANNEL] })
  t.teardown(slackApi.close)
  const slackUrl = slack.webhookUrl(SLACK_TOKEN)
  // Nothing listens there: connection refused, retried forever (until max age).
  const deployUrl = `http://127.0.0.1:${await freePort()}/services/T0FAKE000/B0FAKE000/${DEPLOY_TOKEN}`

  const catalogPath = writeCatalog(dir, catalogDocument({
    pagerduty: { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ROUTING_KEY' } },
    'slack-incident-response': { type: 'slack', channel: '#incident-response', webhookUrl: { env: 'SLACK_WEBHOOK_URL_INCIDENT_RESPONSE' } },
    'slack-deployments': { type: 'slack', channel: '#deployments', webhookUrl: { env: 'SLACK_WEBHOOK_URL_DEPLOYMENTS' } },
    'slack-unset': { type: 'slack', channel: '#nowhere', webhookUrl: { env: 'SLACK_WEBHOOK_URL_UNSET' } },
    'pagerduty-escalation': { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ESCALATION_ROUTING_KEY' } },
    'slack-bot': { type: 'slack', channel: '#bot', channelId: BOT_CHANNEL, botToken: { env: 'SLACK_BOT_TOKEN' } }
  }, [
    // Paged with a startsAt a week ago (below): breached at once, so it escalates on the second routing key.
    { ...entry('secret-escalate', 'SecretEscalate', 'P0', ['slack-incident-response']), escalateTo: ['pagerduty-escalation'] },
    entry('secret-bot', 'SecretBot', 'P1', ['slack-bot']),
    entry('secret-page', 'SecretPage', 'P0', ['pagerduty', 'slack-incident-response']),
    entry('secret-deploy', 'SecretDeploy', 'P2', ['slack-deployments']),
    entry('secret-skip', 'SecretSkip', 'P3', ['slack-unset'])
  ]))
  const service = await startServiceProcess({
    CATALOG_PATH: catalogPath,
    LOG_LEVEL: 'trace',
    NOTIFY_TIMEOUT_MS: '1000',
    WEBHOOK_BODY_LIMIT_BYTES: '65536',
    WEBHOOK_BEARER_TOKEN: BEARER,
    PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
    PAGERDUTY_ESCALATION_ROUTING_KEY: ESCALATION_KEY,
    PAGERDUTY_WEBHOOK_SECRET: `${PD_OLD},${PD_NEW}`,
    PAGERDUTY_EVENTS_URL: pagerduty.url,
    SLACK_WEBHOOK_URL_INCIDENT_RESPONSE: slackUrl,
    SLACK_WEBHOOK_URL_DEPLOYMENTS: deployUrl,
    SLACK_API_URL: slackApi.apiUrl,
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_UPDATE_DEBOUNCE_MS: '0'
  }, { maxOutputChars: 64 * 1024 * 1024 })
  t.teardown(service.stop)
  const url = service.url

  // Everything the service says that is not the log: scanned at the end.
  const answers: Array<{ what: string, text: string }> = []
  const request = async (what: string, path: string, init: RequestInit = {}): Promise<{ status: number, text: string }> => {
    const res = await fetch(`${url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) })
    const text = await res.text()
    answers.push({ what: `${what} (${res.status})`, text: `${JSON.stringify([...res.headers])}\n${text}` })
    return { status: res.status, text }
  }
  const deliveries = async (state?: string): Promise<DeliveryView[]> => {
    const { text } = await request(`deliveries ${state ?? 'all'}`, `/api/v1/deliveries?limit=1000${state !== undefined ? `&state=${state}` : ''}`)
    return (JSON.parse(text) as { deliveries: DeliveryView[] }).deliveries
  }
  const page = async (t: Test, alertname: string, group: string, startsAt?: string): Promise<string> => {
    const payload = webhookPayload({ alertname, group, ...(startsAt !== undefined ? { startsAt } : {}) })
    const res = await postWebhook(url, payload, { token: BEARER })
    t.equal(res.status, 200, `webhook ${group} accepted`)
    answers.push({ what: `webhook ${group}`, text: JSON.stringify(res.json) })
    return payload.groupKey
  }
  const settled = async (groupKey: string, destination: string, states: string[]): Promise<DeliveryView> => {
    let found: DeliveryView | undefined
    await waitUntil(`${destination} delivery of ${groupKey} in ${states.join('|')}`, 20_000, async () => {
      found = (await deliveries()).find((d) => d.groupKey === groupKey && d.destination === destination)
      return found !== undefined && states.includes(found.state)
    }, () => JSON.stringify(found))
    return found as DeliveryView
  }
  // Sets each next mode as soon as the previous request arrived (before the retry can).
  const walk = async (fake: FakeServer, modes: FakeMode[]): Promise<void> => {
    const start = fake.received.length
    for (const [i, mode] of modes.entries()) {
      await fake.waitForRequests(start + i + 1, 20_000)
      fake.setMode(mode)
    }
  }

  t.test('retried (500, then 429 with Retry-After), then sent', async (t) => {
    slack.setMode({ kind: 'status', code: 500 })
    pagerduty.setMode({ kind: 'status', code: 500 })
    const walks = [
      walk(slack, [{ kind: 'rateLimit', retryAfterSeconds: 1 }, { kind: 'ok' }]),
      walk(pagerduty, [{ kind: 'rateLimit', retryAfterSeconds: 1 }, { kind: 'ok' }])
    ]
    const groupKey = await page(t, 'SecretPage', 'retried')
    await Promise.all(walks)
    await settled(groupKey, 'pagerduty', ['sent'])
    await settled(groupKey, 'slack-incident-response', ['sent'])
    // (A loaded machine may add a timeout in between; the order is what matters.)
    const answered = (fake: FakeServer): string => fake.received.map((r) => r.status).filter((s) => s !== null).join(' ')
    t.match(answered(pagerduty), /^500 (.* )?429 (.* )?202$/, 'PagerDuty answered 500, then 429, then 202')
    t.match(answered(slack), /^500 (.* )?429 (.* )?200$/, 'Slack answered 500, then 429, then 200')
  })

  t.test('timed out, then sent', async (t) => {
    slack.setMode({ kind: 'hang' })
    pagerduty.setMode({ kind: 'hang' })
    const walks = [walk(slack, [{ kind: 'ok' }]), walk(pagerduty, [{ kind: 'ok' }])]
    const groupKey = await page(t, 'SecretPage', 'timed-out')
    await Promise.all(walks)
    for (const destination of ['pagerduty', 'slack-incident-response']) {
      const d = await settled(groupKey, destination, ['sent'])
      t.equal(d.lastReason, 'timeout', `${destination} timed out first`)
    }
  })

  t.test('dead-lettered, also when the destination echoes the secret back', async (t) => {
    const slackModes: FakeMode[] = [
      { kind: 'status', code: 404 },
      { kind: 'status', code: 410 },
      { kind: 'status', code: 400, body: `invalid_payload: cannot post to ${slackUrl}` },
      { kind: 'status', code: 200, body: JSON.stringify({ ok: false, error: `invalid_blocks for /services/T0FAKE000/B0FAKE000/${SLACK_TOKEN}` }) },
      { kind: 'status', code: 403, body: `action_prohibited (${SLACK_TOKEN})` }
    ]
    const pagerDutyModes: FakeMode[] = [
      { kind: 'status', code: 404 },
      { kind: 'status', code: 410 },
      { kind: 'status', code: 400, body: JSON.stringify({ status: 'invalid event', message: 'Event object is invalid', errors: [`routing_key ${ROUTING_KEY} is not an integration key`] }) },
      { kind: 'status', code: 400, body: `{"status":"invalid event","message":"bad key \\"${ROUTING_KEY}\\"` },
      { kind: 'status', code: 403, body: `forbidden for routing key ${encodeURIComponent(ROUTING_KEY)}` }
    ]
    for (const [i, slackMode] of slackModes.entries()) {
      slack.setMode(slackMode)
      pagerduty.setMode(pagerDutyModes[i] as FakeMode)
      const groupKey = await page(t, 'SecretPage', `dead-${i}`)
      const s = await settled(groupKey, 'slack-incident-response', ['dead'])
      const p = await settled(groupKey, 'pagerduty', ['dead'])
      t.match(s.lastReason, /^(client_error|rejected)$/, `slack dead: ${s.lastError ?? ''}`)
      t.equal(p.lastReason, 'client_error', `pagerduty dead: ${p.lastError ?? ''}`)
    }
    slack.setMode({ kind: 'ok' })
    pagerduty.setMode({ kind: 'ok' })
  })

  t.test('bot token: retried (429, ratelimited), sent, and dead letters echoing the token', async (t) => {
    slackApi.setMode({ kind: 'rateLimit', retryAfterSeconds: 1 })
    const walked = walk(slackApi, [{ kind: 'status', code: 200, body: JSON.stringify({ ok: false, error: 'ratelimited' }), headers: { 'retry-after': '1' } }, { kind: 'ok' }])
    const sent = await page(t, 'SecretBot', 'bot-retried')
    await walked
    t.equal((await settled(sent, 'slack-bot', ['sent'])).state, 'sent')
    const echoes = [`invalid_auth ${BOT_TOKEN}`, `token_revoked for Bearer ${BOT_TOKEN}`, 'channel_not_found']
    for (const [i, error] of echoes.entries()) {
      slackApi.failWith(error)
      const groupKey = await page(t, 'SecretBot', `bot-dead-${i}`)
      t.equal((await settled(groupKey, 'slack-bot', ['dead'])).lastReason, 'rejected', `dead: ${error.split(' ')[0] ?? ''}`)
    }
    slackApi.setMode({ kind: 'ok' })
  })

  t.test('bot token: an incident message edited in place, and an edit dead-lettered echoing the token', async (t) => {
    const groupKey = await page(t, 'SecretBot', 'bot-edited')
    await settled(groupKey, 'slack-bot', ['sent'])
    slackApi.failWith(`invalid_auth ${BOT_TOKEN}`)
    const more = webhookPayload({ alertname: 'SecretBot', group: 'bot-edited', alerts: [{ instance: 'host-0' }, { instance: 'host-1' }] })
    const res = await postWebhook(url, more, { token: BEARER })
    t.equal(res.status, 200)
    answers.push({ what: 'webhook bot-edited (2)', text: JSON.stringify(res.json) })
    await waitUntil('the update dead-lettered', 20_000, async () =>
      (await deliveries('dead')).some((d) => d.groupKey === groupKey && d.destination === 'slack-bot' && /chat\.update/.test(d.lastError ?? '')))
    slackApi.setMode({ kind: 'ok' })
  })

  t.test('Slack interactions: signed, unsigned, replayed, wrong secret', async (t) => {
    const body = interactionBody(acknowledgeClick({ incidentId: '1' }))
    const at = Math.floor(Date.now() / 1000)
    const form = { 'content-type': 'application/x-www-form-urlencoded' }
    const cases: Array<[string, Record<string, string>, number]> = [
      ['signed click', signSlackRequest(SIGNING_SECRET, body, at), 200],
      ['unsigned click', {}, 401],
      ['replayed click', signSlackRequest(SIGNING_SECRET, body, at - 600), 401],
      ['click signed with another secret', signSlackRequest(`${SIGNING_SECRET}x`, body, at), 401]
    ]
    for (const [what, headers, status] of cases) {
      t.equal((await request(what, '/integrations/slack/interactions', { method: 'POST', headers: { ...form, ...headers }, body })).status, status, what)
    }
  })

  t.test('connection refused (retrying) and not configured (skipped)', async (t) => {
    const deploy = await page(t, 'SecretDeploy', 'refused')
    const d = await waitUntil('a refused attempt', 20_000, async () =>
      (await deliveries()).some((x) => x.groupKey === deploy && x.lastReason === 'network'))
      .then(async () => (await deliveries()).find((x) => x.groupKey === deploy))
    t.equal(d?.state !== 'sent' && d?.state !== 'dead', true, 'still retrying')
    t.match(d?.lastError ?? '', /ECONNREFUSED/)
    const skip = await page(t, 'SecretSkip', 'skipped')
    t.equal((await settled(skip, 'slack-unset', ['skipped'])).lastReason, 'not_configured')
  })

  t.test('rejected requests', async (t) => {
    const body = JSON.stringify(webhookPayload({ alertname: 'SecretPage', group: 'rejected' }))
    const json = { 'content-type': 'application/json' }
    const cases: Array<[string, string, RequestInit, number]> = [
      ['no token', '/webhook', { method: 'POST', headers: json, body }, 401],
      ['wrong token', '/webhook', { method: 'POST', headers: { ...json, authorization: 'Bearer nope' }, body }, 401],
      ['near-miss token', '/webhook', { method: 'POST', headers: { ...json, authorization: `Bearer ${BEARER}x` }, body }, 401],
      ['token as basic password', '/webhook', { method: 'POST', headers: { ...json, authorization: `Basic ${Buffer.from(`am:${BEARER}`).toString('base64')}` }, body }, 401],
      ['token without scheme', '/webhook', { method: 'POST', headers: { ...json, authorization: BEARER }, body }, 401],
      ['bad JSON', '/webhook', { method: 'POST', headers: { ...json, authorization: `Bearer ${BEARER}` }, body: '{"version": "4", "alerts": [' }, 400],
      ['wrong shape', '/webhook', { method: 'POST', headers: { ...json, authorization: `Bearer ${BEARER}` }, body: '{"hello":"world"}' }, 400],
      ['not JSON', '/webhook', { method: 'POST', headers: { 'content-type': 'text/plain', authorization: `Bearer ${BEARER}` }, body }, 415],
      ['too large', '/webhook', { method: 'POST', headers: { ...json, authorization: `Bearer ${BEARER}` }, body: JSON.stringify({ pad: 'x'.repeat(70_000) }) }, 413],
      ['unknown route', '/nope', {}, 404],
      ['bad deliveries query', '/api/v1/deliveries?state=bogus', {}, 400],
      ['retry unknown delivery', '/api/v1/deliveries/999999/retry', { method: 'POST' }, 404],
      ['bad preview', '/api/v1/preview', { method: 'POST', headers: json, body: '{}' }, 400]
    ]
    for (const [what, path, init, status] of cases) {
      t.equal((await request(what, path, init)).status, status, what)
    }
    const [sent] = await deliveries('sent')
    t.equal((await request('retry a sent delivery', `/api/v1/deliveries/${sent?.id ?? 0}/retry`, { method: 'POST' })).status, 409)
    const [dead] = await deliveries('dead')
    t.equal((await request('retry a dead delivery', `/api/v1/deliveries/${dead?.id ?? 0}/retry`, { method: 'POST' })).status, 200)
    t.equal((await request('preview', '/api/v1/preview', { method: 'POST', headers: json, body })).status, 200)
    t.equal((await request('reload', '/-/reload', { method: 'POST' })).status, 200)
  })

  t.test('escalated on the escalation routing key, then acknowledged over the API (sent on to PagerDuty)', async (t) => {
    const groupKey = await page(t, 'SecretEscalate', 'escalated', new Date(Date.now() - 7 * 24 * 3600_000).toISOString())
    const escalation = await waitUntil('the escalation sent', 20_000, async () =>
      (await deliveries('sent')).some((d) => d.destination === 'pagerduty-escalation'))
      .then(async () => (await deliveries('sent')).find((d) => d.destination === 'pagerduty-escalation'))
    t.match(escalation?.groupKey, /^incident:\d+$/)
    const { text } = await request('incidents', '/api/v1/incidents?priority=P0')
    const incident = (JSON.parse(text) as { incidents: Array<{ id: number, groupKey: string }> }).incidents.find((i) => i.groupKey === groupKey)
    t.equal((await request('ack', `/api/v1/incidents/${incident?.id ?? 0}/ack`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"by":"ana"}' })).status, 200)
    await request('incident', `/api/v1/incidents/${incident?.id ?? 0}`)
    await waitUntil('the acknowledgement sent to PagerDuty', 20_000, async () =>
      pagerduty.accepted.some((e) => (e as { event_action?: string }).event_action === 'acknowledge'))
    t.pass('acknowledged in PagerDuty')
  })

  t.test('PagerDuty webhooks: signed, badly signed, the secret itself sent as a signature, not JSON', async (t) => {
    const body = pagerDutyFixtureText('incident.acknowledged')
    const post = async (what: string, payload: string, signature?: string) => (await request(`pagerduty webhook: ${what}`, '/integrations/pagerduty', {
      method: 'POST', body: payload, headers: { 'content-type': 'application/json', ...(signature !== undefined ? { 'x-pagerduty-signature': signature } : {}) }
    })).status
    t.not(await post('signed with the new secret', body, signPagerDuty(body, PD_NEW)), 401, 'passes the signature check')
    t.not(await post('signed with the old secret', body, signPagerDuty(body, PD_OLD)), 401, 'passes with the old secret too')
    t.equal(await post('unsigned', body), 401)
    t.equal(await post('wrong secret', body, signPagerDuty(body, `${PD_NEW}x`)), 401)
    t.equal(await post('the secret as the signature', body, `v1=${PD_NEW},v1=${PD_OLD}`), 401)
    t.equal(await post('not JSON', 'nope', signPagerDuty('nope', PD_NEW)), 400)
    await request('openapi', '/openapi.json')
  })

  t.test('the secrets were used for the deliveries', async (t) => {
    t.ok(slack.accepted.length > 0 && slack.received.every((r) => r.path === `/services/T0FAKE000/B0FAKE000/${SLACK_TOKEN}`), 'every Slack post went to the secret webhook URL')
    t.ok(slackApi.accepted.length > 0 && slackApi.received.every((r) => r.headers.authorization === `Bearer ${BOT_TOKEN}`), 'every Web API call carried the bot token')
    const keyOf = (r: { body: string }): string | undefined => (JSON.parse(r.body) as { routing_key?: string }).routing_key
    t.ok(pagerduty.accepted.length > 0 && pagerduty.received.every((r) => keyOf(r) === ROUTING_KEY || keyOf(r) === ESCALATION_KEY), 'every PagerDuty event carried one of the routing keys')
    t.ok(pagerduty.received.some((r) => keyOf(r) === ESCALATION_KEY), 'the escalation key was used')
  })

  t.test('and none of them leaked', async (t) => {
    for (const state of ['pending', 'sending', 'sent', 'dead', 'skipped', undefined]) await deliveries(state)
    await request('metrics', '/metrics')
    await request('catalog', '/api/v1/catalog')
    await request('incidents', '/api/v1/incidents')
    await service.stop() // SIGTERM: the shutdown log lines are scanned too
    const log = service.output()
    t.match(log, /notification will be retried/, 'the log holds the retries')
    t.match(log, /notification dead-lettered/, 'and the dead letters')
    const all = [...answers, { what: 'log (trace, stdout+stderr)', text: log }]
    const needles: Array<[string, string]> = [
      ['routing key', ROUTING_KEY],
      ['escalation routing key', ESCALATION_KEY],
      ['Slack URL token', SLACK_TOKEN],
      ['refused Slack URL token', DEPLOY_TOKEN],
      ['bearer token', BEARER],
      ['Slack bot token', BOT_TOKEN],
      ['Slack signing secret', SIGNING_SECRET],
      ['Slack URL', slackUrl],
      ['refused Slack URL', deployUrl],
      ['Slack URL path', new URL(slackUrl).pathname],
      ['refused Slack URL path', new URL(deployUrl).pathname],
      ['URL-encoded Slack URL', encodeURIComponent(slackUrl)],
      ['bearer token as basic credentials', Buffer.from(`am:${BEARER}`).toString('base64')],
      ['PagerDuty webhook secret (old)', PD_OLD],
      ['PagerDuty webhook secret (new)', PD_NEW]
    ]
    for (const [name, needle] of needles) {
      const leaks = all.filter((a) => a.text.includes(needle)).map((a) => `${a.what}: …${excerpt(a.text, needle)}…`)
      t.same(leaks, [], `the ${name} appears nowhere (${all.length} answers and the log scanned)`)
    }
  })
})

// DATABASE_URL may carry the database password: driver errors quote the connection, so every
// message leaving the PostgreSQL engine is redacted. Driven through a running service that loses
// its database, a start against an unreachable one, `migrate`, and a malformed URL.
t.test('the DATABASE_URL password reaches no log, error, metric or API output', async (t) => {
  const DB_PASSWORD = 'SECRETdbPASSWORD%2Fenc0ded'
  const DECODED = 'SECRETdbPASSWORD/enc0ded'
  const server = await startPostgres()
  t.teardown(server.stop)
  const pagerduty = await startFakePagerDuty()
  t.teardown(pagerduty.close)
  const dir = mkdtempSync(join(tmpdir(), 'ae-secrets-pg-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const catalogPath = writeCatalog(dir, catalogDocument(
    { pagerduty: { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ROUTING_KEY' } } },
    [entry('secret-page', 'SecretPage', 'P0', ['pagerduty'])]))
  // Trust authentication takes any password: it is there only to be looked for.
  const url = server.url(await server.createDatabase('secrets')).replace('postgres@', `postgres:${DB_PASSWORD}@`)
  const env = { CATALOG_PATH: catalogPath, LOG_LEVEL: 'trace', DATABASE_URL: url, PAGERDUTY_ROUTING_KEY: ROUTING_KEY, PAGERDUTY_EVENTS_URL: pagerduty.url }
  const service = await startServiceProcess(env, { maxOutputChars: 64 * 1024 * 1024 })
  t.teardown(service.stop)
  const answers: Array<{ what: string, text: string }> = []
  const request = async (what: string, path: string, init?: RequestInit): Promise<number> => {
    const res = await fetch(`${service.url}${path}`, init)
    answers.push({ what, text: await res.text() })
    return res.status
  }
  const page = (group: string): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(webhookPayload({ alertname: 'SecretPage', group, alerts: [{ instance: group }] })) })
  t.equal(await request('webhook', '/webhook', page('up')), 200)
  await pagerduty.waitForRequests(1, 10_000)
  await server.pause()
  t.equal(await request('webhook while the database is down', '/webhook', page('down')), 503)
  await waitUntil('not ready', 10_000, async () => (await fetch(`${service.url}/-/ready`)).status === 503)
  await request('readiness while down', '/-/ready')
  await request('deliveries API while down', '/api/v1/deliveries')
  await request('metrics while down', '/metrics')
  await server.resume()
  await waitUntil('ready again', 15_000, async () => (await fetch(`${service.url}/-/ready`)).status === 200)
  await request('deliveries API', '/api/v1/deliveries')
  await service.stop()
  answers.push({ what: 'log', text: service.output() })
  t.match(service.output(), /store operation failed/, 'the outage was logged')

  // A start against a database that is not there serves its probes and retries, naming the
  // host, not the password; `migrate` and a malformed URL fail.
  const unreachable = `postgres://postgres:${DB_PASSWORD}@127.0.0.1:${await freePort()}/nowhere`
  const waiting = await startServiceProcess({ ...env, DATABASE_URL: unreachable }, { waitForReady: false })
  t.teardown(waiting.stop)
  const notReady = await fetch(`${waiting.url}/-/ready`)
  t.equal(notReady.status, 503)
  answers.push({ what: 'readiness, unreachable database', text: await notReady.text() })
  await waitUntil('a retried start logged', 10_000, async () => /cannot start on the database; retrying/.test(waiting.output()))
  await waiting.stop()
  answers.push({ what: 'serve, unreachable database', text: waiting.output() })
  const cli = (command: string, extra: Record<string, string>): string => {
    const r = spawnSync(process.execPath, ['dist/cli.js', command], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, ...extra }, encoding: 'utf8', timeout: 30_000 })
    t.not(r.status, 0, `${command} with ${Object.keys(extra).join(', ')} fails`)
    return r.stdout + r.stderr
  }
  answers.push({ what: 'migrate, unreachable database', text: cli('migrate', { DATABASE_URL: unreachable }) })
  answers.push({ what: 'serve, malformed URL', text: cli('serve', { DATABASE_URL: `mysql://u:${DB_PASSWORD}@h/db` }) })
  for (const needle of [DB_PASSWORD, DECODED]) {
    const leaks = answers.filter((a) => a.text.includes(needle)).map((a) => `${a.what}: …${excerpt(a.text, needle)}…`)
    t.same(leaks, [], `the password (${needle === DB_PASSWORD ? 'as written' : 'decoded'}) appears nowhere (${answers.length} outputs scanned)`)
  }
})

function excerpt (text: string, needle: string): string {
  const i = text.indexOf(needle)
  return text.slice(Math.max(0, i - 120), i + needle.length + 40)
}

// The same promise in process, through every outcome of the PagerDuty webhook route (the
// service process above has no incident store behind the route yet, so it answers 503 there).
t.test('PagerDuty webhook secrets reach no log line, metric or answer, whatever the outcome', async (t) => {
  const lines: string[] = []
  const logger = pino({ level: 'trace', redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' } }, { write: (line: string) => { lines.push(line) } })
  const ours = '9f2c1a4e0b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e'
  const port = createRecordingAcknowledgements([ours])
  const h = await buildTestApp({ logger, pagerDuty: { secrets: [PD_OLD, PD_NEW], acknowledge: port.acknowledge } })
  t.teardown(h.close)
  const answers: string[] = []
  const post = async (payload: string, signature?: string): Promise<void> => {
    const res = await h.app.inject({ method: 'POST', url: '/integrations/pagerduty', payload, headers: { 'content-type': 'application/json', ...(signature !== undefined ? { 'x-pagerduty-signature': signature } : {}) } })
    answers.push(`${JSON.stringify(res.headers)}\n${res.body}`)
  }
  const acked = pagerDutyFixtureText('incident.acknowledged')
  await post(acked, signPagerDuty(acked, PD_NEW)) // applied
  await post(acked, signPagerDuty(acked, PD_OLD)) // duplicate
  const again = pagerDutyEventBody('incident.acknowledged', { id: 'AGAIN' })
  await post(again, signPagerDuty(again, PD_NEW)) // no_change
  const foreign = pagerDutyEventBody('incident.acknowledged', { id: 'FOREIGN', incidentKey: 'not-ours' })
  await post(foreign, signPagerDuty(foreign, PD_NEW)) // unknown_incident
  const escalated = pagerDutyEventBody('incident.acknowledged', { id: 'ESC', eventType: 'incident.escalated' })
  await post(escalated, signPagerDuty(escalated, PD_NEW)) // ignored_type
  await post('{"x":1}', signPagerDuty('{"x":1}', PD_NEW)) // unrecognized
  await post('nope', signPagerDuty('nope', PD_NEW)) // invalid_json
  for (const signature of [undefined, `v1=${PD_NEW}`, `v0=${PD_OLD}`, signPagerDuty(acked, `${PD_NEW}x`)]) await post(acked, signature) // bad_signature
  port.failWith(new Error('store down'))
  const resolved = pagerDutyFixtureText('incident.resolved')
  await post(resolved, signPagerDuty(resolved, PD_NEW)) // unavailable
  const metrics = (await h.app.inject('/metrics')).body
  for (const outcome of ['applied', 'duplicate', 'no_change', 'unknown_incident', 'ignored_type', 'unrecognized', 'invalid_json', 'bad_signature', 'unavailable']) {
    t.match(metrics, new RegExp(`alert_enricher_pagerduty_webhooks_total\\{outcome="${outcome}"\\} [1-9]`), `outcome ${outcome} was produced`)
  }
  const everything = [...answers, metrics, (await h.app.inject('/openapi.json')).body, ...lines]
  t.ok(lines.some((l) => l.includes('PagerDuty webhook handled')) && lines.some((l) => l.includes('bad signature')), 'the log holds the route\'s lines')
  for (const secret of [PD_OLD, PD_NEW]) {
    t.same(everything.filter((text) => text.includes(secret)).map((text) => excerpt(text, secret)), [], 'the secret appears nowhere')
  }
})
