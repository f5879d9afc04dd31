import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import SwaggerParser from '@apidevtools/swagger-parser'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { BUNDLED_CATALOG, buildTestApp, fixture } from './helpers/app.js'
import { createRecordingAcknowledgements, pagerDutyFixtureText, signPagerDuty } from './helpers/pagerduty-webhook.js'
import { acknowledgeClick, interactionBody, signSlackRequest } from './helpers/fake-slack-api.js'

// GET /openapi.json is generated from the route schemas. The document is a valid OpenAPI 3.1
// document, lists every route, and every real response of every route (each status a route
// documents, errors included) has a documented status, media type and, for JSON, a body that
// matches the documented schema.

interface Operation { requestBody?: unknown, responses: Record<string, { content?: Record<string, { schema: object }> }> }
type Doc = { openapi: string, paths: Record<string, Record<string, Operation>> }

const ROUTES = [
  'GET /-/healthy', 'GET /-/ready', 'GET /api/v1/catalog', 'GET /api/v1/deliveries', 'GET /metrics', 'GET /openapi.json',
  'GET /runbooks', 'GET /runbooks/', 'GET /runbooks/{file}', 'POST /-/reload', 'POST /api/v1/deliveries/{id}/retry',
  'POST /api/v1/preview', 'POST /webhook', 'GET /api/v1/incidents', 'GET /api/v1/incidents/{id}', 'POST /api/v1/incidents/{id}/ack', 'POST /integrations/pagerduty', 'POST /integrations/slack/interactions'
]
const ADMIN = 'admin-token'
const WEBHOOK = 'webhook-token'
const PD_SECRET = 'pagerduty-signing-secret'
const SLACK_SECRET = 'slack-signing-secret'

