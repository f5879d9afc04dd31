import type { PriorityName, SlackDestination } from '../../config/catalog-schema.js'
import type { EnrichedAlert, EnrichedGroup } from '../../enrich/types.js'
import { formatRelative } from '../../text.js'
import { formatUtc, identifyingLabels, labelValues, viewGroup, type GroupView } from '../group-view.js'
import { distinct, escapeTruncate, oneLine, truncate } from '../text.js'

// Block Kit message for one group and one Slack destination. Every value that came from an
// alert or the catalog goes through escapeTruncate exactly once, so it is mrkdwn-escaped and
// within its limit; the limits below are Slack's (contracts.md), enforced by construction.

export interface PlainText { type: 'plain_text', text: string, emoji?: boolean }
export interface Mrkdwn { type: 'mrkdwn', text: string }
// A link button (url) or an interactive one (value, sent back to /integrations/slack/interactions).
export interface SlackButton { type: 'button', text: PlainText, url?: string, value?: string, action_id: string, style?: 'primary' | 'danger' }
export type SlackBlock =
  | { type: 'header', text: PlainText }
  | { type: 'section', text?: Mrkdwn, fields?: Mrkdwn[] }
  | { type: 'context', elements: Mrkdwn[] }
  | { type: 'actions', elements: SlackButton[] }
  | { type: 'divider' }
export interface SlackMessage { text: string, blocks: SlackBlock[] }

export interface SlackRenderTarget { name: string, channel: string }

// The channel a message names: its configured #name, else the bot form's channel id, else the destination id.
export function slackChannelLabel (id: string, dest: SlackDestination): string {
  return dest.channel ?? ('channelId' in dest ? dest.channelId : id)
}

export interface SlackRenderOptions {
  now: Date
  /** The incident's state line ("Acknowledged by … within SLA", "Not acknowledged: escalated …"). */
  incident?: string
  /** The incident this message shows (bot-token destinations): enables the Acknowledge button. */
  incidentId?: number
  /** Who acknowledged it, shown as "Acknowledged by @name" instead of the button. */
  acknowledgedBy?: string
}

// The action_id of the Acknowledge button; its value is the incident id.
export const ACKNOWLEDGE_ACTION_ID = 'acknowledge'

const LIMIT = { header: 150, sectionText: 3000, field: 2000, buttonText: 75, url: 3000, fallback: 1000, actions: 25, contextText: 3000 }
const LIST = { alerts: 20, lineName: 80, lineLabels: 240, lineSummary: 160 }

const PRIORITY_ICON: Record<PriorityName, string> = { P0: '🔴', P1: '🟠', P2: '🟡', P3: '🔵' }
const RESOLVED_ICON = '✅'

export function renderSlackMessage (group: EnrichedGroup, dest: SlackRenderTarget, opts: SlackRenderOptions): SlackMessage {
  const view = viewGroup(group)
  const resolved = group.status === 'resolved'
  const icon = resolved ? RESOLVED_ICON : PRIORITY_ICON[group.priority]
  const status = resolved ? 'RESOLVED' : 'FIRING'
  const names = view.names
  const nameText = names.length <= 3 ? names.join(', ') : `${names.slice(0, 3).join(', ')} +${names.length - 3}`
  // How many need attention: the firing alerts (all of them once resolved). Alertmanager's
  // truncated alerts may be either, so they show as "+" rather than in the number.
  const count = resolved ? group.alerts.length : view.firing
  const more = group.truncatedAlerts > 0 ? '+' : ''
  const title = `${icon} ${group.priority} ${status}: ${oneLine(truncate(nameText, 400))}${count > 1 || more !== '' ? ` (${count}${more})` : ''}`
  const deadline = view.deadline
  const summary = oneLine(truncate(view.summary, 2000))

  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: escapeTruncate(title, LIMIT.header), emoji: true } },
    summarySection(view, resolved),
    { type: 'section', fields: fields(view, opts.now) },
    ...alertList(view)
  ]
  if (opts.incident !== undefined) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: escapeTruncate(opts.incident, LIMIT.sectionText) } })
  const acknowledged = opts.acknowledgedBy !== undefined && opts.acknowledgedBy !== ''
  const ack = opts.incidentId !== undefined && !resolved && !acknowledged ? [acknowledgeButton(opts.incidentId)] : []
  const buttons = [...ack, ...linkButtons(view, ack.length === 0)].slice(0, LIMIT.actions)
  if (buttons.length > 0) blocks.push({ type: 'actions', elements: buttons })
  if (acknowledged) {
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `👤 Acknowledged by @${escapeTruncate(oneLine(opts.acknowledgedBy ?? ''), 200)}` }] })
  }
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: contextLine(group, dest) }] })

  const due = deadline === null ? '' : ` · respond by ${formatUtc(deadline)} (${formatRelative(deadline, opts.now)})`
  const text = escapeTruncate(`${icon} [${group.priority}] ${status}: ${nameText} — ${summary}${due}`, LIMIT.fallback)
  return { text, blocks }
}

function summarySection (view: GroupView, resolved: boolean): SlackBlock {
  const head = resolved ? `${RESOLVED_ICON} *RESOLVED* — ` : ''
  const summary = `${head}*${escapeTruncate(oneLine(truncate(view.summary, 1000)), 1000)}*`
  const description = view.description
  const rest = LIMIT.sectionText - summary.length - 1
  const text = description === null ? summary : `${summary}\n${escapeTruncate(description, rest)}`
  return { type: 'section', text: { type: 'mrkdwn', text } }
}

