import { randomBytes } from 'node:crypto'
import { PAGERDUTY_MAX_EVENT_BYTES } from '../../src/notify/pagerduty/render.js'
import { startFakeServer, type FakeReply, type FakeServer } from './fake-http.js'

// A fake PagerDuty Events API v2 (/v2/enqueue) that refuses what PagerDuty refuses
// (contracts.md): a body that is not application/json, routing_key length, event_action,
// dedup_key, the required trigger payload fields (blank counts as missing), severity values,
// links and images that are not web URLs, and events over 512 KB, with PagerDuty's 400 body
// shape. It refuses them in every mode: PagerDuty checks an event before it fails or throttles.
// "512 KB" is read as 512,000 bytes, the renderer's own number (one constant for both).

export interface FakePagerDutyOptions {
  // Enforce a trailing-60 s limit per routing key (PagerDuty: ~120/min). Off by default.
  eventsPerMinute?: number
  now?: () => number
}

const MAX_EVENT_BYTES = PAGERDUTY_MAX_EVENT_BYTES
const ACTIONS = new Set(['trigger', 'acknowledge', 'resolve'])
const SEVERITIES = new Set(['critical', 'error', 'warning', 'info'])

export async function startFakePagerDuty (opts: FakePagerDutyOptions = {}): Promise<FakeServer> {
  const now = opts.now ?? Date.now
  const sent = new Map<string, number[]>()
  const server = await startFakeServer({
    validate: ({ method, path, headers, body }): FakeReply | undefined => {
      if (method !== 'POST' || path !== '/v2/enqueue') return { status: 404, body: JSON.stringify({ status: 'not found', message: 'Not Found' }) }
      const errors = !isJson(headers['content-type'])
        ? [`Content-Type must be application/json, got ${JSON.stringify(headers['content-type'] ?? '')}`]
        : Buffer.byteLength(body) > MAX_EVENT_BYTES ? [`Event is larger than ${MAX_EVENT_BYTES} bytes`] : validateBody(body)
      if (errors.length > 0) return { status: 400, body: JSON.stringify({ status: 'invalid event', message: 'Event object is invalid', errors }), detail: errors.join('; ') }
      return undefined
    },
    handle: ({ body }) => {
      const event = JSON.parse(body) as { routing_key: string, dedup_key?: string }
      if (opts.eventsPerMinute !== undefined) {
        const t = now()
        const recent = (sent.get(event.routing_key) ?? []).filter((s) => t - s < 60_000)
        if (recent.length >= opts.eventsPerMinute) return { status: 429, body: THROTTLED }
        sent.set(event.routing_key, [...recent, t])
      }
      const dedupKey = event.dedup_key ?? randomBytes(16).toString('hex')
      return { status: 202, body: JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: dedupKey }), accepted: event }
    },
    statusBody: (code) => ({ body: code === 400 ? JSON.stringify({ status: 'invalid event', message: 'Event object is invalid', errors: ['Bad request'] }) : JSON.stringify({ status: 'error', message: `HTTP ${code}` }) }),
    rateLimitBody: () => ({ body: THROTTLED })
  })
  return { ...server, url: `${server.url}/v2/enqueue` }
}

const THROTTLED = JSON.stringify({ status: 'throttle event', message: 'Requests for this service are arriving too quickly. Please retry later.' })

function validateBody (body: string): string[] {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    return ['Event object is not valid JSON']
  }
  return validatePagerDutyEvent(json)
}

// [] when PagerDuty would accept the event (routing_key included).
export function validatePagerDutyEvent (json: unknown): string[] {
  if (!isObject(json)) return ['Event object must be a JSON object']
  const errors: string[] = []
  if (typeof json.routing_key !== 'string' || json.routing_key.length !== 32) {
    errors.push("Length of 'routing_key' is incorrect (should be 32 characters)")
  }
  if (typeof json.event_action !== 'string' || !ACTIONS.has(json.event_action)) {
    errors.push("'event_action' must be one of: trigger, acknowledge, resolve")
  }
  if (json.dedup_key !== undefined && (typeof json.dedup_key !== 'string' || json.dedup_key.length > 255 || json.dedup_key.length === 0)) {
    errors.push("'dedup_key' must be a string of at most 255 characters")
  }
  if ((json.event_action === 'acknowledge' || json.event_action === 'resolve') && typeof json.dedup_key !== 'string') {
    errors.push("'dedup_key' is required for acknowledge and resolve events")
  }
  if (json.event_action === 'trigger') errors.push(...triggerPayload(json.payload))
  if (json.links !== undefined) {
    if (!Array.isArray(json.links) || !json.links.every((l) => isObject(l) && isWebUrl(l.href) && optionalString(l.text))) {
      errors.push("'links' must be a list of {href (http or https URL), text}")
    }
  }
  if (json.images !== undefined) {
    if (!Array.isArray(json.images) || !json.images.every((i) => isObject(i) && isWebUrl(i.src, ['https:']) && (i.href === undefined || isWebUrl(i.href)) && optionalString(i.alt))) {
      errors.push("'images' must be a list of {src (https URL), href (http or https URL), alt}")
    }
  }
  if (!optionalString(json.client)) errors.push("'client' must be a string")
  if (json.client_url !== undefined && !isWebUrl(json.client_url)) errors.push("'client_url' must be an http or https URL")
  return errors
}

function triggerPayload (payload: unknown): string[] {
  if (!isObject(payload)) return ["'payload' is required for trigger events"]
  const errors: string[] = []
  if (typeof payload.summary !== 'string' || payload.summary.trim() === '') errors.push("'payload.summary' is missing or blank")
  else if (payload.summary.length > 1024) errors.push("'payload.summary' must be at most 1024 characters")
  if (typeof payload.source !== 'string' || payload.source.trim() === '') errors.push("'payload.source' is missing or blank")
  if (typeof payload.severity !== 'string' || !SEVERITIES.has(payload.severity)) {
    errors.push("'payload.severity' must be one of: critical, error, warning, info")
  }
  if (payload.timestamp !== undefined && (typeof payload.timestamp !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(payload.timestamp) || Number.isNaN(Date.parse(payload.timestamp)))) {
    errors.push("'payload.timestamp' must be an ISO 8601 timestamp")
  }
  for (const k of ['component', 'group', 'class'] as const) {
    if (payload[k] !== undefined && typeof payload[k] !== 'string') errors.push(`'payload.${k}' must be a string`)
  }
  if (payload.custom_details !== undefined && !isObject(payload.custom_details)) errors.push("'payload.custom_details' must be an object")
  return errors
}

function isJson (contentType: string | undefined): boolean {
  return contentType?.split(';', 1)[0]?.trim().toLowerCase() === 'application/json'
}

function isWebUrl (v: unknown, schemes: readonly string[] = ['http:', 'https:']): boolean {
  if (typeof v !== 'string' || !URL.canParse(v)) return false
  return schemes.includes(new URL(v).protocol)
}

function optionalString (v: unknown): boolean {
  return v === undefined || typeof v === 'string'
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
