import t from 'tap'
import type { Destination } from '../src/config/catalog-schema.js'
import { planNotifications } from '../src/notify/plan.js'
import type { SlackMessage } from '../src/notify/slack/render.js'
import type { PagerDutyEvent } from '../src/notify/pagerduty/render.js'
import { makeAlert, makeGroup } from './helpers/groups.js'

const now = new Date('2026-11-26T20:12:00Z')
const destinations: Record<string, Destination> = {
  pagerduty: { type: 'pagerduty', routingKey: { env: 'PAGERDUTY_ROUTING_KEY' } },
  'slack-incident-response': { type: 'slack', channel: '#incident-response', webhookUrl: { env: 'SLACK_WEBHOOK_URL_INCIDENT_RESPONSE' } },
  'slack-alerts': { type: 'slack', channel: '#alerts', webhookUrl: { env: 'SLACK_WEBHOOK_URL_ALERTS' } }
}

const p0 = makeAlert({ fingerprint: '0000000000000001', priority: 'P0', destinations: ['pagerduty', 'slack-incident-response'] })
const p2 = makeAlert({ fingerprint: '0000000000000002', priority: 'P2', destinations: ['slack-alerts'], labels: { alertname: 'DiskFilling', instance: 'db-1' }, alertname: 'DiskFilling' })
const p1 = makeAlert({ fingerprint: '0000000000000003', priority: 'P1', status: 'resolved', destinations: ['pagerduty', 'slack-alerts'] })

t.test('one notification per destination, with only the alerts routed there', async (t) => {
  const plan = planNotifications(makeGroup([p2, p0, p1]), destinations, { now })
  t.same(plan.map((n) => [n.destination, n.type, n.priority]), [
    ['pagerduty', 'pagerduty', 'P0'],
    ['slack-alerts', 'slack', 'P1'],
    ['slack-incident-response', 'slack', 'P0']
  ])
  const pd = plan[0]?.body as PagerDutyEvent
  t.equal(pd.event_action, 'trigger')
  t.same((pd.payload.custom_details.firing as Array<{ fingerprint: string }>).map((a) => a.fingerprint), ['0000000000000001'])
  t.same((pd.payload.custom_details.resolved as Array<{ fingerprint: string }>).map((a) => a.fingerprint), ['0000000000000003'])
  const alerts = plan[1]?.body as SlackMessage
  t.match(alerts.text, /\[P1\] FIRING/, 'sub-group priority is the highest of its own alerts')
  t.match(JSON.stringify(alerts), /DiskFilling/)
  t.notMatch(JSON.stringify(plan[2]?.body), /DiskFilling/, 'other destinations do not see it')
})

t.test('sub-group status: resolved where every routed alert is resolved', async (t) => {
  const onlyResolved = makeAlert({ fingerprint: '0000000000000004', status: 'resolved', destinations: ['slack-alerts'] })
  const plan = planNotifications(makeGroup([p0, onlyResolved]), destinations, { now })
  const slack = plan.find((n) => n.destination === 'slack-alerts')?.body as SlackMessage
  t.match(slack.text, /RESOLVED/)
  t.match((plan.find((n) => n.destination === 'pagerduty')?.body as PagerDutyEvent).event_action, 'trigger')
})

t.test('idempotency key: stable for the same content, new when anything that matters changes', async (t) => {
  const key = (alerts: typeof p0[], over = {}, at = now): string[] => planNotifications(makeGroup(alerts, over), destinations, { now: at }).map((n) => n.idempotencyKey)
  const base = key([p0, p1])
  t.same(key([p1, p0]), base, 'alert order does not matter')
  t.same(key([p0, p1], {}, new Date('2026-11-26T23:00:00Z')), base, 'the clock does not matter')
  t.ok(base.every((k) => /^[0-9a-f]{80}$/.test(k)))
  t.ok(base.every((k) => k.slice(0, 16) === base[0]?.slice(0, 16)), 'the keys of one group share their first 16 characters (stored side by side)')
  t.equal(new Set(base).size, base.length, 'each destination its own key')
  t.not(key([p0, { ...p1, status: 'firing' }])[0], base[0], 'an alert changing state')
  t.not(key([p0, p1], { groupKey: 'other' })[0], base[0], 'another group')
  t.not(key([p0])[0], base[0], 'an alert leaving')
})

t.test('unknown destination ids are ignored; no destinations, no notifications', async (t) => {
  const stray = makeAlert({ destinations: ['nowhere', 'constructor', 'slack-alerts'] })
  t.same(planNotifications(makeGroup([stray]), destinations, { now }).map((n) => n.destination), ['slack-alerts'])
  t.same(planNotifications(makeGroup([makeAlert({ destinations: [] })]), destinations, { now }), [])
})

t.test('bodies hold no secrets and pass clientUrl through', async (t) => {
  const plan = planNotifications(makeGroup([p0]), destinations, { now, clientUrl: 'https://enricher.example' })
  t.notMatch(JSON.stringify(plan), /routing_key|PAGERDUTY_ROUTING_KEY|SLACK_WEBHOOK_URL/)
  t.equal((plan[0]?.body as PagerDutyEvent).client_url, 'https://enricher.example')
})
