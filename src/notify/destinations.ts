import type { CatalogDocument, Destination, SecretRef } from '../config/catalog-schema.js'
import { resolveSecret } from '../config/secrets.js'
import type { DestinationType, EnrichedGroup } from '../enrich/types.js'
import type { DestinationLabel } from '../metrics.js'
import { createPagerDutyNotifier } from './pagerduty/notifier.js'
import { renderBody, type RenderOptions } from './plan.js'
import type { SendResult } from './result.js'
import { createSlackBotNotifier, type SlackBotNotifier } from './slack/bot-notifier.js'
import { createSlackNotifier } from './slack/notifier.js'
import type { Notifier } from './types.js'

// The catalog's destinations bound to their secrets and notifiers. Built at start and on
// every catalog reload (which is also how a rotated secret file is picked up). Secrets stay
// inside the notifier closures; nothing here exposes them.

export interface BoundDestination {
  name: string
  type: DestinationType
  configured: boolean
  /** Renders the routed sub-group for this destination and sends it, with its incident's state. */
  send: (group: EnrichedGroup, opts?: Pick<RenderOptions, 'incident' | 'incidentId' | 'acknowledgedBy'>) => Promise<SendResult>
  /** Renders the routed sub-group for this destination, as `send` would send it. */
  render: (group: EnrichedGroup, opts?: Pick<RenderOptions, 'incident' | 'incidentId' | 'acknowledgedBy'>) => unknown
  /** Sends a body rendered by the caller for this destination's configuration (incidents). */
  sendRendered: (render: (config: Destination) => unknown) => Promise<SendResult>
  /** Bot-token Slack destinations: chat.update and thread replies, for per-incident messages. */
  slackBot?: SlackBotNotifier
}

export interface DestinationRegistry {
  get: (name: string) => BoundDestination | undefined
  labels: () => DestinationLabel[]
}

export interface DestinationDeps {
  env: Record<string, string | undefined>
  readFile: (path: string) => string
  fetch: typeof fetch
  timeoutMs: number
  pagerDutyEventsUrl: string
  slackApiUrl: string
  now: () => Date
  onSecretError?: (message: string) => void
}

const notConfigured = async (): Promise<SendResult> => ({ ok: false, retryable: false, reason: 'not_configured', error: 'destination secret is not set' })

export function createDestinationRegistry (destinations: CatalogDocument['destinations'], deps: DestinationDeps): DestinationRegistry {
  const bound = new Map<string, BoundDestination>()
  const http = { fetch: deps.fetch, timeoutMs: deps.timeoutMs }
  for (const [name, d] of Object.entries(destinations)) {
    let slackBot: SlackBotNotifier | undefined
    const notifier = d.type === 'pagerduty'
      ? bindSecret(d.routingKey, (routingKey) => createPagerDutyNotifier({ routingKey, eventsUrl: deps.pagerDutyEventsUrl }, http))
      : 'botToken' in d
        ? bindSecret(d.botToken, (token) => (slackBot = createSlackBotNotifier({ apiUrl: deps.slackApiUrl, token, channelId: d.channelId }, http)))
        : bindSecret(d.webhookUrl, (webhookUrl) => createSlackNotifier({ webhookUrl }, http))
    const render: BoundDestination['render'] = (group, opts = {}) => renderBody(group, name, d, { now: deps.now(), ...opts })
    bound.set(name, {
      name,
      type: d.type,
      configured: notifier !== undefined,
      render,
      send: notifier === undefined ? notConfigured : async (group, opts = {}) => await notifier.send(render(group, opts)),
      sendRendered: notifier === undefined ? notConfigured : async (render) => await notifier.send(render(d)),
      ...(slackBot !== undefined ? { slackBot } : {})
    })
  }

  // An unreadable secret file leaves the destination unconfigured (skipped, and logged by the
  // caller) rather than refusing to start or reload: the other destinations still page.
  function bindSecret (ref: SecretRef, create: (secret: string) => Notifier): Notifier | undefined {
    try {
      const secret = resolveSecret(ref, deps.env, deps.readFile)
      return secret !== undefined ? create(secret) : undefined
    } catch (err) {
      deps.onSecretError?.(err instanceof Error ? err.message : String(err))
      return undefined
    }
  }
  return {
    get: (name) => bound.get(name),
    labels: () => [...bound.values()].map((b) => ({ destination: b.name, type: b.type }))
  }
}
