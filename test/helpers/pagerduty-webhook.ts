import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import { AcknowledgementRequest, type AcknowledgementResult, type ApplyAcknowledgement } from '../../src/incidents/types.js'
import { REPO } from './app.js'

// PagerDuty webhooks v3 as PagerDuty sends them: payloads shaped like PagerDuty's documented
// examples (test/fixtures/pagerduty, ids made up) and the signature, written here independently of
// src/ so a mistake there cannot be mirrored: `v1=` + hex HMAC-SHA256(secret, raw body), one
// per active secret, comma-separated.

export const PAGERDUTY_FIXTURES = join(REPO, 'test/fixtures/pagerduty')
export const PAGERDUTY_EVENT_TYPES = ['incident.acknowledged', 'incident.unacknowledged', 'incident.resolved'] as const

/** The raw text of a fixture, e.g. `incident.acknowledged`. */
export function pagerDutyFixtureText (eventType: typeof PAGERDUTY_EVENT_TYPES[number]): string {
  return readFileSync(join(PAGERDUTY_FIXTURES, `${eventType}.json`), 'utf8')
}

interface EventOverrides { id?: string, eventType?: string, incidentKey?: string | null, agent?: { id: string, summary: string } | null }

/** A fixture event with fields replaced, serialised compactly (as PagerDuty sends it). */
export function pagerDutyEventBody (eventType: typeof PAGERDUTY_EVENT_TYPES[number], o: EventOverrides = {}): string {
  const doc = JSON.parse(pagerDutyFixtureText(eventType)) as { event: Record<string, unknown> & { data: Record<string, unknown> } }
  const { event } = doc
  if (o.id !== undefined) event.id = o.id
  if (o.eventType !== undefined) event.event_type = o.eventType
  if (o.incidentKey !== undefined) event.data.incident_key = o.incidentKey
  if (o.agent !== undefined) event.agent = o.agent === null ? null : { ...o.agent, type: 'user_reference' }
  return JSON.stringify(doc)
}

/** The X-PagerDuty-Signature value for `body`, one v1 signature per secret. */
export function signPagerDuty (body: string | Buffer, ...secrets: string[]): string {
  return secrets.map((secret) => `v1=${createHmac('sha256', secret).update(body).digest('hex')}`).join(',')
}

/**
 * A recording stand-in for the incident store's applyAcknowledgement: it knows the dedup keys
 * it is given (state `triggered`), deduplicates by eventId as the real one must, and answers
 * like the port contract says. A request that breaks the port's schema throws (the route then
 * answers 503, failing any test that expects 2xx); `failWith` makes every call throw (store down).
 */
export function createRecordingAcknowledgements (known: readonly string[]) {
  const states = new Map<string, 'triggered' | 'acknowledged' | 'resolved'>(known.map((k) => [k, 'triggered']))
  const seenEvents = new Set<string>()
  const calls: AcknowledgementRequest[] = []
  let failure: Error | undefined
  const acknowledge: ApplyAcknowledgement = async (req) => {
    calls.push(req)
    const problems = [...Value.Errors(AcknowledgementRequest, req)].map((e) => `${e.path}: ${e.message}`)
    if ((req.dedupKey === undefined) === (req.incidentId === undefined)) problems.push('exactly one of dedupKey and incidentId')
    // Thrown, so the caller answers 503 and the test expecting 2xx fails loudly.
    if (problems.length > 0) throw new Error(`port contract violated: ${problems.join('; ')}`)
    if (failure !== undefined) throw failure
    if (req.eventId !== undefined && seenEvents.has(req.eventId)) return { outcome: 'duplicate' }
    const state = req.dedupKey !== undefined ? states.get(req.dedupKey) : undefined
    if (state === undefined || req.dedupKey === undefined) return { outcome: 'unknown_incident' }
    if (req.eventId !== undefined) seenEvents.add(req.eventId)
    const next = req.action === 'acknowledge' ? 'acknowledged' : req.action === 'resolve' ? 'resolved' : 'triggered'
    if (state === next || state === 'resolved') return { outcome: 'no_change' } satisfies AcknowledgementResult
    states.set(req.dedupKey, next)
    return { outcome: 'applied' }
  }
  return {
    acknowledge,
    calls,
    state: (dedupKey: string) => states.get(dedupKey),
    failWith: (err: Error | undefined) => { failure = err }
  }
}
