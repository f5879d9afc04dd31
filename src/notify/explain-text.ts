import { formatRelative } from '../text.js'
import type { PreviewResult } from '../enrich/types.js'

// Human-readable `alert-enricher explain` output; --json prints PreviewResult as is.
export function formatExplanation (result: PreviewResult, now: Date): string {
  const lines: string[] = []
  for (const a of result.alerts) {
    lines.push(`${a.alertname} [${a.fingerprint}] ${a.status.toUpperCase()}`)
    lines.push(`  entry:       ${a.matched ? a.entry ?? '' : '(no entry matched; catalog defaults)'}`)
    lines.push(`  priority:    ${a.priority}${a.severity !== null ? ` (severity ${a.severity})` : ''}`)
    lines.push(`  respond by:  ${a.sla.respondBy} (${a.sla.responseTime}, ${a.sla.clock}; ${formatRelative(new Date(a.sla.respondBy), now)})`)
    lines.push(`  on call:     ${a.escalation.primary}; escalate to ${a.escalation.escalation}`)
    lines.push(`  team:        ${a.team}`)
    lines.push(`  runbook:     ${a.runbookUrl}`)
    for (const d of a.dashboards) lines.push(`  dashboard:   ${d.title} ${d.url}`)
    lines.push(`  silence:     ${a.silenceUrl}`)
    lines.push(`  destinations: ${a.destinations.join(', ') || (a.ignored ? '(none: severity ignored)' : '(none)')}`)
    lines.push('')
  }
  if (result.incident !== undefined) lines.push(`incident: ${result.incident}`, '')
  lines.push('notifications:')
  for (const n of result.notifications) lines.push(`  ${n.destination} (${n.type}, ${n.priority}): ${JSON.stringify(n.body)}`)
  return lines.join('\n')
}
