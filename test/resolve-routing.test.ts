import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startServiceProcess } from './helpers/alert-enricher-process.js'
import { catalogDocument, dedupKeyFor, entry, postWebhook, webhookPayload, writeCatalog } from './helpers/delivery-fixtures.js'
import { startFakePagerDuty } from './helpers/fake-pagerduty.js'
import { startFakeSlack } from './helpers/fake-slack.js'
import { sleep, waitUntil } from './helpers/prometheus.js'

// Every destination told a group is firing is told when it resolves, whatever the catalog
// says by then; new firing alerts follow the current catalog.

const ROUTING_KEY = 'resolveroutingroutingkey00000001' // 32 chars

t.test('a resolve goes where the trigger went, after a reload re-routed the alert', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-resolve-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const slack = await startFakeSlack()
  t.teardown(slack.close)
  const pagerduty = await startFakePagerDuty()
  t.teardown(pagerduty.close)
  const incidentUrl = slack.webhookUrl('incident')
  const alertsUrl = slack.webhookUrl('alerts')
  const destinations = {
    pagerduty: { type: 'pagerduty' as const, routingKey: { env: 'PAGERDUTY_ROUTING_KEY' } },
    'slack-incident-response': { type: 'slack' as const, channel: '#incident-response', webhookUrl: { env: 'SLACK_WEBHOOK_URL_INCIDENT_RESPONSE' } },
    'slack-alerts': { type: 'slack' as const, channel: '#alerts', webhookUrl: { env: 'SLACK_WEBHOOK_URL_ALERTS' } }
  }
  const catalogPath = writeCatalog(dir, catalogDocument(destinations, [entry('pv', 'KubePersistentVolumeErrors', 'P0', ['pagerduty', 'slack-incident-response'])]))
  const service = await startServiceProcess({
    CATALOG_PATH: catalogPath,
    PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
    PAGERDUTY_EVENTS_URL: pagerduty.url,
    SLACK_WEBHOOK_URL_INCIDENT_RESPONSE: incidentUrl,
    SLACK_WEBHOOK_URL_ALERTS: alertsUrl
  })
  t.teardown(service.stop)
  const at = (url: string): string[] => slack.received.filter((r) => r.accepted && url.endsWith(r.path)).map((r) => r.body)
  const group = { alertname: 'KubePersistentVolumeErrors', group: 'pv-1' }
  const dedupKey = dedupKeyFor(webhookPayload(group).groupKey)
  const pdEvents = (): string[] => (pagerduty.accepted as Array<{ dedup_key: string, event_action: string }>).filter((e) => e.dedup_key === dedupKey).map((e) => e.event_action)

  t.match((await postWebhook(service.url, webhookPayload(group))).json, { priority: 'P0', enqueued: 2 })
  await waitUntil('the trigger at PagerDuty and #incident-response', 20_000, async () => pdEvents().length === 1 && at(incidentUrl).length === 1)

  // The catalog now says P3, #alerts only.
  writeCatalog(dir, catalogDocument(destinations, [entry('pv', 'KubePersistentVolumeErrors', 'P3', ['slack-alerts'])]))
  const reload = await fetch(`${service.url}/-/reload`, { method: 'POST' })
  t.equal(reload.status, 200, 'reloaded')

  const resolved = await postWebhook(service.url, webhookPayload({ ...group, status: 'resolved' }))
  t.match(resolved.json, { enqueued: 3 }, '#alerts (the catalog now) and both destinations that saw it fire')
  await waitUntil('the resolve everywhere', 20_000, async () => pdEvents().length === 2 && at(incidentUrl).length === 2 && at(alertsUrl).length === 1)
  t.same(pdEvents(), ['trigger', 'resolve'], 'PagerDuty gets the resolve with the same dedup_key')
  t.match(at(incidentUrl)[1], /RESOLVED|[Rr]esolved/, '#incident-response sees it resolve')
  t.match(at(alertsUrl)[0], /RESOLVED|[Rr]esolved/)

  // Resolved: the group starts afresh. A new fire follows the current catalog only.
  t.match((await postWebhook(service.url, webhookPayload({ ...group, startsAt: new Date().toISOString() }))).json, { priority: 'P3', enqueued: 1 })
  await waitUntil('the new fire at #alerts', 20_000, async () => at(alertsUrl).length === 2)
  await sleep(300)
  t.same(pdEvents(), ['trigger', 'resolve'], 'nothing new at PagerDuty')
  t.equal(at(incidentUrl).length, 2, 'nothing new at #incident-response')
})