function fields (view: GroupView, now: Date): Mrkdwn[] {
  const { group, lead, firing, resolved, deadline } = view
  const out: Array<[string, string]> = [['Priority', `${PRIORITY_ICON[group.priority]} ${group.priority}`]]
  if (deadline !== null) out.push(['Respond by', `${formatUtc(deadline)}\n${formatRelative(deadline, now)}`])
  out.push(['Team', distinct(group.alerts.map((a) => a.team)).join(', ')])
  if (lead !== undefined) out.push(['Escalation', `${lead.escalation.primary} → ${lead.escalation.escalation}`])
  const severities = distinct(group.alerts.map((a) => a.severity).filter((s): s is string => s !== null && s !== ''))
  if (severities.length > 0) out.push(['Severity', severities.join(', ')])
  const where = [...labelValues(group, 'service'), ...labelValues(group, 'namespace').map((n) => `ns ${n}`)]
  if (where.length > 0) out.push(['Service / namespace', where.join(', ')])
  out.push(['Alerts', `${firing} firing, ${resolved} resolved${group.truncatedAlerts > 0 ? `, ${group.truncatedAlerts} truncated by Alertmanager` : ''}`])
  // Only the value is escaped; the bold title is ours. Section fields: at most 10.
  return out.slice(0, 10).map(([title, value]) => ({ type: 'mrkdwn', text: `*${title}*\n${escapeTruncate(value, LIMIT.field - title.length - 3)}` }))
}

// The first LIST.alerts alerts, one line each, packed into as few sections as fit; the rest
// as "+N more". Bounded whatever the group size: at most 20 lines of ≤ ~500 chars.
function alertList (view: GroupView): SlackBlock[] {
  const { group, sorted } = view
  const shown = sorted.slice(0, LIST.alerts)
  const commonSummary = view.summary
  const sections: string[] = []
  let current = '*Alerts*'
  for (const alert of shown) {
    const line = alertLine(alert, group, commonSummary)
    if (current.length + 1 + line.length > LIMIT.sectionText) {
      sections.push(current)
      current = line
    } else {
      current += '\n' + line
    }
  }
  sections.push(current)
  const blocks: SlackBlock[] = sections.map((text) => ({ type: 'section', text: { type: 'mrkdwn', text } }))
  const hidden = sorted.length - shown.length + group.truncatedAlerts
  if (hidden > 0) {
    const rest = sorted.slice(LIST.alerts)
    const firingRest = rest.filter((a) => a.status === 'firing').length
    const parts = [`${firingRest} firing`, `${rest.length - firingRest} resolved`]
    if (group.truncatedAlerts > 0) parts.push(`${group.truncatedAlerts} not sent by Alertmanager`)
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `+${hidden} more: ${parts.join(', ')}` }] })
  }
  return blocks
}

function alertLine (alert: EnrichedAlert, group: EnrichedGroup, commonSummary: string): string {
  const icon = alert.status === 'firing' ? '🔥' : RESOLVED_ICON
  const labels = identifyingLabels(alert, group).map(([k, v]) => `${k}=${truncate(v, 100)}`).join(' ')
  let line = `${icon} *${escapeTruncate(oneLine(truncate(alert.alertname, 1000)), LIST.lineName)}*`
  if (alert.priority !== group.priority) line += ` ${alert.priority}`
  if (alert.status === 'resolved') line += ' resolved'
  if (labels !== '') line += ` · ${escapeTruncate(oneLine(labels), LIST.lineLabels)}`
  if (alert.summary !== '' && alert.summary !== commonSummary) {
    line += ` — ${escapeTruncate(oneLine(truncate(alert.summary, 1000)), LIST.lineSummary)}`
  }
  return line
}

const BUTTON_ICON = { runbook: '📖', dashboard: '📊', silence: '🔕', source: '🔎' }

function acknowledgeButton (incidentId: number): SlackButton {
  return {
    type: 'button',
    text: { type: 'plain_text', text: '✋ Acknowledge', emoji: true },
    action_id: ACKNOWLEDGE_ACTION_ID,
    value: String(incidentId),
    style: 'primary'
  }
}

// A button whose URL Slack would refuse (too long, not http) is dropped, never sent. The
// runbook is the primary action unless an Acknowledge button already is.
function linkButtons ({ group, links }: GroupView, runbookPrimary: boolean): SlackButton[] {
  return links
    .filter((l) => l.url.length <= LIMIT.url && /^https?:\/\/\S+$/i.test(l.url))
    .slice(0, LIMIT.actions)
    .map((l, i) => ({
      type: 'button',
      text: { type: 'plain_text', text: escapeTruncate(`${BUTTON_ICON[l.kind]} ${oneLine(l.title)}`, LIMIT.buttonText), emoji: true },
      url: l.url,
      action_id: `${l.kind}-${i}`,
      ...(runbookPrimary && l.kind === 'runbook' && group.status === 'firing' ? { style: 'primary' as const } : {})
    }))
}

function contextLine (group: EnrichedGroup, dest: SlackRenderTarget): string {
  const started = group.alerts.map((a) => a.startsAt).sort()[0]
  const parts = [
    'alert-enricher',
    `receiver ${truncate(group.receiver, 100)}`,
    `to ${truncate(dest.channel, 100)}`,
    `group ${group.groupKeyHash.slice(0, 12)}`
  ]
  if (started !== undefined && !Number.isNaN(Date.parse(started))) parts.push(`started ${formatUtc(new Date(started))}`)
  return escapeTruncate(parts.join(' · '), LIMIT.sectionText)
}
