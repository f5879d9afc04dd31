import t from 'tap'
import { buildTestApp, fixture } from './helpers/app.js'

const json = { 'content-type': 'application/json' }

t.test('captured Alertmanager 0.25 payloads are accepted and enqueued', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  for (const name of ['firing-two-critical.json', 'firing-single-warning.json']) {
    const res = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: fixture(name) })
    t.equal(res.statusCode, 200, name)
    t.equal(res.json().status, 'accepted')
  }
  const pending = await h.store.list({ state: 'pending', limit: 100 })
  // critical → P0 → pagerduty + #incident-response; warning → P2 → #alerts
  t.same(pending.map((d) => d.destination).sort(), ['pagerduty', 'slack-alerts', 'slack-incident-response'])
})

t.test('newer Alertmanager fields are tolerated', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  const body = { ...fixture('firing-single-warning.json'), notification_reason: 'repeat_interval', routeLabels: { team: 'db' }, somethingFromTheFuture: [1, 2] }
  const res = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: body })
  t.equal(res.statusCode, 200)
})

t.test('a severity named like an Object.prototype member gets the default priority, not a 500', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  const base = fixture('firing-two-critical.json') as { alerts: Array<Record<string, unknown>> }
  for (const severity of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    const body = { ...base, groupKey: `{}:{case="${severity}"}`, alerts: [{ ...base.alerts[0], labels: { alertname: 'NotInTheCatalog', severity } }] }
    const res = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: body })
    t.equal(res.statusCode, 200, `severity ${severity}: accepted`)
    t.equal(res.json().priority, h.catalog.current().doc.defaults.priority, `severity ${severity}: the catalog default priority`)
    const preview = await h.app.inject({ method: 'POST', url: '/api/v1/preview', headers: json, payload: body })
    t.equal(preview.statusCode, 200, `severity ${severity}: preview answers`)
  }
})

t.test('the same webhook twice produces deliveries once', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  const body = fixture('firing-two-critical.json')
  const first = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: body })
  const second = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: body })
  t.equal(first.json().enqueued, 2)
  t.equal(second.statusCode, 200)
  t.equal(second.json().status, 'duplicate')
  t.equal(second.json().enqueued, 0)
  t.equal((await h.store.list({ limit: 100 })).length, 2)
})

