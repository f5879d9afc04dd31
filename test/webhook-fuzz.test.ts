import fc from 'fast-check'
import t from 'tap'
import { buildTestApp, fixture } from './helpers/app.js'
import { arbitraryFromSchema } from './helpers/schema-arbitrary.js'

// Property: whatever arrives at a route that takes a body (the webhook, preview, reload, the
// admin routes), the answer is 2xx or 4xx with an {error, message} body, never 5xx — a 5xx tells
// Alertmanager to retry garbage forever. Bodies: random JSON and text, mutations of a real
// payload, and values built from the request schemas in GET /openapi.json.
// `npm run fuzz` runs the same properties with FUZZ_RUNS (10,000) cases.
const NUM_RUNS = Number(process.env.FUZZ_RUNS ?? 400)
const ADMIN = 'admin-token'

const valid = fixture('firing-two-critical.json')
const validAlert = (valid.alerts as Array<Record<string, unknown>>)[0] as Record<string, unknown>

// Structured mutations of a valid payload hit the validator's edges (types, empties, unicode).
const mutatedPayload = fc.record({
  field: fc.constantFrom(...Object.keys(valid)),
  value: fc.anything({ withNullPrototype: true, withBigInt: false, maxDepth: 3 }),
  alertField: fc.constantFrom(...Object.keys(validAlert)),
  alertValue: fc.anything({ maxDepth: 2 }),
  // Label names and values include Object.prototype member names: lookups keyed by a label
  // value (severity → priority) must not find them.
  labels: fc.dictionary(
    fc.oneof(fc.string(), fc.constantFrom('severity', 'team', '__proto__', 'constructor')),
    fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom('constructor', 'toString', '__proto__', 'hasOwnProperty', 'CONSTRUCTOR')),
    { maxKeys: 5 }
  )
}).map(({ field, value, alertField, alertValue, labels }) => ({
  ...valid,
  [field]: value,
  alerts: [{ ...validAlert, [alertField]: alertValue, labels: { ...labels, alertname: 'X' } }]
}))

const rawBody = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.json().map((j) => j.slice(0, Math.max(0, j.length - 1))), // truncated JSON
  fc.anything({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'undefined'),
  mutatedPayload.map((p) => JSON.stringify(p))
)

t.test('no generated body gets a 5xx on any route that takes one', async (t) => {
  const h = await buildTestApp({ bodyLimit: 16 * 1024, adminToken: ADMIN })
  t.teardown(h.close)
  const doc = (await h.app.inject('/openapi.json')).json<{ paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: object }> } }>> }>()
  const bodySchemas = Object.values(doc.paths).flatMap((methods) => Object.values(methods))
    .flatMap((op) => Object.values(op.requestBody?.content ?? {}).map((c) => c.schema))
  t.ok(bodySchemas.length >= 2, `${bodySchemas.length} request body schemas in the document`)
  const fromSchemas = fc.oneof(...bodySchemas.map((schema) => arbitraryFromSchema(schema))).map((v) => JSON.stringify(v))
  const body = fc.oneof(rawBody, fromSchemas)
  const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'APPLICATION/JSON', '', 'application/jsonx')
  const route = fc.constantFrom('POST /webhook', 'POST /api/v1/preview', 'POST /-/reload', 'POST /api/v1/deliveries/1/retry', 'POST /api/v1/deliveries/abc/retry', 'GET /api/v1/deliveries')
  const statuses = new Map<number, number>()
  await fc.assert(fc.asyncProperty(body, contentType, route, fc.boolean(), async (payload, type, r, authorized) => {
    const [method, url] = r.split(' ') as ['POST' | 'GET', string]
    const headers: Record<string, string> = { ...(type === '' ? {} : { 'content-type': type }), ...(authorized ? { authorization: `Bearer ${ADMIN}` } : {}) }
    const res = await h.app.inject({ method, url, headers, payload })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ${r} ${type} ${JSON.stringify(payload).slice(0, 300)}: ${res.body}`)
    if (res.statusCode >= 400) {
      const parsed = res.json() as { error?: unknown, message?: unknown }
      if (typeof parsed.error !== 'string' || typeof parsed.message !== 'string') throw new Error(`error body shape: ${res.body}`)
    }
  }), { numRuns: NUM_RUNS })
  // The schema-built bodies must get past validation sometimes, or they test nothing beyond random JSON.
  t.ok((statuses.get(200) ?? 0) > 0, `some requests succeeded: ${JSON.stringify([...statuses].sort())}`)
  t.ok((statuses.get(400) ?? 0) > 0, 'some were refused as bad requests')
})
