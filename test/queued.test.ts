import { deepStrictEqual, strictEqual } from 'node:assert'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import t from 'tap'
import type { WebhookAlert, WebhookPayload } from '../src/alertmanager/webhook.js'
import { parseCatalog, type Catalog } from '../src/config/catalog.js'
import { enrichGroup } from '../src/enrich/enrich.js'
import type { EnrichedGroup } from '../src/enrich/types.js'
import { routeGroup } from '../src/notify/plan.js'
import { classifyWebhook, enrichQueuedWebhook as materialise, queueWebhook, queuedWebhookJson } from '../src/outbox/queued-webhook.js'

type QueuedNotification = ReturnType<typeof queueWebhook>[number]
const routeWebhook = (payload: WebhookPayload, text: string, c: Catalog): { notifications: QueuedNotification[] } =>
  ({ notifications: queueWebhook(payload, text, classifyWebhook(payload, c), c, []) })
import { BUNDLED_CATALOG, fixture } from './helpers/app.js'

// The webhook path queues the payload as received plus the routed alert indexes, and enriches
// at send time (notify/queued.ts). What gets sent must be what enriching at intake gave: the
// same destinations, keys and priorities, and the same enriched sub-group per destination.

const ORIGINAL = readFileSync(BUNDLED_CATALOG, 'utf8')

function catalogFrom (text: string): Catalog {
  const parsed = parseCatalog(text, BUNDLED_CATALOG)
  if (!parsed.ok) throw new Error(`catalog invalid: ${JSON.stringify(parsed.problems)}`)
  return parsed.catalog
}

const catalog = catalogFrom(ORIGINAL)
const KNOWN_NAMES = [...ORIGINAL.matchAll(/alertname="([A-Za-z0-9_]+)"/g)].map((m) => m[1] as string)
const RECEIVED_AT = Date.parse('2026-11-26T20:12:00Z')

/** Intake's view and the enrich-first view of one payload, side by side. */
function bothWays (payload: WebhookPayload, receivedJson: string, receivedAt: number, sendCatalog = catalog): {
  queued: QueuedNotification[]
  materialised: Array<EnrichedGroup | undefined>
  expected: ReturnType<typeof routeGroup>
} {
  const queued = routeWebhook(payload, receivedJson, catalog).notifications
  return {
    queued,
    materialised: queued.map((n) => materialise(JSON.parse(n.body) as unknown, receivedAt, sendCatalog)),
    expected: routeGroup(enrichGroup(payload, catalog, new Date(receivedAt)), catalog.doc.destinations)
  }
}

function storedAlerts (n: QueuedNotification | undefined): unknown {
  if (n === undefined) throw new Error('no such notification')
  return (JSON.parse(n.body) as { alerts: unknown }).alerts
}

function alert (over: Partial<WebhookAlert> & { labels: WebhookAlert['labels'] }): WebhookAlert {
  return {
    status: 'firing',
    annotations: {},
    startsAt: '2026-11-26T20:10:55Z',
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: '',
    fingerprint: '0000000000000001',
    ...over
  }
}

function payloadOf (alerts: WebhookAlert[], over: Partial<WebhookPayload> = {}): WebhookPayload {
  return {
    version: '4',
    groupKey: '{}:{service="pynomaly-api"}',
    status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    receiver: 'enricher',
    groupLabels: { service: 'pynomaly-api' },
    commonLabels: { service: 'pynomaly-api' },
    commonAnnotations: {},
    externalURL: 'http://alertmanager.example:9093',
    alerts,
    ...over
  }
}

// --- generated payloads -------------------------------------------------------------------