t.test('bad input gets a 4xx naming the problem, never a 5xx', async (t) => {
  const h = await buildTestApp({ bodyLimit: 2048 })
  t.teardown(h.close)
  const valid = fixture('firing-single-warning.json')
  const cases: Array<{ name: string, headers: Record<string, string>, payload: string | object, status: number, error: string, message?: RegExp }> = [
    { name: 'not JSON', headers: json, payload: '{"version": "4", ', status: 400, error: 'invalid_json' },
    { name: 'empty alerts', headers: json, payload: { ...valid, alerts: [] }, status: 400, error: 'invalid_payload', message: /^alerts: must not be empty/ },
    { name: 'wrong version', headers: json, payload: { ...valid, version: '3' }, status: 400, error: 'invalid_payload', message: /^version: expected "4"/ },
    { name: 'bad alert status', headers: json, payload: { ...valid, alerts: [{ ...(valid.alerts as object[])[0], status: 'burning' }] }, status: 400, error: 'invalid_payload', message: /alerts\[0\]\.status: expected one of "firing", "resolved"/ },
    { name: 'label value not a string', headers: json, payload: { ...valid, alerts: [{ ...(valid.alerts as object[])[0], labels: { severity: 3 } }] }, status: 400, error: 'invalid_payload', message: /alerts\[0\]\.labels\.severity/ },
    { name: 'missing groupKey', headers: json, payload: { ...valid, groupKey: undefined }, status: 400, error: 'invalid_payload', message: /groupKey: is required/ },
    { name: 'bad startsAt', headers: json, payload: { ...valid, alerts: [{ ...(valid.alerts as object[])[0], startsAt: 'yesterday' }] }, status: 400, error: 'invalid_payload', message: /alerts\[0\]\.startsAt/ },
    { name: 'JSON array', headers: json, payload: '[]', status: 400, error: 'invalid_payload', message: /^body/ },
    { name: 'JSON null', headers: json, payload: 'null', status: 400, error: 'invalid_payload' },
    { name: 'text/plain', headers: { 'content-type': 'text/plain' }, payload: 'hello', status: 415, error: 'unsupported_media_type' },
    { name: 'form', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=b', status: 415, error: 'unsupported_media_type' },
    { name: 'too large', headers: json, payload: { ...valid, commonAnnotations: { big: 'x'.repeat(4096) } }, status: 413, error: 'payload_too_large' }
  ]
  for (const c of cases) {
    const res = await h.app.inject({ method: 'POST', url: '/webhook', headers: c.headers, payload: typeof c.payload === 'string' ? c.payload : JSON.stringify(c.payload) })
    t.equal(res.statusCode, c.status, `${c.name}: status`)
    const body = res.json()
    t.equal(body.error, c.error, `${c.name}: error code`)
    t.type(body.message, 'string', `${c.name}: message`)
    if (c.message !== undefined) t.match(body.message, c.message, `${c.name}: message names the field`)
  }
  t.equal((await h.store.list({ limit: 10 })).length, 0, 'nothing enqueued from bad input')
})

t.test('a NUL character in any string: 400 naming the field, on the webhook and the preview alike', async (t) => {
  // PostgreSQL's text cannot hold U+0000 (SQLite's can): refused here, the same on both
  // engines, rather than a 503 on PostgreSQL that Alertmanager would retry forever.
  const h = await buildTestApp()
  t.teardown(h.close)
  const valid = fixture('firing-single-warning.json') as Record<string, unknown> & { alerts: Array<Record<string, unknown> & { labels: Record<string, string> }> }
  const [alert] = valid.alerts
  const withAlert = (change: Record<string, unknown>): object => ({ ...valid, alerts: [{ ...alert, ...change }] })
  const cases: Array<[string, object, string]> = [
    ['groupKey', { ...valid, groupKey: '{}:{alertname="a\u0000b"}' }, 'groupKey: contains a NUL character (U+0000)'],
    ['receiver', { ...valid, receiver: 'enricher\u0000' }, 'receiver: contains a NUL character (U+0000)'],
    ['externalURL', { ...valid, externalURL: 'http://am\u0000' }, 'externalURL: contains a NUL character (U+0000)'],
    ['a common label', { ...valid, commonLabels: { team: '\u0000' } }, 'commonLabels.team: contains a NUL character (U+0000)'],
    ['a group label name', { ...valid, groupLabels: { 'alert\u0000name': 'x' } }, 'groupLabels["alert\\u0000name"]: the name contains a NUL character (U+0000)'],
    ['an alert label', withAlert({ labels: { ...alert?.labels, severity: 'warn\u0000ing' } }), 'alerts[0].labels.severity: contains a NUL character (U+0000)'],
    ['an annotation', withAlert({ annotations: { description: 'disk\u0000full' } }), 'alerts[0].annotations.description: contains a NUL character (U+0000)'],
    ['generatorURL', withAlert({ generatorURL: '\u0000' }), 'alerts[0].generatorURL: contains a NUL character (U+0000)'],
    ['fingerprint', withAlert({ fingerprint: 'abc\u0000' }), 'alerts[0].fingerprint: contains a NUL character (U+0000)']
  ]
  for (const [what, payload, message] of cases) {
    for (const url of ['/webhook', '/api/v1/preview']) {
      const res = await h.app.inject({ method: 'POST', url, headers: json, payload: JSON.stringify(payload) })
      t.same({ status: res.statusCode, body: res.json() }, { status: 400, body: { error: 'invalid_payload', message } }, `${what} on ${url}`)
    }
  }
  const tooLong = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: withAlert({ fingerprint: 'f'.repeat(65) }) })
  t.match(tooLong.json(), { message: /^alerts\[0\]\.fingerprint: expected string length less or equal to 64$/ }, 'other string rules keep their own wording')
  const outcomes = Object.fromEntries((await h.metrics.webhooksReceived.get()).values.map((v) => [v.labels.outcome, v.value]))
  t.match(outcomes, { bad_request: cases.length + 1, unavailable: 0 }, 'counted as bad requests')
  t.same(await h.store.list({ limit: 10 }), [], 'nothing stored')
  t.equal((await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: valid })).statusCode, 200, 'the same payload without the NUL is accepted')
})

