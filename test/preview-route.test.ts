import t from 'tap'
import { buildTestApp, fixture } from './helpers/app.js'

const json = { 'content-type': 'application/json' }

t.test('preview shows priority, SLA deadline, runbook, escalation and destinations', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  const res = await h.app.inject({ method: 'POST', url: '/api/v1/preview', headers: json, payload: fixture('firing-two-critical.json') })
  t.equal(res.statusCode, 200)
  const { alerts, notifications } = res.json()
  t.equal(alerts.length, 2)
  t.match(alerts[0], {
    fingerprint: '944809c9b3c7252f',
    status: 'firing',
    alertname: 'HighErrorRate',
    matched: true,
    entry: 'high-error-rate',
    priority: 'P0',
    sla: { responseTime: 'PT5M', clock: 'always', respondBy: '2026-11-26T20:15:55.000Z' },
    runbookUrl: 'http://localhost:9095/runbooks/incident_response_playbook.md#critical-alerts-p0',
    escalation: { primary: 'On-call engineer', escalation: 'Engineering manager' },
    destinations: ['pagerduty', 'slack-incident-response']
  })
  t.match(alerts[0].silenceUrl, /^http:\/\/alertmanager\.example:9093\/#\/silences\/new\?filter=%7B/)
  t.same(notifications.map((n: { destination: string }) => n.destination).sort(), ['pagerduty', 'slack-incident-response'])
  t.equal((await h.store.list({ limit: 10 })).length, 0, 'preview enqueues nothing')
})

t.test('P2 warning after hours is due two business hours after the next opening', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  const res = await h.app.inject({ method: 'POST', url: '/api/v1/preview', headers: json, payload: fixture('firing-single-warning.json') })
  const [alert] = res.json().alerts
  // Thursday 20:10 UTC is after 17:00: counting starts Friday 09:00.
  t.match(alert, { priority: 'P2', sla: { responseTime: 'PT2H', clock: 'business-hours', respondBy: '2026-11-27T11:00:00.000Z' }, destinations: ['slack-alerts'] })
})

t.test('an alert no entry matches is enriched from the defaults', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  const body = fixture('firing-single-warning.json') as { alerts: Array<Record<string, unknown>> }
  const alert = { ...body.alerts[0], labels: { alertname: 'SomethingNobodyCatalogued', severity: 'low' }, annotations: { runbook_url: 'https://wiki.example/own-runbook' } }
  const res = await h.app.inject({ method: 'POST', url: '/api/v1/preview', headers: json, payload: { ...body, alerts: [alert] } })
  t.match(res.json().alerts[0], { matched: false, entry: null, priority: 'P3', runbookUrl: 'https://wiki.example/own-runbook', team: 'platform', sla: { clock: 'next-business-day', respondBy: '2026-11-27T17:00:00.000Z' } })
  const noSeverity = { ...alert, labels: { alertname: 'Nope' }, annotations: {} }
  const res2 = await h.app.inject({ method: 'POST', url: '/api/v1/preview', headers: json, payload: { ...body, alerts: [noSeverity] } })
  t.match(res2.json().alerts[0], { matched: false, priority: 'P2', runbookUrl: 'http://localhost:9095/runbooks/operational_monitoring_guide.md#alert-hierarchy-and-response' })
})

t.test('preview refuses what the webhook refuses', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  const res = await h.app.inject({ method: 'POST', url: '/api/v1/preview', headers: json, payload: { version: '4' } })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { error: 'invalid_payload', message: /is required/ })
})

t.test('catalog API shows a destination\'s secret as its env reference', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  const res = await h.app.inject({ method: 'GET', url: '/api/v1/catalog' })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(body.catalog.destinations.pagerduty, { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ROUTING_KEY' } })
  t.ok(body.entries > 0)
})

t.test('health, readiness and unknown routes', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  t.equal((await h.app.inject('/-/healthy')).statusCode, 200)
  t.equal((await h.app.inject('/-/ready')).statusCode, 200)
  const missing = await h.app.inject('/nope')
  t.equal(missing.statusCode, 404)
  t.same(Object.keys(missing.json()).sort(), ['error', 'message'])
})

t.test('ADMIN_BEARER_TOKEN guards deliveries, replay and reload, and nothing else', async (t) => {
  const h = await buildTestApp({ adminToken: 'adm1n' })
  t.teardown(h.close)
  const guarded: Array<[string, string]> = [['GET', '/api/v1/deliveries'], ['POST', '/api/v1/deliveries/1/retry'], ['POST', '/-/reload']]
  for (const [method, url] of guarded) {
    const anon = await h.app.inject({ method: method as 'GET', url })
    t.equal(anon.statusCode, 401, `${method} ${url} without the token`)
    t.equal(anon.json().error, 'unauthorized')
    const wrong = await h.app.inject({ method: method as 'GET', url, headers: { authorization: 'Bearer nope' } })
    t.equal(wrong.statusCode, 401, `${method} ${url} with a wrong token`)
    const ok = await h.app.inject({ method: method as 'GET', url, headers: { authorization: 'Bearer adm1n' } })
    t.not(ok.statusCode, 401, `${method} ${url} with the token`)
  }
  for (const url of ['/api/v1/catalog', '/-/ready', '/-/healthy', '/metrics']) {
    t.equal((await h.app.inject(url)).statusCode, 200, `${url} stays open`)
  }
  const webhook = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: fixture('firing-single-warning.json') })
  t.equal(webhook.statusCode, 200, '/webhook has its own auth, unaffected')
})
