import { Type, type Static } from '@sinclair/typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Delivery, DeliveryState, type Store } from '../store/types.js'
import { errorResponses, sendError } from './errors.js'

// Admin view of the outbox. Bodies are returned as stored: they never hold secrets (the
// Slack URL / PagerDuty routing key are added at send time), and lastError is secret-free
// by the SendResult contract.

export const DeliveriesQuery = Type.Object({
  state: Type.Optional(DeliveryState),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  offset: Type.Integer({ minimum: 0, default: 0 })
}, { additionalProperties: false })
export type DeliveriesQuery = Static<typeof DeliveriesQuery>

export const DeliveryIdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) })
export type DeliveryIdParams = Static<typeof DeliveryIdParams>

export const DeliveriesList = Type.Object({
  deliveries: Type.Array(Delivery),
  limit: Type.Integer(),
  offset: Type.Integer()
})
export type DeliveriesList = Static<typeof DeliveriesList>

export const RetriedDelivery = Type.Object({ delivery: Delivery })

export interface DeliveriesRouteOptions {
  store: Store
  // Called after a dead letter went back to pending (wake the dispatcher).
  wakeDispatcher?: () => void
}

export async function deliveriesRoutes (app: FastifyInstance, opts: DeliveriesRouteOptions): Promise<void> {
  const { store } = opts

  app.withTypeProvider<TypeBoxTypeProvider>().get('/api/v1/deliveries', {
    schema: { summary: 'Outbox deliveries, newest first', querystring: DeliveriesQuery, response: { 200: DeliveriesList, ...errorResponses(400, 401) } },
    attachValidation: true
  }, async (request, reply) => {
    if (request.validationError !== undefined) {
      return sendError(reply, 400, 'bad_request', `invalid query: ${request.validationError.message}; state is one of ${DeliveryState.anyOf.map((s) => s.const).join('|')}`)
    }
    const { state, limit, offset } = request.query
    const deliveries = await store.list({ limit, offset, ...(state !== undefined ? { state } : {}) })
    return { deliveries, limit, offset } satisfies DeliveriesList
  })

  app.withTypeProvider<TypeBoxTypeProvider>().post('/api/v1/deliveries/:id/retry', {
    schema: { summary: 'Send a dead delivery again', params: DeliveryIdParams, response: { 200: RetriedDelivery, ...errorResponses(400, 401, 404, 409) } },
    attachValidation: true
  }, async (request, reply) => {
    if (request.validationError !== undefined) {
      return sendError(reply, 400, 'bad_request', `invalid delivery id: ${request.validationError.message}`)
    }
    const { id } = request.params
    const result = await store.retryDead(id, Date.now())
    if (result.outcome === 'not_found') return sendError(reply, 404, 'not_found', `no delivery ${id}`)
    if (result.outcome === 'not_dead') {
      return sendError(reply, 409, 'not_dead', `delivery ${id} is ${result.state}; only dead deliveries can be retried`)
    }
    opts.wakeDispatcher?.()
    return { delivery: result.delivery }
  })
}
