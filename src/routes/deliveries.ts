import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { Delivery, DeliveryState, type Store } from '../store/types.js'
import { sendError } from './errors.js'

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

export interface DeliveriesRouteOptions {
  store: Store
  // Called after a dead letter went back to pending (wake the dispatcher).
  onRetry?: () => void
}

export async function deliveriesRoutes (app: FastifyInstance, opts: DeliveriesRouteOptions): Promise<void> {
  const { store } = opts

  app.get<{ Querystring: DeliveriesQuery }>('/api/v1/deliveries', {
    schema: { querystring: DeliveriesQuery },
    attachValidation: true
  }, async (request, reply) => {
    if (request.validationError !== undefined) {
      return sendError(reply, 400, 'bad_request', `invalid query: ${request.validationError.message}; state is one of ${DeliveryState.anyOf.map((s) => s.const).join('|')}`)
    }
    const { state, limit, offset } = request.query
    const deliveries = await store.list({ limit, offset, ...(state !== undefined ? { state } : {}) })
    return { deliveries, limit, offset } satisfies DeliveriesList
  })

  app.post<{ Params: DeliveryIdParams }>('/api/v1/deliveries/:id/retry', {
    schema: { params: DeliveryIdParams },
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
    opts.onRetry?.()
    return { delivery: result.delivery }
  })
}
