import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AckOutcome, ApplyAcknowledgement } from '../incidents/types.js'
import type { Metrics, SlackInteractionOutcome } from '../metrics.js'
import { ACKNOWLEDGE_ACTION_ID } from '../notify/slack/render.js'
import { hasNul, NUL_PROBLEM } from '../text.js'
import { errorResponses, sendError } from './errors.js'
import { verifySlackSignature } from './slack-signature.js'

// POST /integrations/slack/interactions — Slack's interactivity request URL. Only an
// Acknowledge click does something: it goes through the acknowledgement port like every other
// acknowledgement. Slack needs an answer within 3 s and never retries an interaction, so a
// click that could not be applied is answered 200 with a text saying so (and logged and
// counted), never a 5xx. The signature covers the raw bytes, so this route (only) keeps them.

export interface SlackInteractionsOptions {
  /** Unset: the route answers 404 (interactivity is off). */
  signingSecret?: string
  /** Unset until incidents are wired: a verified click is answered "not available". */
  acknowledge: ApplyAcknowledgement
  metrics: Metrics
  now: () => Date
  /** How long a click waits for the port before answering anyway (Slack gives 3 s). */
  answerWithinMs?: number
}

export const SlackInteractionAnswer = Type.Object({
  text: Type.String({ description: 'what happened to the click, for the person who clicked' })
})

const FORM = 'application/x-www-form-urlencoded'

const OUTCOME_TEXT: Record<AckOutcome, (by: string, id: number) => string> = {
  applied: (by, id) => `Incident ${id} acknowledged by ${by}.`,
  duplicate: (_by, id) => `This acknowledgement of incident ${id} was already recorded.`,
  unknown_incident: (_by, id) => `Incident ${id} is not known to alert-enricher.`,
  no_change: (_by, id) => `Incident ${id} was already acknowledged or resolved.`
}

interface ClickPayload {
  type?: unknown
  user?: { id?: unknown, name?: unknown, username?: unknown }
  actions?: Array<{ action_id?: unknown, value?: unknown, action_ts?: unknown }>
}

