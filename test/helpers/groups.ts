import { createHash } from 'node:crypto'
import type { PriorityName } from '../../src/config/catalog-schema.js'
import type { EnrichedAlert, EnrichedGroup } from '../../src/enrich/types.js'
import { PRIORITIES } from '../../src/config/catalog-schema.js'

// Hand-built EnrichedGroup values for renderer/plan tests, independent of the enrich code.

export function makeAlert (over: Partial<EnrichedAlert> = {}): EnrichedAlert {
  const fingerprint = over.fingerprint ?? '944809c9b3c7252f'
  const labels = over.labels ?? {
    alertname: over.alertname ?? 'HighErrorRate',
    instance: `10.0.${parseInt(fingerprint.slice(-4), 16) >> 8}.${parseInt(fingerprint.slice(-2), 16)}:8000`,
    job: 'pynomaly-api',
    namespace: 'production',
    service: 'pynomaly-api',
    severity: 'critical'
  }
  return {
    fingerprint,
    status: 'firing',
    alertname: labels.alertname ?? 'HighErrorRate',
    matched: true,
    entry: 'high-error-rate',
    priority: 'P0',
    severity: labels.severity ?? null,
    summary: 'Error rate above 5% for pynomaly-api',
    description: '5xx ratio is 7.3% over the last 5 minutes',
    sla: { responseTime: 'PT5M', clock: 'always', respondBy: '2026-11-26T20:16:00.000Z' },
    runbookUrl: 'http://localhost:9095/runbooks/incident_response_playbook.md#critical-alerts-p0',
    team: 'platform',
    escalation: { primary: 'On-call engineer', escalation: 'Engineering manager' },
    dashboards: [{ title: 'API overview', url: 'https://monitoring.pynomaly.com/grafana/d/pynomaly-api' }],
    links: [],
    silenceUrl: 'http://alertmanager.example:9093/#/silences/new?filter=%7Balertname%3D%22HighErrorRate%22%7D',
    sourceUrl: 'http://prometheus.example:9090/graph?g0.expr=up&g0.tab=1',
    destinations: ['pagerduty', 'slack-incident-response'],
    ignored: false,
    labels,
    annotations: { summary: 'Error rate above 5% for pynomaly-api', description: '5xx ratio is 7.3% over the last 5 minutes' },
    startsAt: '2026-11-26T20:11:00Z',
    endsAt: '0001-01-01T00:00:00Z',
    ...over
  }
}

export function makeGroup (alerts: EnrichedAlert[], over: Partial<EnrichedGroup> = {}): EnrichedGroup {
  const groupKey = over.groupKey ?? '{}:{alertname="HighErrorRate", service="pynomaly-api"}'
  const common = commonLabels(alerts)
  return {
    groupKey,
    groupKeyHash: createHash('sha256').update(groupKey).digest('hex'),
    receiver: 'enricher',
    status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    externalURL: 'http://alertmanager.example:9093',
    truncatedAlerts: 0,
    groupLabels: { alertname: common.alertname ?? 'HighErrorRate' },
    commonLabels: common,
    commonAnnotations: commonAnnotations(alerts),
    priority: alerts.reduce<PriorityName>((p, a) => (PRIORITIES.indexOf(a.priority) < PRIORITIES.indexOf(p) ? a.priority : p), 'P3'),
    alerts,
    ...over
  }
}

export function manyAlerts (n: number, over: (i: number) => Partial<EnrichedAlert> = () => ({})): EnrichedAlert[] {
  return Array.from({ length: n }, (_, i) => makeAlert({ fingerprint: i.toString(16).padStart(16, '0'), ...over(i) }))
}

function commonLabels (alerts: EnrichedAlert[]): Record<string, string> {
  const [first, ...rest] = alerts
  if (first === undefined) return {}
  return Object.fromEntries(Object.entries(first.labels).filter(([k, v]) => rest.every((a) => a.labels[k] === v)))
}

function commonAnnotations (alerts: EnrichedAlert[]): Record<string, string> {
  const [first, ...rest] = alerts
  if (first === undefined) return {}
  return Object.fromEntries(Object.entries(first.annotations).filter(([k, v]) => rest.every((a) => a.annotations[k] === v)))
}
