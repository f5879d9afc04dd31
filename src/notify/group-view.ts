import { priorityRank } from '../config/catalog-schema.js'
import type { EnrichedAlert, EnrichedGroup } from '../enrich/types.js'
import { silenceUrl } from '../enrich/links.js'
import { nonEmpty } from '../text.js'
import { distinct } from './text.js'

// Facts about a group that every renderer presents the same way: which alert leads, the
// deadline, the links. Computed once per render (at send time, by the dispatcher).

export interface GroupLink { kind: 'runbook' | 'dashboard' | 'silence' | 'source', title: string, url: string }

export interface GroupView {
  group: EnrichedGroup
  // Firing before resolved, then most urgent, then oldest: the order a responder reads them.
  sorted: EnrichedAlert[]
  lead: EnrichedAlert | undefined
  names: string[]
  summary: string
  description: string | null
  firing: number
  resolved: number
  // The earliest deadline among the alerts still firing; null once nothing fires.
  deadline: Date | null
  links: GroupLink[]
}

export function viewGroup (group: EnrichedGroup): GroupView {
  const sorted = sortAlerts(group.alerts)
  const lead = sorted[0]
  const names = distinct(sorted.map((a) => a.alertname))
  const firing = group.alerts.filter((a) => a.status === 'firing').length
  return {
    group,
    sorted,
    lead,
    names,
    summary: nonEmpty(group.commonAnnotations.summary) ?? nonEmpty(lead?.summary) ?? names.join(', '),
    description: nonEmpty(group.commonAnnotations.description) ?? nonEmpty(lead?.description ?? undefined) ?? null,
    firing,
    resolved: group.alerts.length - firing,
    deadline: group.status === 'resolved' ? null : respondBy(group.alerts),
    links: groupLinks(group, sorted)
  }
}

export function sortAlerts (alerts: readonly EnrichedAlert[]): EnrichedAlert[] {
  return [...alerts].sort((a, b) =>
    (a.status === b.status ? 0 : a.status === 'firing' ? -1 : 1) ||
    priorityRank(a.priority) - priorityRank(b.priority) ||
    compare(a.startsAt, b.startsAt) ||
    compare(a.fingerprint, b.fingerprint))
}

function respondBy (alerts: readonly EnrichedAlert[]): Date | null {
  let best = Infinity
  for (const a of alerts) {
    if (a.status !== 'firing') continue
    const t = Date.parse(a.sla.respondBy)
    if (t < best) best = t
  }
  return best === Infinity ? null : new Date(best)
}

// Where a label value is the same for every alert, one value; otherwise the distinct values.
export function labelValues (group: EnrichedGroup, name: string): string[] {
  const common = group.commonLabels[name]
  if (common !== undefined) return [common]
  return distinct(group.alerts.map((a) => a.labels[name]).filter((v): v is string => v !== undefined && v !== ''))
}

// Labels that tell the alerts of a group apart (instance, pod, ...): not common, not the name.
export function distinguishingLabels (alert: EnrichedAlert, group: EnrichedGroup): Array<[string, string]> {
  return Object.entries(alert.labels)
    .filter(([k]) => k !== 'alertname' && group.commonLabels[k] === undefined)
    .sort(([a], [b]) => compare(a, b))
}

// Where an alert fires, in the order a responder narrows it down. Shown even when the whole
// group shares them: a single alert's message must still say which cluster and host it is.
export const LOCATION_LABELS = ['cluster', 'namespace', 'instance', 'pod', 'job'] as const

// What identifies one alert: its location labels that are present, then the other labels
// that differ within the group.
export function identifyingLabels (alert: EnrichedAlert, group: EnrichedGroup): Array<[string, string]> {
  const location: Array<[string, string]> = []
  for (const k of LOCATION_LABELS) {
    const v = alert.labels[k]
    if (v !== undefined && v !== '') location.push([k, v])
  }
  const known = new Set<string>(LOCATION_LABELS)
  return [...location, ...distinguishingLabels(alert, group).filter(([k]) => !known.has(k))]
}

// The affected system as PagerDuty's `source` wants it (a host, else the cluster or job or
// service): the group's common value of the most specific label, else undefined.
export function commonSource (group: EnrichedGroup): string | undefined {
  for (const k of ['instance', 'cluster', 'job', 'service']) {
    const v = nonEmpty(group.commonLabels[k])
    if (v !== undefined) return v
  }
  return undefined
}

// Runbooks and dashboards of the most urgent alerts first; a silence for the whole group.
function groupLinks (group: EnrichedGroup, sorted: readonly EnrichedAlert[]): GroupLink[] {
  const links: GroupLink[] = []
  const runbooks = distinct(sorted.map((a) => a.runbookUrl).filter((u) => u !== ''))
  runbooks.slice(0, 3).forEach((url, i) => links.push({ kind: 'runbook', title: i === 0 ? 'Runbook' : `Runbook ${i + 1}`, url }))
  const seen = new Set<string>()
  for (const a of sorted) {
    for (const d of a.dashboards) {
      if (seen.has(d.url) || seen.size >= 5) continue
      seen.add(d.url)
      links.push({ kind: 'dashboard', title: d.title, url: d.url })
    }
    if (seen.size >= 5) break
  }
  const silence = groupSilenceUrl(group)
  if (silence !== null) links.push({ kind: 'silence', title: 'Silence', url: silence })
  const source = sorted.find((a) => a.sourceUrl !== null && a.sourceUrl !== '')?.sourceUrl
  if (source !== undefined && source !== null) links.push({ kind: 'source', title: 'Source', url: source })
  return links
}

// One alert: its own silence link. Several: a silence on the labels they share, so it covers
// the group and nothing else. No shared labels: no group silence rather than an overly broad one.
export function groupSilenceUrl (group: EnrichedGroup): string | null {
  if (group.alerts.length === 1) return nonEmpty(group.alerts[0]?.silenceUrl) ?? null
  if (Object.keys(group.commonLabels).length === 0 || group.externalURL === '') return null
  return silenceUrl(group.externalURL, group.commonLabels)
}

// "2026-11-26 20:16 UTC"
export function formatUtc (d: Date): string {
  const p = (n: number): string => (n < 10 ? `0${n}` : `${n}`)
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())} UTC`
}

// Code-unit order: locale-independent (same output on every machine) and far cheaper than
// localeCompare, which goes through ICU collation.
function compare (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
