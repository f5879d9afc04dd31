import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { WebhookPayload } from '../../src/alertmanager/webhook.js'
import type { CatalogDocument, PriorityName } from '../../src/config/catalog-schema.js'

// Small, self-contained catalogs and webhook payloads for the delivery-guarantee tests
// (crash safety, secrets, idempotency), so they don't depend on the bundled catalog's entries.

const POLICY = { responseTime: 'PT5M', clock: 'always', primary: 'On-call engineer', escalation: 'Engineering manager' } as const

/** A valid catalog document; `entries` route alertnames to destinations. */
export function catalogDocument (destinations: CatalogDocument['destinations'], entries: CatalogDocument['entries'], defaultDestinations: string[] = []): CatalogDocument {
  return {
    runbookBaseUrl: 'http://localhost:9095/runbooks/',
    defaults: { team: 'platform', runbook: 'incident_response_playbook.md#critical-alerts-p0', priority: 'P2' },
    calendar: { timezone: 'UTC', businessDays: ['mon', 'tue', 'wed', 'thu', 'fri'], businessHours: { start: '09:00', end: '17:00' }, holidays: [] },
    severityPriority: { critical: 'P0', warning: 'P2', info: 'P3' },
    priorities: {
      P0: { ...POLICY, destinations: defaultDestinations },
      P1: { ...POLICY, destinations: defaultDestinations },
      P2: { ...POLICY, destinations: defaultDestinations },
      P3: { ...POLICY, destinations: defaultDestinations }
    },
    destinations,
    entries
  }
}

/** Writes the catalog as YAML (JSON is YAML) and returns its path. */
export function writeCatalog (dir: string, doc: CatalogDocument, name = 'catalog.yaml'): string {
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify(doc, null, 2))
  return path
}

export function entry (id: string, alertname: string, priority: PriorityName, destinations: string[]): CatalogDocument['entries'][number] {
  return { id, matchers: [`alertname="${alertname}"`], priority, destinations }
}

export interface PageOptions {
  alertname: string
  // Distinguishes groups: goes into the group labels and the groupKey.
  group: string
  status?: 'firing' | 'resolved'
  severity?: string
  // One alert per instance; each alert's own status may differ from the group's.
  alerts?: Array<{ instance: string, status?: 'firing' | 'resolved' }>
  // When the alerts started firing: a re-fired alert has a new one. Default: STARTED_AT.
  startsAt?: string
}

/**
 * The default startsAt: when this module loaded, so a test's incidents open with their response
 * deadline ahead of them (an old startsAt opens them already breached, and they escalate at
 * once). The same for every call, so building a payload again is an Alertmanager retry, not a
 * re-fire. A test that needs a breached incident passes an old startsAt itself.
 */
export const STARTED_AT = new Date().toISOString()

/** An Alertmanager webhook v4 payload shaped like the real ones in test/fixtures. */
export function webhookPayload (opts: PageOptions): WebhookPayload {
  const groupLabels = { alertname: opts.alertname, group: opts.group }
  const alerts = (opts.alerts ?? [{ instance: 'host-0' }]).map((a) => {
    const labels = { ...groupLabels, instance: a.instance, severity: opts.severity ?? 'critical' }
    const status = a.status ?? opts.status ?? 'firing'
    const startsAt = opts.startsAt ?? STARTED_AT
    // Resolved at STARTED_AT, or as it started if that is later: never before its start.
    const endsAt = new Date(Math.max(Date.parse(startsAt), Date.parse(STARTED_AT))).toISOString()
    return {
      status,
      labels,
      annotations: { summary: `${opts.alertname} on ${opts.group}` },
      startsAt,
      endsAt: status === 'resolved' ? endsAt : '0001-01-01T00:00:00Z',
      generatorURL: '',
      fingerprint: sha256Hex(JSON.stringify(labels)).slice(0, 16)
    }
  })
  const common = alerts.length === 1 ? { ...alerts[0]?.labels } : { ...groupLabels, severity: opts.severity ?? 'critical' }
  return {
    version: '4',
    groupKey: `{}:{alertname="${opts.alertname}", group="${opts.group}"}`,
    truncatedAlerts: 0,
    status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    receiver: 'enricher',
    groupLabels,
    commonLabels: common,
    commonAnnotations: { summary: `${opts.alertname} on ${opts.group}` },
    externalURL: 'http://alertmanager.example:9093',
    alerts
  }
}

export function sha256Hex (s: string): string {
  return createHash('sha256').update(s).digest('hex')
}

/** PagerDuty dedup_key the renderer uses for a group: sha256 hex of the groupKey. */
export const dedupKeyFor = (groupKey: string): string => sha256Hex(groupKey)

/** mulberry32: a tiny seeded PRNG, so a failing random schedule can be replayed. */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** POSTs a webhook; resolves to the status, or to 'error' when the connection failed. */
export async function postWebhook (url: string, body: unknown, opts: { token?: string, timeoutMs?: number } = {}): Promise<{ status: number | 'error', json?: unknown }> {
  try {
    const res = await fetch(`${url}/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000)
    })
    const text = await res.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = text
    }
    return { status: res.status, json }
  } catch {
    return { status: 'error' }
  }
}
