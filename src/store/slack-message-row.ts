import type { SlackMessage } from './types.js'

// A slack_messages row as both engines store it (times in Unix ms), and its contract form.
export interface SlackMessageRow {
  incident_id: number, destination: string, channel: string, ts: string, posted_at: number, last_update_at: number
}

export function toSlackMessage (r: SlackMessageRow): SlackMessage {
  return { incidentId: r.incident_id, destination: r.destination, channel: r.channel, ts: r.ts, postedAt: r.posted_at, lastUpdateAt: r.last_update_at }
}
