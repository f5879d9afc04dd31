import type { CatalogDocument } from '../config/catalog-schema.js'
import { resolveSecret } from '../config/secrets.js'
import type { DestinationType } from '../enrich/types.js'
import type { DestinationLabel } from '../metrics.js'
import { createPagerDutyNotifier } from './pagerduty/notifier.js'
import type { SendResult } from './result.js'
import { createSlackNotifier } from './slack/notifier.js'

// The catalog's destinations bound to their secrets and notifiers. Built at start and on
// every catalog reload (which is also how a rotated secret file is picked up). Secrets stay
// inside the notifier closures; nothing here exposes them.

export interface BoundDestination {
  name: string
  type: DestinationType
  configured: boolean
  send: (body: unknown) => Promise<SendResult>
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
}

const notConfigured = async (): Promise<SendResult> => ({ ok: false, retryable: false, reason: 'not_configured', error: 'destination secret is not set' })

export function createDestinationRegistry (destinations: CatalogDocument['destinations'], deps: DestinationDeps): DestinationRegistry {
  const bound = new Map<string, BoundDestination>()
  const http = { fetch: deps.fetch, timeoutMs: deps.timeoutMs }
  for (const [name, d] of Object.entries(destinations)) {
    if (d.type === 'slack') {
      const webhookUrl = resolveSecret(d.webhookUrl, deps.env, deps.readFile)
      const notifier = webhookUrl !== undefined ? createSlackNotifier({ webhookUrl }, http) : undefined
      bound.set(name, { name, type: 'slack', configured: notifier !== undefined, send: notifier !== undefined ? (body) => notifier.send(body) : notConfigured })
    } else {
      const routingKey = resolveSecret(d.routingKey, deps.env, deps.readFile)
      const notifier = routingKey !== undefined ? createPagerDutyNotifier({ routingKey, eventsUrl: deps.pagerDutyEventsUrl }, http) : undefined
      bound.set(name, { name, type: 'pagerduty', configured: notifier !== undefined, send: notifier !== undefined ? (body) => notifier.send(body) : notConfigured })
    }
  }
  return {
    get: (name) => bound.get(name),
    labels: () => [...bound.values()].map((b) => ({ destination: b.name, type: b.type }))
  }
}