export async function slackInteractionsRoutes (app: FastifyInstance, opts: SlackInteractionsOptions): Promise<void> {
  const count = (outcome: SlackInteractionOutcome): void => { opts.metrics.slackInteractions.inc({ outcome }) }
  const answerWithinMs = opts.answerWithinMs ?? 2500
  // Encapsulated in this plugin: every body arrives as the raw bytes Slack signed.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })

  app.post('/integrations/slack/interactions', {
    schema: {
      summary: 'Slack interactivity (button clicks), signed with SLACK_SIGNING_SECRET',
      description: 'Form-encoded `payload=` as Slack posts it. Verifies X-Slack-Signature (v0 HMAC-SHA256) and refuses timestamps more than 5 minutes from now. An Acknowledge click acknowledges the incident its button names. 404 while SLACK_SIGNING_SECRET is unset.',
      response: { 200: SlackInteractionAnswer, ...errorResponses(400, 401, 404, 413, 415) }
    }
  }, async (request, reply) => {
    if (opts.signingSecret === undefined) {
      count('not_enabled')
      return await sendError(reply, 404, 'not_enabled', 'Slack interactivity is off: SLACK_SIGNING_SECRET is not set')
    }
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)
    const verdict = verifySlackSignature(opts.signingSecret, {
      timestamp: header(request, 'x-slack-request-timestamp'),
      signature: header(request, 'x-slack-signature')
    }, raw, opts.now().getTime())
    if (!verdict.ok) {
      count('unauthorized')
      request.log.warn({ problem: verdict.problem }, 'Slack interaction refused: bad signature')
      return await sendError(reply, 401, 'unauthorized', verdict.problem)
    }
    const type = request.headers['content-type']?.split(';', 1)[0]?.trim().toLowerCase()
    if (type !== FORM) {
      count('bad_request')
      return await sendError(reply, 415, 'unsupported_media_type', `Content-Type must be ${FORM}, got ${JSON.stringify(request.headers['content-type'] ?? '')}`)
    }
    const payload = parsePayload(raw)
    if (typeof payload === 'string') return await badRequest(reply, payload)
    const click = payload.type === 'block_actions' ? payload.actions?.find((a) => a.action_id === ACKNOWLEDGE_ACTION_ID) : undefined
    if (click === undefined) {
      count('ignored')
      return { text: 'Nothing to do for this interaction.' }
    }
    const incidentId = typeof click.value === 'string' && /^\d{1,15}$/.test(click.value) ? Number(click.value) : undefined
    const userId = typeof payload.user?.id === 'string' ? payload.user.id : undefined
    if (incidentId === undefined) return await badRequest(reply, 'the Acknowledge button value is not an incident id')
    if (userId === undefined) return await badRequest(reply, 'payload.user.id is missing')
    // These become the acknowledgement's `by` and event id, stored: see NUL_FREE.
    const withNul = Object.entries({ 'user.id': userId, 'user.name': payload.user?.name, 'user.username': payload.user?.username, 'actions[].action_ts': click.action_ts })
      .find(([, v]) => typeof v === 'string' && hasNul(v))
    if (withNul !== undefined) return await badRequest(reply, `payload.${withNul[0]} ${NUL_PROBLEM}`)
    const name = [payload.user?.name, payload.user?.username].find((n): n is string => typeof n === 'string' && n !== '') ?? userId
    const by = `${name} (${userId})`
    const actionTs = typeof click.action_ts === 'string' ? click.action_ts : String(opts.now().getTime() / 1000)
    const applying = opts.acknowledge({
      incidentId, action: 'acknowledge', by, via: 'slack', at: opts.now().getTime(), eventId: `slack:${actionTs}:${userId}`
    })
    const result = await within(applying, answerWithinMs)
    if (result.kind === 'failed') {
      count('failed')
      request.log.error({ incidentId, err: result.message }, 'Slack acknowledgement failed')
      return { text: `Could not acknowledge incident ${incidentId}: alert-enricher failed to record it. Try again, or acknowledge in PagerDuty.` }
    }
    if (result.kind === 'late') {
      count('timeout')
      // Still running: its end is logged, so an acknowledgement that lands late is on record.
      applying.then(
        (r) => { request.log.warn({ incidentId, outcome: r.outcome }, 'Slack acknowledgement finished after the answer') },
        (err: unknown) => { request.log.error({ incidentId, err: errorMessage(err) }, 'Slack acknowledgement failed after the answer') }
      )
      return { text: `Acknowledging incident ${incidentId}… (taking longer than usual; the message updates when it is recorded)` }
    }
    count(result.outcome)
    request.log.info({ incidentId, outcome: result.outcome, userId }, 'Slack acknowledgement')
    return { text: OUTCOME_TEXT[result.outcome](by, incidentId) }
  })

  async function badRequest (reply: FastifyReply, message: string): Promise<FastifyReply> {
    count('bad_request')
    return await sendError(reply, 400, 'invalid_payload', message)
  }
}

function header (request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name]
  return typeof v === 'string' ? v : undefined
}

function parsePayload (raw: Buffer): ClickPayload | string {
  const field = new URLSearchParams(raw.toString('utf8')).get('payload')
  if (field === null) return 'the form has no payload field'
  try {
    const json = JSON.parse(field) as unknown
    return typeof json === 'object' && json !== null && !Array.isArray(json) ? json as ClickPayload : 'payload is not a JSON object'
  } catch {
    return 'payload is not valid JSON'
  }
}

type Within = { kind: 'done', outcome: AckOutcome } | { kind: 'failed', message: string } | { kind: 'late' }

// The port's answer, or `late` after ms (bounded: the timer is cleared either way).
async function within (p: Promise<{ outcome: AckOutcome }>, ms: number): Promise<Within> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<Within>((resolve) => { timer = setTimeout(() => resolve({ kind: 'late' }), ms) })
  const done = p.then(
    (r): Within => ({ kind: 'done', outcome: r.outcome }),
    (err: unknown): Within => ({ kind: 'failed', message: errorMessage(err) })
  )
  try {
    return await Promise.race([done, late])
  } finally {
    clearTimeout(timer)
  }
}

function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
