import { createHmac, timingSafeEqual } from 'node:crypto'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { NUL_FREE } from '../text.js'

// PagerDuty webhooks v3, the pure part: signature verification over the raw body and the
// translation of an event into what we act on. No I/O; the route (routes/pagerduty-webhook.ts)
// answers HTTP and calls the acknowledgement port.

export type SignatureCheck = 'valid' | 'missing' | 'no_v1' | 'mismatch'

const V1_HEX = /^[0-9a-f]{64}$/i

/**
 * `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]` holds one signature per active secret during a
 * rotation; only `v1` (HMAC-SHA256 of the raw body) is defined. Valid if any v1 signature
 * matches any of our secrets. Every pair is compared (no early exit) with timingSafeEqual on
 * equal-length digests, so timing says nothing about which secret or how many bytes matched.
 */
export function verifySignature (rawBody: Buffer, header: string | undefined, secrets: readonly string[]): SignatureCheck {
  if (header === undefined || header.trim() === '') return 'missing'
  const v1 = header.split(',').map((part) => part.trim())
    .filter((part) => part.startsWith('v1='))
    .map((part) => part.slice(3))
  if (v1.length === 0) return 'no_v1'
  const expected = secrets.map((secret) => createHmac('sha256', secret).update(rawBody).digest())
  let matched = false
  for (const hex of v1) {
    // A malformed value (wrong length, not hex) is compared as zeros and can never match:
    // the same work as a real one, and no length error from timingSafeEqual.
    const wellFormed = V1_HEX.test(hex)
    const given = wellFormed ? Buffer.from(hex, 'hex') : Buffer.alloc(32)
    for (const digest of expected) {
      const equal = timingSafeEqual(given, digest)
      if (equal && wellFormed) matched = true
    }
  }
  return matched ? 'valid' : 'mismatch'
}

// Only the fields we read; PagerDuty sends many more (see test/fixtures/pagerduty/). Those we
// store (id, incident_key, the agent) refuse a NUL (see NUL_FREE): such an event is unrecognized.
const Stored = Type.String({ pattern: NUL_FREE })
const Reference = Type.Object({ id: Type.Optional(Stored), summary: Type.Optional(Stored) })

export const PagerDutyWebhookBody = Type.Object({
  event: Type.Object({
    id: Type.String({ minLength: 1, maxLength: 200, pattern: NUL_FREE }),
    event_type: Type.String({ minLength: 1, description: 'e.g. incident.acknowledged; types we do not use are answered 200 and ignored' }),
    resource_type: Type.Optional(Type.String()),
    occurred_at: Type.Optional(Type.String({ description: 'RFC 3339' })),
    agent: Type.Optional(Type.Union([Reference, Type.Null()], { description: 'who acted (user_reference); null when PagerDuty itself did' })),
    data: Type.Object({
      incident_key: Type.Optional(Type.Union([Stored, Type.Null()], { description: 'the Events v2 dedup_key that opened the incident: ours' }))
    })
  })
}, { description: 'PagerDuty webhooks v3 event (one per POST); unknown fields are accepted' })
export type PagerDutyWebhookBody = Static<typeof PagerDutyWebhookBody>

export const PagerDutyEvent = Type.Object({
  eventId: Type.String(),
  eventType: Type.String(),
  incidentKey: Type.Union([Type.String(), Type.Null()]),
  /** Unix ms; null when absent or not a timestamp. */
  occurredAt: Type.Union([Type.Number(), Type.Null()]),
  /** Who acted: the agent's summary (its name), else its id; null when PagerDuty itself did. */
  agent: Type.Union([Type.Object({ name: Type.String() }), Type.Null()])
})
export type PagerDutyEvent = Static<typeof PagerDutyEvent>

/** The event, or undefined when the JSON is not shaped like a v3 event (answered 2xx, ignored). */
export function parseEvent (body: unknown): PagerDutyEvent | undefined {
  if (!Value.Check(PagerDutyWebhookBody, body)) return undefined
  const { event } = body
  const occurredAt = event.occurred_at !== undefined ? Date.parse(event.occurred_at) : NaN
  // Empty strings count as absent: the acknowledgement port takes only non-empty names and keys.
  const agentName = [event.agent?.summary, event.agent?.id].find((n) => n !== undefined && n !== '')?.slice(0, 200)
  const incidentKey = event.data.incident_key
  return {
    eventId: event.id,
    eventType: event.event_type,
    incidentKey: incidentKey === undefined || incidentKey === null || incidentKey === '' ? null : incidentKey,
    occurredAt: Number.isFinite(occurredAt) ? occurredAt : null,
    agent: agentName !== undefined ? { name: agentName } : null
  }
}

export const PAGERDUTY_ACTIONS = {
  'incident.acknowledged': 'acknowledge',
  'incident.unacknowledged': 'unacknowledge',
  'incident.resolved': 'resolve'
} as const

export type PagerDutyAction = typeof PAGERDUTY_ACTIONS[keyof typeof PAGERDUTY_ACTIONS]

export function actionFor (eventType: string): PagerDutyAction | undefined {
  return Object.hasOwn(PAGERDUTY_ACTIONS, eventType) ? PAGERDUTY_ACTIONS[eventType as keyof typeof PAGERDUTY_ACTIONS] : undefined
}
