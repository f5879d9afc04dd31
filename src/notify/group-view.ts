import type { PriorityName } from '../config/catalog-schema.js'
import { PRIORITIES } from '../config/catalog-schema.js'
import type { EnrichedAlert, EnrichedGroup } from '../enrich/types.js'
import { distinct } from './text.js'

// Facts about a group that every renderer presents the same way: which alert leads, the
// deadline, the links. Pure functions of the group (and `now` where time matters).

export function priorityRank (p: PriorityName): number {
  return PRIORITIES.indexOf(p)
}

export function highestPriority (alerts: readonly EnrichedAlert[], fallback: PriorityName): PriorityName {
  let best = fallback
  let first = true
  for (const a of alerts) {
    if (first || priorityRank(a.priority) < priorityRank(best)) best = a.priority
    first = false
  }
  return best
}

// Firing before resolved, then most urgent, then oldest: the order a responder reads them.
export function sortAlerts (alerts: readonly EnrichedAlert[]): EnrichedAlert[] {
  return [...alerts].sort((a, b) =>
    (a.status === b.status ? 0 : a.status === 'firing' ? -1 : 1) ||
    priorityRank(a.priority) - priorityRank(b.priority) ||
    a.startsAt.localeCompare(b.startsAt) ||
    a.fingerprint.localeCompare(b.fingerprint))
}

export function leadAlert (group: EnrichedGroup): EnrichedAlert | undefined {
  return sortAlerts(group.alerts)[0]
}

export function countByStatus (group: EnrichedGroup): { firing: number, resolved: number } {
  const firing = group.alerts.filter((a) => a.status === 'firing').length
  return { firing, resolved: group.alerts.length - firing }
}

// The earliest deadline among the alerts still firing; null once nothing fires.
export function respondBy (group: EnrichedGroup): Date | null {
  let best: Date | null = null
  for (const a of group.alerts) {
    if (a.status !== 'firing') continue
    const d = new Date(a.sla.respondBy)
    if (Number.isNaN(d.getTime())) continue
    if (best === null || d < best) best = d
  }
  return best
}

export function alertNames (group: EnrichedGroup): string[] {
  return distinct(sortAlerts(group.alerts).map((a) => a.alertname))
}

export function groupSummary (group: EnrichedGroup): string {
  return nonEmpty(group.commonAnnotations.summary) ?? nonEmpty(leadAlert(group)?.summary) ?? alertNames(group).join(', ')
}

export function groupDescription (group: EnrichedGroup): string | null {
  return nonEmpty(group.commonAnnotations.description) ?? nonEmpty(leadAlert(group)?.description ?? undefined) ?? null
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
    .sort(([a], [b]) => a.localeCompare(b))
}

export interface GroupLink { kind: 'runbook' | 'dashboard' | 'silence' | 'source', title: string, url: string }

// Runbooks and dashboards of the most urgent alerts first; a silence for the whole group.
export function groupLinks (group: EnrichedGroup): GroupLink[] {
  const sorted = sortAlerts(group.alerts)
  const links: GroupLink[] = []
  const runbooks = distinct(sorted.map((a) => a.runbookUrl).filter((u) => u !== ''))
  runbooks.slice(0, 3).forEach((url, i) => links.push({ kind: 'runbook', title: i === 0 ? 'Runbook' : `Runbook ${i + 1}`, url }))
  const seen = new Set<string>()
  for (const d of sorted.flatMap((a) => a.dashboards)) {
    if (seen.has(d.url) || seen.size >= 5) continue
    seen.add(d.url)
    links.push({ kind: 'dashboard', title: d.title, url: d.url })
  }
  const silence = groupSilenceUrl(group)
  if (silence !== null) links.push({ kind: 'silence', title: 'Silence', url: silence })
  const source = sorted.map((a) => a.sourceUrl).find((u): u is string => u !== null && u !== '')
  if (source !== undefined) links.push({ kind: 'source', title: 'Source', url: source })
  return links
}

// One alert: its own silence link. Several: a silence on the labels they share, so it covers
// the group and nothing else. No shared labels: no group silence rather than an overly broad one.
export function groupSilenceUrl (group: EnrichedGroup): string | null {
  if (group.alerts.length === 1) return nonEmpty(group.alerts[0]?.silenceUrl) ?? null
  const pairs = Object.entries(group.commonLabels).sort(([a], [b]) => a.localeCompare(b))
  if (pairs.length === 0 || group.externalURL === '') return null
  const filter = `{${pairs.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(', ')}}`
  return `${group.externalURL.replace(/\/+$/, '')}/#/silences/new?filter=${encodeURIComponent(filter)}`
}

export function formatUtc (d: Date): string {
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

// "in 4 min", "overdue by 3 min", "in 2 h 5 min", "in 3 d 4 h": whole units, rounded down.
export function formatRelative (deadline: Date, now: Date): string {
  const diff = deadline.getTime() - now.getTime()
  const span = formatSpan(Math.abs(diff))
  return diff >= 0 ? `in ${span}` : `overdue by ${span}`
}

function formatSpan (ms: number): string {
  const minutes = Math.floor(ms / 60_000)
  if (minutes < 1) return '<1 min'
  if (minutes < 120) return `${minutes} min`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`
  const days = Math.floor(hours / 24)
  return hours % 24 === 0 ? `${days} d` : `${days} d ${hours % 24} h`
}

function nonEmpty (s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s
}