t.test('authentication: bearer and basic accepted, anything else 401 with WWW-Authenticate and the token never echoed', async (t) => {
  const h = await buildTestApp({ auth: { bearerToken: 's3cret-token', basic: { username: 'am', password: 'pw' } } })
  t.teardown(h.close)
  const payload = fixture('firing-single-warning.json')
  const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`
  const cases: Array<[string | undefined, number]> = [
    [undefined, 401], ['Bearer wrong', 401], ['Bearer s3cret-token', 200], ['bearer s3cret-token', 200],
    [basic('am', 'pw'), 200], [basic('am', 'nope'), 401], [basic('x', 'pw'), 401], ['Basic !!!', 401], ['Token s3cret-token', 401]
  ]
  for (const [authorization, status] of cases) {
    const headers: Record<string, string> = { ...json, ...(authorization !== undefined ? { authorization } : {}) }
    const res = await h.app.inject({ method: 'POST', url: '/webhook', headers, payload: { ...payload, groupKey: `k-${String(authorization)}` } })
    t.equal(res.statusCode, status, `${String(authorization)} → ${status}`)
    if (status === 401) {
      t.match(res.headers['www-authenticate'], /Bearer realm="alert-enricher", Basic realm/)
      t.equal(res.json().error, 'unauthorized')
      t.notMatch(res.body, /s3cret-token/)
    }
  }
  // Auth is checked before the body: an unauthenticated garbage body is 401, not 400.
  const res = await h.app.inject({ method: 'POST', url: '/webhook', headers: { 'content-type': 'text/plain' }, payload: 'x' })
  t.equal(res.statusCode, 401)
})

t.test('503 when the outbox cannot commit, so Alertmanager retries', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  await h.store.close()
  const res = await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: fixture('firing-single-warning.json') })
  t.equal(res.statusCode, 503)
  t.equal(res.json().error, 'unavailable')
  t.equal(res.headers['retry-after'], '5')
  const ready = await h.app.inject('/-/ready')
  t.equal(ready.statusCode, 503, 'not ready while the store cannot take writes')
  t.same(ready.json(), { error: 'not_ready', message: 'store is closed' })
  t.equal((await h.app.inject('/-/healthy')).statusCode, 200, 'a closed store is not a reason to restart')
})

t.test('webhook outcome metrics count exactly', async (t) => {
  const h = await buildTestApp({ auth: { bearerToken: 'tok' } })
  t.teardown(h.close)
  const auth = { ...json, authorization: 'Bearer tok' }
  for (let i = 0; i < 3; i++) {
    await h.app.inject({ method: 'POST', url: '/webhook', headers: auth, payload: { ...fixture('firing-single-warning.json'), groupKey: `g${i}` } })
  }
  await h.app.inject({ method: 'POST', url: '/webhook', headers: auth, payload: '{' })
  await h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: '{}' })
  const values = Object.fromEntries((await h.metrics.webhooksReceived.get()).values.map((v) => [v.labels.outcome, v.value]))
  t.same(values, { accepted: 3, duplicate: 0, bad_request: 1, unauthorized: 1, too_large: 0, unsupported_media_type: 0, unavailable: 0 })
  const enriched = (await h.metrics.alertsEnriched.get()).values.filter((v) => v.value > 0)
  // The captured DatabaseConnectionsHigh predates its rule's part_of label: no entry, P2 by severity.
  t.same(enriched.map((v) => [v.labels.priority, v.labels.status, v.labels.matched, v.value]), [['P2', 'firing', 'false', 3]])
})

t.test('the 2xx is sent only after the WAL sync completed; the dispatcher is woken before it', async (t) => {
  const events: string[] = []
  let release = (): void => {}
  const h = await buildTestApp({
    storeDeps: { syncWal: async () => { events.push('sync started'); await new Promise<void>((resolve) => { release = resolve }); events.push('sync done') } },
    wakeDispatcher: () => { events.push('dispatcher woken') }
  })
  t.teardown(h.close)
  const answer = h.app.inject({ method: 'POST', url: '/webhook', headers: json, payload: fixture('firing-single-warning.json') })
    .then((res) => { events.push(`answered ${res.statusCode}`); return res })
  for (let i = 0; i < 50 && !events.includes('sync started'); i++) await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(events, ['dispatcher woken', 'sync started'], 'no answer while the sync runs')
  release()
  t.equal((await answer).statusCode, 200)
  t.same(events, ['dispatcher woken', 'sync started', 'sync done', 'answered 200'])
})