t.test('GET /openapi.json is a valid OpenAPI 3.1 document listing every route', async (t) => {
  const h = await buildTestApp()
  t.teardown(h.close)
  const res = await h.app.inject('/openapi.json')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const doc = res.json<Doc>()
  t.equal(doc.openapi, '3.1.0')
  await t.resolves(SwaggerParser.validate(structuredClone(doc) as never), 'swagger-parser accepts it')
  await t.rejects(SwaggerParser.validate({ ...structuredClone(doc), paths: { '/x': { get: { responses: { 200: { description: 1 } } } } } } as never), 'and the validator can fail')
  const ops = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`)).sort()
  t.same(ops, [...ROUTES].sort())
  for (const route of ['POST /webhook', 'POST /api/v1/preview']) {
    const [method, path] = route.split(' ') as [string, string]
    const op = doc.paths[path]?.[method.toLowerCase()]
    t.match(op?.requestBody, { content: { 'application/json': { schema: { type: 'object', required: ['version', 'groupKey', 'status', 'receiver', 'groupLabels', 'commonLabels', 'commonAnnotations', 'externalURL', 'alerts'] } } } }, `${route} documents its body`)
  }
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const codes = Object.keys(op.responses)
      t.ok(codes.some((c) => /^[23]/.test(c)), `${method} ${path}: a success response`)
      t.ok(codes.includes('500'), `${method} ${path}: 500`)
      for (const code of codes.filter((c) => /^[45]/.test(c))) {
        t.match(op.responses[code]?.content?.['application/json']?.schema, { type: 'object', required: ['error', 'message'] }, `${method} ${path} ${code}: the error body`)
      }
    }
  }
})

t.test('every route\'s real responses match the document', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-openapi-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const catalogPath = join(dir, 'catalog.yaml')
  writeFileSync(catalogPath, readFileSync(BUNDLED_CATALOG))
  const acknowledgements = createRecordingAcknowledgements(['9f2c1a4e0b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e'])
  const h = await buildTestApp({ catalogPath, adminToken: ADMIN, auth: { bearerToken: WEBHOOK }, pagerDuty: { secrets: [PD_SECRET], acknowledge: acknowledgements.acknowledge }, slackSigningSecret: SLACK_SECRET })
  t.teardown(h.close)
  const withoutPagerDuty = await buildTestApp({ catalogPath })
  t.teardown(withoutPagerDuty.close)
  const off = withoutPagerDuty
  const doc = (await h.app.inject('/openapi.json')).json<Doc>()
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  const seen = new Map<string, Set<string>>()

  async function check (route: string, req: InjectOptions, app = h.app): Promise<LightMyRequestResponse> {
    const res = await app.inject(req)
    const [method, path] = route.split(' ') as [string, string]
    const op = doc.paths[path]?.[method.toLowerCase()]
    const documented = op?.responses[String(res.statusCode)]
    const what = `${route} → ${res.statusCode}`
    if (documented === undefined) {
      t.fail(`${what}: status not documented (${res.body.slice(0, 200)})`)
      return res
    }
    seen.set(route, (seen.get(route) ?? new Set()).add(String(res.statusCode)))
    if (res.body === '') return res
    const mediaType = String(res.headers['content-type']).split(';')[0]?.trim() ?? ''
    const media = documented.content?.[mediaType]
    if (media === undefined) {
      t.fail(`${what}: media type ${mediaType} not documented (${Object.keys(documented.content ?? {}).join(', ')})`)
      return res
    }
    const validate = ajv.compile(media.schema)
    const body: unknown = mediaType === 'application/json' ? res.json() : res.body
    t.ok(validate(body), `${what}: body matches the ${mediaType} schema ${JSON.stringify(validate.errors ?? [])}`)
    return res
  }

  const json = { 'content-type': 'application/json' }
  const hook = { ...json, authorization: `Bearer ${WEBHOOK}` }
  const admin = { authorization: `Bearer ${ADMIN}` }
  const payload = fixture('firing-two-critical.json')

  await check('GET /openapi.json', { url: '/openapi.json' })
  await check('GET /-/healthy', { url: '/-/healthy' })
  await check('GET /-/ready', { url: '/-/ready' })
  await check('GET /metrics', { url: '/metrics' })
  await check('GET /api/v1/catalog', { url: '/api/v1/catalog' })
  await check('GET /runbooks', { url: '/runbooks' })
  await check('GET /runbooks/', { url: '/runbooks/' })
  await check('GET /runbooks/{file}', { url: '/runbooks/incident_response_playbook.md' })
  await check('GET /runbooks/{file}', { url: '/runbooks/incident_response_playbook.md?raw=1' })
  await check('GET /runbooks/{file}', { url: '/runbooks/nope.md' })

  for (const route of ['POST /webhook', 'POST /api/v1/preview']) {
    const url = route.split(' ')[1] as string
    const headers = route === 'POST /webhook' ? hook : json
    t.equal((await check(route, { method: 'POST', url, headers, payload })).statusCode, 200)
    await check(route, { method: 'POST', url, headers, payload: '{bad json' })
    await check(route, { method: 'POST', url, headers, payload: { ...payload, alerts: [] } })
    await check(route, { method: 'POST', url, headers: { ...headers, 'content-type': 'text/plain' }, payload: 'x' })
    await check(route, { method: 'POST', url, headers, payload: JSON.stringify({ ...payload, pad: 'x'.repeat(5 * 1024 * 1024) }) })
  }
  t.equal((await check('POST /webhook', { method: 'POST', url: '/webhook', headers: hook, payload })).json().status, 'duplicate')
  await check('POST /webhook', { method: 'POST', url: '/webhook', headers: json, payload })

  const pd = (body: string, signature?: string): InjectOptions => ({ method: 'POST', url: '/integrations/pagerduty', payload: body, headers: { ...json, ...(signature !== undefined ? { 'x-pagerduty-signature': signature } : {}) } })
  const acked = pagerDutyFixtureText('incident.acknowledged')
  t.equal((await check('POST /integrations/pagerduty', pd(acked, signPagerDuty(acked, PD_SECRET)))).statusCode, 200)
  await check('POST /integrations/pagerduty', pd(acked))
  await check('POST /integrations/pagerduty', pd('{bad json', signPagerDuty('{bad json', PD_SECRET)))
  const huge = JSON.stringify({ pad: 'x'.repeat(5 * 1024 * 1024) })
  await check('POST /integrations/pagerduty', pd(huge, signPagerDuty(huge, PD_SECRET)))
  acknowledgements.failWith(new Error('store down'))
  t.equal((await check('POST /integrations/pagerduty', pd(acked, signPagerDuty(acked, PD_SECRET)))).statusCode, 503)
  t.equal((await check('POST /integrations/pagerduty', pd(acked, signPagerDuty(acked, PD_SECRET)), withoutPagerDuty.app)).statusCode, 404)

  await check('GET /api/v1/deliveries', { url: '/api/v1/deliveries', headers: admin })
  await check('GET /api/v1/deliveries', { url: '/api/v1/deliveries?state=nope', headers: admin })
  await check('GET /api/v1/deliveries', { url: '/api/v1/deliveries' })
  const [first] = await h.store.claim({ now: Date.now() + 1, limit: 1, leaseMs: 60_000, excludeDestinations: [], admit: () => true })
  if (first === undefined) throw new Error('no delivery to dead-letter')
  await h.store.markDead(first, 'client_error', 'HTTP 400')
  const retry = (id: string | number, headers: Record<string, string> = admin): InjectOptions => ({ method: 'POST', url: `/api/v1/deliveries/${id}/retry`, headers })
  t.equal((await check('POST /api/v1/deliveries/{id}/retry', retry(first.id))).statusCode, 200)
  t.equal((await check('POST /api/v1/deliveries/{id}/retry', retry(first.id))).statusCode, 409)
  await check('POST /api/v1/deliveries/{id}/retry', retry(424242))
  await check('POST /api/v1/deliveries/{id}/retry', retry('abc'))
  await check('POST /api/v1/deliveries/{id}/retry', retry(first.id, {}))

  await check('GET /api/v1/incidents', { url: '/api/v1/incidents?state=triggered', headers: admin })
  await check('GET /api/v1/incidents', { url: '/api/v1/incidents?priority=P9', headers: admin })
  await check('GET /api/v1/incidents', { url: '/api/v1/incidents' })
  await check('GET /api/v1/incidents/{id}', { url: '/api/v1/incidents/1', headers: admin })
  await check('GET /api/v1/incidents/{id}', { url: '/api/v1/incidents/abc', headers: admin })
  await check('GET /api/v1/incidents/{id}', { url: '/api/v1/incidents/424242', headers: admin })
  await check('GET /api/v1/incidents/{id}', { url: '/api/v1/incidents/1' })
  const ack = (id: string | number, body: unknown, headers: Record<string, string> = { ...admin, ...json }): InjectOptions => ({ method: 'POST', url: `/api/v1/incidents/${id}/ack`, headers, payload: body as string })
  t.equal((await check('POST /api/v1/incidents/{id}/ack', ack(1, { by: 'ana' }))).statusCode, 200)
  await check('POST /api/v1/incidents/{id}/ack', ack(1, { who: 'ana' }))
  await check('POST /api/v1/incidents/{id}/ack', ack(424242, { by: 'ana' }))
  await check('POST /api/v1/incidents/{id}/ack', ack(1, { by: 'ana' }, json))
  await check('POST /api/v1/incidents/{id}/ack', ack(1, '<by/>', { ...admin, 'content-type': 'application/xml' }))
  await check('POST /api/v1/incidents/{id}/ack', ack(1, JSON.stringify({ by: 'x'.repeat(5 * 1024 * 1024) })))
  const resolved = { ...payload, status: 'resolved', alerts: (payload.alerts as Array<Record<string, unknown>>).map((a) => ({ ...a, status: 'resolved', endsAt: '2026-11-26T20:30:00Z' })) }
  t.equal((await h.app.inject({ method: 'POST', url: '/webhook', headers: hook, payload: resolved })).statusCode, 200)
  t.equal((await check('POST /api/v1/incidents/{id}/ack', ack(1, { by: 'ana' }))).statusCode, 409)
  const slackRoute = 'POST /integrations/slack/interactions'
  const signed = (body: string, type = 'application/x-www-form-urlencoded'): InjectOptions =>
    ({ method: 'POST', url: '/integrations/slack/interactions', headers: { 'content-type': type, ...signSlackRequest(SLACK_SECRET, body, Math.floor(Date.now() / 1000)) }, payload: body })
  const click = interactionBody(acknowledgeClick({ incidentId: '1' }))
  t.equal((await check(slackRoute, signed(click))).statusCode, 200)
  t.equal((await check(slackRoute, signed('payload=%7B'))).statusCode, 400)
  t.equal((await check(slackRoute, { ...signed(click), payload: `${click}x` })).statusCode, 401)
  t.equal((await check(slackRoute, signed('{}', 'application/json'))).statusCode, 415)
  t.equal((await check(slackRoute, signed(`payload=${'x'.repeat(5 * 1024 * 1024)}`))).statusCode, 413)
  t.equal((await check(slackRoute, signed(click), off.app)).statusCode, 404)

  await check('POST /-/reload', { method: 'POST', url: '/-/reload', headers: admin })
  await check('POST /-/reload', { method: 'POST', url: '/-/reload' })
  t.equal((await check('POST /-/reload', { method: 'POST', url: '/-/reload', headers: { ...admin, ...json }, payload: '' })).statusCode, 400, 'empty JSON body: Fastify\'s 400, no problems list')
  writeFileSync(catalogPath, 'entries: [')
  t.equal((await check('POST /-/reload', { method: 'POST', url: '/-/reload', headers: admin })).statusCode, 400)

  await h.store.close()
  await check('GET /-/ready', { url: '/-/ready' })
  await check('POST /webhook', { method: 'POST', url: '/webhook', headers: hook, payload: { ...payload, groupKey: 'after-close' } })

  // Every documented status except the catch-all 500 was produced by a real request above.
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const route = `${method.toUpperCase()} ${path}`
      const missing = Object.keys(op.responses).filter((c) => c !== '500' && !(seen.get(route)?.has(c) ?? false))
      if (route === 'GET /-/healthy') continue // 503 needs a fatal store error; its schema is the error body checked above
      t.same(missing, [], `${route}: every documented status exercised`)
    }
  }
})
