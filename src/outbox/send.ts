import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { Catalog } from '../config/catalog.js'
import type { Destination } from '../config/catalog-schema.js'
import { describeIncident, renderIncidentDelivery } from '../incidents/render.js'
import { slackReplyBody } from '../incidents/slack-followups.js'
import { EscalationBody } from '../incidents/types.js'
import type { DestinationRegistry } from '../notify/destinations.js'
import type { SendResult } from '../notify/result.js'
import type { IncidentMessages } from '../notify/slack/incident-message.js'
import type { Delivery, Store } from '../store/types.js'
import { enrichQueuedWebhook } from './queued-webhook.js'

// Renders one stored delivery with the catalog and destinations in force and sends it: what
// the dispatcher calls. Bot-token Slack destinations keep one message per incident (edited in
// place, follow-ups in its thread); every other destination gets one post per notification.

export interface DeliverySenderDeps {
  store: Pick<Store, 'findIncident'>
  // Read once per send: one catalog with the destinations bound from it, never a mix.
  runtime: () => { catalog: Catalog, destinations: DestinationRegistry }
  now: () => Date
  incidentMessages: IncidentMessages
}

const escalationBody = TypeCompiler.Compile(EscalationBody)

export function createDeliverySender (deps: DeliverySenderDeps): (delivery: Delivery) => Promise<SendResult> {
  return async (delivery) => {
    const { catalog, destinations } = deps.runtime()
    const d = destinations.get(delivery.destination)
    if (d === undefined) return { ok: false, retryable: false, reason: 'not_configured', error: `destination ${delivery.destination} is not in the catalog` }
    const bot = d.slackBot
    if (slackReplyBody.Check(delivery.body)) {
      if (bot === undefined) return { ok: false, retryable: false, reason: 'client_error', error: 'a thread reply goes to bot-token Slack destinations only' }
      return await deps.incidentMessages.reply(bot, d.name, delivery.body)
    }
    const config = catalog.doc.destinations[d.name] as Destination
    const incident = renderIncidentDelivery(delivery.body, { name: d.name, config }, catalog, deps.now())
    if (incident.kind === 'invalid') return { ok: false, retryable: false, reason: 'client_error', error: incident.error }
    if (incident.kind === 'rendered') {
      // An escalation to a bot channel not told of the group before: it becomes the incident's message there.
      if (bot !== undefined && escalationBody.Check(delivery.body)) return await deps.incidentMessages.deliver(bot, d.name, delivery.body.escalation.incidentId, incident.body)
      return await d.sendRendered(() => incident.body)
    }
    // An update queued by an acknowledgement or escalation re-renders the group as last queued,
    // from that webhook's own receive time.
    const refreshedFrom = (delivery.body as { refresh?: { receivedAt?: unknown } } | null)?.refresh?.receivedAt
    const group = enrichQueuedWebhook(delivery.body, typeof refreshedFrom === 'number' ? refreshedFrom : delivery.receivedAt, catalog)
    if (group === undefined) return { ok: false, retryable: false, reason: 'client_error', error: `delivery ${delivery.id} does not hold a queued webhook; nothing to render` }
    // A throw here is the store's (logged and counted): the send is retried.
    const found = await deps.store.findIncident(group.receiver, delivery.groupKey)
    const line = describeIncident(found, group)
    const opts = {
      ...(line !== undefined ? { incident: line } : {}),
      // The Acknowledge button only where clicks come back: a bot-token Slack destination.
      ...(found !== null && bot !== undefined ? { incidentId: found.id, ...(found.acknowledgedBy !== null ? { acknowledgedBy: found.acknowledgedBy } : {}) } : {})
    }
    if (bot !== undefined && found !== null) return await deps.incidentMessages.deliver(bot, d.name, found.id, d.render(group, opts))
    return await d.send(group, opts)
  }
}
