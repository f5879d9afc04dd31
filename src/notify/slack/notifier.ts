import { classifyHttpResult, postJson, scrub } from '../http.js'
import type { Notifier, NotifierDeps } from '../types.js'

// Slack incoming webhook. The URL is the secret: it is only ever passed to fetch, and scrubbed
// (whole, and its path parts) from anything the service echoes back.

export interface SlackNotifierConfig { webhookUrl: string }

export function createSlackNotifier (cfg: SlackNotifierConfig, deps: NotifierDeps): Notifier {
  const secrets = webhookSecrets(cfg.webhookUrl)
  const now = deps.now ?? (() => new Date())
  return {
    async send (body) {
      const outcome = await postJson(cfg.webhookUrl, body, { fetch: deps.fetch, timeoutMs: deps.timeoutMs })
      if (outcome.kind === 'response' && outcome.status >= 200 && outcome.status < 300) {
        const rejection = slackRejection(outcome.text)
        if (rejection === null) return { ok: true, status: outcome.status }
        // A 2xx that is not "ok": Slack refused the message; sending it again won't change that.
        return { ok: false, retryable: false, reason: 'rejected', status: outcome.status, error: scrub(`Slack said: ${rejection}`, secrets) }
      }
      return classifyHttpResult(outcome, { now: now(), secrets, describe: slackErrorText })
    }
  }
}

// Incoming webhooks answer the bare text `ok`; Web API style answers are JSON {ok, error}.
function slackRejection (text: string): string | null {
  const t = text.trim()
  if (t === 'ok') return null
  const json = parseJson(t) as { ok?: unknown, error?: unknown } | undefined
  if (json?.ok === true) return null
  if (typeof json?.error === 'string') return json.error
  return t === '' ? 'empty response' : t
}

// Slack error bodies are a code ("invalid_blocks") or JSON with an `error` field.
function slackErrorText (text: string): string {
  const json = parseJson(text.trim()) as { error?: unknown } | undefined
  return typeof json?.error === 'string' ? json.error : text
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

// The whole URL, its path, and each long path segment (the token part of /services/T/B/token).
export function webhookSecrets (webhookUrl: string): string[] {
  const out = [webhookUrl]
  try {
    const u = new URL(webhookUrl)
    if (u.pathname.length > 1) out.push(u.pathname + u.search)
    out.push(...u.pathname.split('/').filter((s) => s.length >= 8))
    if (u.search.length > 8) out.push(u.search.slice(1))
  } catch {
    // Not a URL: the whole string is all we can scrub.
  }
  return out
}
