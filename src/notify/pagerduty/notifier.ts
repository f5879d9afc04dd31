import { classifyHttpResult, postJson } from '../http.js'
import type { Notifier, NotifierDeps } from '../types.js'
import type { PagerDutyEvent } from './render.js'

// PagerDuty Events API v2. The routing key is added here, at send time, and nowhere else; it
// is scrubbed from anything PagerDuty echoes back.

export const DEFAULT_PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue'

export interface PagerDutyNotifierConfig { routingKey: string, eventsUrl: string }

export function createPagerDutyNotifier (cfg: PagerDutyNotifierConfig, deps: NotifierDeps): Notifier {
  const now = deps.now ?? (() => new Date())
  return {
    async send (event) {
      if (typeof event !== 'object' || event === null || Array.isArray(event)) {
        return { ok: false, retryable: false, reason: 'client_error', error: 'event body is not a JSON object' }
      }
      const body = { ...(event as Partial<PagerDutyEvent>), routing_key: cfg.routingKey }
      const outcome = await postJson(cfg.eventsUrl, body, { fetch: deps.fetch, timeoutMs: deps.timeoutMs })
      return classifyHttpResult(outcome, { now: now(), secrets: [cfg.routingKey], describe: pagerDutyErrorText })
    }
  }
}

// 400 bodies: {status, message, errors: [...]}; the errors say which field was wrong.
function pagerDutyErrorText (text: string): string {
  let json: { message?: unknown, errors?: unknown } | undefined
  try {
    json = JSON.parse(text) as typeof json
  } catch {
    return text
  }
  const message = typeof json?.message === 'string' ? json.message : ''
  const errors = Array.isArray(json?.errors) ? json.errors.filter((e): e is string => typeof e === 'string') : []
  const joined = [message, ...errors].filter((s) => s !== '').join('; ')
  return joined === '' ? text : joined
}