const labelValue = fc.string({ maxLength: 12 })
// The values the bundled entries match on (service / part_of), so generated alerts match them too.
const extraLabelValue = fc.oneof(labelValue, fc.constantFrom('pynomaly', 'pynomaly-api', 'pynomaly-worker'))
const genAlert: fc.Arbitrary<WebhookAlert> = fc.record({
  alertname: fc.option(fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...KNOWN_NAMES) },
    { weight: 1, arbitrary: fc.constantFrom('DiskFilling', 'SomethingUnknown', 'higherrorrate', '') },
    { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }
  ), { nil: undefined, freq: 8 }),
  severity: fc.option(fc.constantFrom('critical', 'high', 'warning', 'medium', 'low', 'info', 'none', 'CRITICAL', 'Warning', 'bogus', ''), { nil: undefined, freq: 6 }),
  extraLabels: fc.dictionary(fc.constantFrom('instance', 'job', 'namespace', 'team', 'service', 'part_of', 'pod'), extraLabelValue, { maxKeys: 3, noNullPrototype: true }),
  annotations: fc.dictionary(fc.constantFrom('summary', 'description', 'runbook_url', 'runbook'), fc.oneof(labelValue, fc.constant('https://runbooks.example/x.md#y')), { maxKeys: 3, noNullPrototype: true }),
  status: fc.constantFrom('firing' as const, 'resolved' as const),
  fingerprint: fc.stringMatching(/^[0-9a-f]{16}$/),
  startsAt: fc.oneof(
    fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2027, 0, 1) }).map((ms) => new Date(ms).toISOString()),
    fc.constant('0001-01-01T00:00:00Z'),
    fc.constant('2026-11-26T21:10:55+01:00')
  ),
  generatorURL: fc.constantFrom('', 'http://prometheus.example:9090/graph?g0.expr=up&g0.tab=1')
}).map(({ alertname, severity, extraLabels, annotations, ...rest }): WebhookAlert => ({
  ...rest,
  labels: { ...extraLabels, ...(alertname === undefined ? {} : { alertname }), ...(severity === undefined ? {} : { severity }) },
  annotations,
  endsAt: rest.status === 'resolved' ? '2026-11-26T20:20:00Z' : '0001-01-01T00:00:00Z'
}))

const genPayload: fc.Arbitrary<WebhookPayload> = fc.record({
  alerts: fc.array(genAlert, { minLength: 1, maxLength: 30 }),
  groupKey: fc.string({ minLength: 1, maxLength: 40 }),
  status: fc.constantFrom('firing' as const, 'resolved' as const),
  commonAnnotations: fc.dictionary(fc.constantFrom('summary', 'description'), labelValue, { maxKeys: 2, noNullPrototype: true }),
  truncatedAlerts: fc.option(fc.nat({ max: 5 }), { nil: undefined })
}).map(({ truncatedAlerts, ...p }) => payloadOf(p.alerts, { ...p, ...(truncatedAlerts === undefined ? {} : { truncatedAlerts }) }))

/** Throws (with a readable diff) unless queued-then-materialised equals enrich-then-route. */
function assertEquivalent (payload: WebhookPayload, receivedAt: number): { whole: number, partial: number } {
  const { queued, materialised, expected } = bothWays(payload, JSON.stringify(payload), receivedAt)
  deepStrictEqual(
    queued.map((n) => [n.destination, n.type, n.priority, n.idempotencyKey]),
    expected.map((n) => [n.destination, n.type, n.priority, n.idempotencyKey]),
    'destination/type/priority/idempotencyKey'
  )
  const counts = { whole: 0, partial: 0 }
  queued.forEach((n, i) => {
    deepStrictEqual(materialised[i], expected[i]?.body, `body for ${n.destination}`)
    strictEqual(typeof n.body, 'string')
    if (storedAlerts(n) === null) counts.whole++
    else counts.partial++
  })
  return counts
}

t.test('materialising a queued delivery gives the sub-group enriching at intake gave', async (t) => {
  const seen = { whole: 0, partial: 0, runs: 0 }
  fc.assert(fc.property(genPayload, fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2027, 0, 1) }), (payload, receivedAt) => {
    const c = assertEquivalent(payload, receivedAt)
    seen.whole += c.whole
    seen.partial += c.partial
    seen.runs++
  }), { numRuns: 200 })
  t.equal(seen.runs, 200)
  // The generator must exercise both shapes of body, or the property proves little.
  t.ok(seen.whole > 0, `whole-group bodies checked (${seen.whole})`)
  t.ok(seen.partial > 0, `per-destination index bodies checked (${seen.partial})`)

  for (const name of ['firing-two-critical.json', 'firing-single-warning.json']) {
    const payload = fixture(name) as unknown as WebhookPayload
    const c = assertEquivalent(payload, RECEIVED_AT)
    t.ok(c.whole > 0, `${name}: equivalent, ${c.whole} whole-group deliveries`)
  }
})

