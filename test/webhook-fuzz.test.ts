import fc from 'fast-check'
import t from 'tap'
import { buildTestApp, fixture } from './helpers/app.js'

// Property: whatever arrives, /webhook and /api/v1/preview answer 2xx or 4xx, never 5xx —
// a 5xx tells Alertmanager to retry garbage forever.

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

t.test('no generated body gets a 5xx', async (t) => {
  const h = await buildTestApp({ bodyLimit: 16 * 1024 })
  t.teardown(h.close)
  const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'APPLICATION/JSON', '', 'application/jsonx')
  await fc.assert(fc.asyncProperty(rawBody, contentType, fc.constantFrom('/webhook', '/api/v1/preview'), async (body, type, url) => {
    const res = await h.app.inject({ method: 'POST', url, headers: type === '' ? {} : { 'content-type': type }, payload: body })
    if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ${type} ${JSON.stringify(body).slice(0, 300)}: ${res.body}`)
    if (res.statusCode >= 400) {
      const parsed = res.json() as { error?: unknown, message?: unknown }
      if (typeof parsed.error !== 'string' || typeof parsed.message !== 'string') throw new Error(`error body shape: ${res.body}`)
    }
  }), { numRuns: 400 })
  t.pass('400 generated requests answered without a 5xx')
})