t.test('a group split across destinations stores its indexes; a whole-group route stores null', async (t) => {
  const payload = payloadOf([
    alert({ labels: { alertname: 'HighErrorRate', service: 'pynomaly-api', severity: 'critical' }, fingerprint: 'aaaaaaaaaaaaaaa1' }), // P0: pagerduty, slack-incident-response
    alert({ labels: { alertname: 'DiskFilling', severity: 'warning' }, fingerprint: 'aaaaaaaaaaaaaaa2' }), // unknown, P2: slack-alerts
    alert({ labels: { alertname: 'PostgresReplicationLagHigh', part_of: 'pynomaly' }, fingerprint: 'aaaaaaaaaaaaaaa3', status: 'resolved' }) // P1: pagerduty, slack-alerts
  ])
  const { queued, materialised, expected } = bothWays(payload, JSON.stringify(payload), RECEIVED_AT)
  t.same(queued.map((n) => [n.destination, storedAlerts(n)]), [
    ['pagerduty', [0, 2]],
    ['slack-alerts', [1, 2]],
    ['slack-incident-response', [0]]
  ])
  t.same(materialised.map((g) => g?.alerts.map((a) => a.fingerprint)), [
    ['aaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaa3'],
    ['aaaaaaaaaaaaaaa2', 'aaaaaaaaaaaaaaa3'],
    ['aaaaaaaaaaaaaaa1']
  ], 'each destination materialises only its own alerts')
  t.same(materialised.map((g) => [g?.status, g?.priority]), [['firing', 'P0'], ['firing', 'P1'], ['firing', 'P0']], 'status and priority of the sub-group alone')
  t.strictSame(materialised, expected.map((n) => n.body))

  // Every alert to the same destinations: one shared body naming no indexes.
  const whole = payloadOf([
    alert({ labels: { alertname: 'HighErrorRate', service: 'pynomaly-api', severity: 'critical' }, fingerprint: 'bbbbbbbbbbbbbbb1' }),
    alert({ labels: { alertname: 'PostgresDown', part_of: 'pynomaly' }, fingerprint: 'bbbbbbbbbbbbbbb2' })
  ])
  const w = bothWays(whole, JSON.stringify(whole), RECEIVED_AT)
  t.same(w.queued.map((n) => [n.destination, storedAlerts(n)]), [['pagerduty', null], ['slack-incident-response', null]])
  t.match(w.queued[0]?.body, /^\{"alerts":null,"payload":/)
  t.same(w.materialised.map((g) => g?.alerts.length), [2, 2])
  t.strictSame(w.materialised, w.expected.map((n) => n.body))

  // Mixed: pagerduty takes every alert (null) while the Slack channels take a part each.
  const mixed = payloadOf([
    alert({ labels: { alertname: 'HighErrorRate', service: 'pynomaly-api' }, fingerprint: 'ccccccccccccccc1' }),
    alert({ labels: { alertname: 'PostgresReplicationLagHigh', part_of: 'pynomaly' }, fingerprint: 'ccccccccccccccc2' })
  ])
  const m = bothWays(mixed, JSON.stringify(mixed), RECEIVED_AT)
  t.same(m.queued.map((n) => [n.destination, storedAlerts(n)]), [['pagerduty', null], ['slack-alerts', [1]], ['slack-incident-response', [0]]])
  t.strictSame(m.materialised, m.expected.map((n) => n.body))
})

t.test('the received text is embedded verbatim', async (t) => {
  const base = fixture('firing-two-critical.json')
  // Unknown fields, a different key order and odd whitespace, as another sender might write it.
  const reordered = { somethingFromTheFuture: { nested: [1, 'two', null, true] }, groupKey: base.groupKey, ...base, notification_reason: 'repeat_interval' }
  const text = `  ${JSON.stringify(reordered, null, 3)}\n`
  const payload = JSON.parse(text) as WebhookPayload
  const queued = routeWebhook(payload, text, catalog).notifications
  t.ok(queued.length > 0)
  for (const n of queued) {
    t.ok(n.body.endsWith(`,"payload":${text}}`), `${n.destination}: the text itself, not a re-serialisation`)
    const parsed = JSON.parse(n.body) as { payload: Record<string, unknown> }
    t.strictSame(parsed.payload, reordered)
    t.same(Object.keys(parsed.payload), Object.keys(reordered), 'key order survives')
    t.ok(materialise(parsed, RECEIVED_AT, catalog) !== undefined, 'and it materialises')
  }

  // A byte-order mark is not JSON inside a document: dropped, so the body parses.
  const bom = queuedWebhookJson([0, 1], `\uFEFF${JSON.stringify(base)}`)
  t.equal(bom.includes('\uFEFF'), false)
  t.strictSame(JSON.parse(bom), { alerts: [0, 1], payload: base })
  t.equal(queuedWebhookJson(null, '{"a":1}'), '{"alerts":null,"payload":{"a":1}}')
})

t.test('materialise refuses what is not a queued webhook; out-of-range indexes are dropped', async (t) => {
  const payload = fixture('firing-two-critical.json') as unknown as WebhookPayload
  const enriched = JSON.parse(JSON.stringify(enrichGroup(payload, catalog, new Date(RECEIVED_AT)))) as unknown
  const cases: Array<[string, unknown]> = [
    ['an enriched group (a delivery written by an older build)', enriched],
    ['null', null],
    ['a string', JSON.stringify({ alerts: null, payload })],
    ['missing payload', { alerts: null }],
    ['missing alerts', { payload }],
    ['a negative index', { alerts: [-1], payload }],
    ['a fractional index', { alerts: [0.5], payload }],
    ['indexes not an array', { alerts: 0, payload }],
    ['a payload that is not a webhook', { alerts: null, payload: { ...payload, version: '3' } }],
    ['a payload without alerts', { alerts: null, payload: { ...payload, alerts: [] } }]
  ]
  for (const [name, body] of cases) t.equal(materialise(body, RECEIVED_AT, catalog), undefined, name)

  const some = materialise({ alerts: [1, 7, 99], payload }, RECEIVED_AT, catalog)
  t.same(some?.alerts.map((a) => a.fingerprint), ['06cc6459ad559d0c'], 'indexes past the end are dropped')
  t.equal(materialise({ alerts: [2], payload }, RECEIVED_AT, catalog), undefined, 'only out-of-range indexes: nothing to render (an empty message would read as resolved)')
  const all = materialise({ alerts: null, payload }, RECEIVED_AT, catalog)
  t.strictSame(all, enrichGroup(payload, catalog, new Date(RECEIVED_AT)), 'null: the whole group')
})

t.test('materialise enriches with the catalog it is given; the routing stays as stored', async (t) => {
  const HIGH_ERROR_RATE = 'matchers: [\'alertname="HighErrorRate"\', \'service="pynomaly-api"\']\n    priority: P0\n    runbook: incident_response_playbook.md#critical-alerts-p0'
  t.ok(ORIGINAL.includes(HIGH_ERROR_RATE), 'the bundled catalog still has the entry this test edits')
  const fixed = catalogFrom(ORIGINAL.replace(HIGH_ERROR_RATE, HIGH_ERROR_RATE.replace('incident_response_playbook.md#critical-alerts-p0', 'alert_rules.md#higherrorrate')))

  const payload = payloadOf([
    alert({ labels: { alertname: 'HighErrorRate', service: 'pynomaly-api', severity: 'critical' }, fingerprint: 'ddddddddddddddd1' }),
    alert({ labels: { alertname: 'DiskFilling', severity: 'warning' }, fingerprint: 'ddddddddddddddd2' })
  ])
  const atIntake = bothWays(payload, JSON.stringify(payload), RECEIVED_AT)
  const atSend = bothWays(payload, JSON.stringify(payload), RECEIVED_AT, fixed)
  t.same(atSend.queued.map((n) => [n.destination, n.priority, n.idempotencyKey, storedAlerts(n)]),
    atIntake.queued.map((n) => [n.destination, n.priority, n.idempotencyKey, storedAlerts(n)]), 'deliveries are decided at intake')
  const pd = atSend.materialised[0]
  t.equal(atSend.queued[0]?.destination, 'pagerduty')
  t.same(pd?.alerts.map((a) => [a.fingerprint, a.runbookUrl]), [['ddddddddddddddd1', 'http://localhost:9095/runbooks/alert_rules.md#higherrorrate']],
    'the send-time runbook reaches a page still queued')
  t.equal(atIntake.materialised[0]?.alerts[0]?.runbookUrl, 'http://localhost:9095/runbooks/incident_response_playbook.md#critical-alerts-p0')
  // Apart from the runbook, the page is the one intake would have sent.
  const withoutRunbook = (g: EnrichedGroup | undefined): unknown => g === undefined ? g : { ...g, alerts: g.alerts.map(({ runbookUrl: _r, ...a }) => a) }
  t.strictSame(atSend.materialised.map(withoutRunbook), atIntake.materialised.map(withoutRunbook))

  // A catalog that would now route HighErrorRate to #alerts as well: the queued #alerts
  // delivery still carries only the alert routed there at intake.
  const rerouted = catalogFrom(ORIGINAL.replace(HIGH_ERROR_RATE, `${HIGH_ERROR_RATE}\n    destinations: [pagerduty, slack-alerts]`))
  const slack = atIntake.queued.find((n) => n.destination === 'slack-alerts')
  t.same(storedAlerts(slack), [1])
  t.same(materialise(JSON.parse(slack?.body ?? 'null'), RECEIVED_AT, rerouted)?.alerts.map((a) => a.fingerprint), ['ddddddddddddddd2'])
})
