import { Type, type Static } from '@sinclair/typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifySchemaValidationError } from 'fastify'
import { PriorityName } from '../config/catalog-schema.js'
import { Incident, IncidentState, IncidentWithTimeline, type ApplyAcknowledgement } from '../incidents/types.js'
import type { Store } from '../store/types.js'
import { NUL_FREE, NUL_PROBLEM } from '../text.js'
import { errorResponses, sendError } from './errors.js'

// Incidents for people and scripts (admin token): list, one with its timeline, acknowledge.

export const IncidentsQuery = Type.Object({
  state: Type.Optional(IncidentState),
  priority: Type.Optional(PriorityName),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  offset: Type.Integer({ minimum: 0, default: 0 })
}, { additionalProperties: false })

export const IncidentsList = Type.Object({ incidents: Type.Array(Incident), limit: Type.Integer(), offset: Type.Integer() })
export type IncidentsList = Static<typeof IncidentsList>

const IncidentIdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) })
export const AckBody = Type.Object({ by: Type.String({ minLength: 1, maxLength: 200, pattern: NUL_FREE, description: 'who acknowledges' }) }, { additionalProperties: false })

export interface IncidentsRouteOptions {
  store: Store
  acknowledge: ApplyAcknowledgement
  now: () => Date
}

export async function incidentsRoutes (app: FastifyInstance, opts: IncidentsRouteOptions): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>()

  r.get('/api/v1/incidents', {
    schema: { summary: 'Incidents, newest first', querystring: IncidentsQuery, response: { 200: IncidentsList, ...errorResponses(400, 401) } },
    attachValidation: true
  }, async (request, reply) => {
    if (request.validationError !== undefined) {
      return sendError(reply, 400, 'bad_request', `invalid query: ${request.validationError.message}; state is triggered|acknowledged|resolved, priority P0|P1|P2|P3`)
    }
    const { state, priority, limit, offset } = request.query
    const incidents = await opts.store.listIncidents({ limit, offset, ...(state !== undefined ? { state } : {}), ...(priority !== undefined ? { priority } : {}) })
    return { incidents, limit, offset } satisfies IncidentsList
  })

  r.get('/api/v1/incidents/:id', {
    schema: { summary: 'One incident with its timeline', params: IncidentIdParams, response: { 200: IncidentWithTimeline, ...errorResponses(400, 401, 404) } },
    attachValidation: true
  }, async (request, reply) => {
    if (request.validationError !== undefined) return sendError(reply, 400, 'bad_request', `invalid incident id: ${request.validationError.message}`)
    const incident = await opts.store.getIncident(request.params.id)
    if (incident === null) return sendError(reply, 404, 'not_found', `no incident ${request.params.id}`)
    return incident
  })

  r.post('/api/v1/incidents/:id/ack', {
    schema: { summary: 'Acknowledge an incident (also acknowledged in PagerDuty)', params: IncidentIdParams, body: AckBody, response: { 200: Incident, ...errorResponses(400, 401, 404, 409, 413, 415) } },
    attachValidation: true
  }, async (request, reply) => {
    if (request.validationError !== undefined) {
      // Ajv's own wording would quote the pattern, which says nothing to a person.
      const errors = request.validationError.validation as FastifySchemaValidationError[]
      const nul = errors.some((e) => e.keyword === 'pattern' && e.instancePath === '/by')
      if (nul) return sendError(reply, 400, 'bad_request', `by: ${NUL_PROBLEM}`)
      return sendError(reply, 400, 'bad_request', `invalid request: ${request.validationError.message}; the body is {"by": "name"}`)
    }
    const { id } = request.params
    const result = await opts.acknowledge({ incidentId: id, action: 'acknowledge', by: request.body.by, via: 'api', at: opts.now().getTime() })
    if (result.outcome === 'unknown_incident' || result.incident === undefined) return sendError(reply, 404, 'not_found', `no incident ${id}`)
    if (result.incident.state === 'resolved') return sendError(reply, 409, 'resolved', `incident ${id} is already resolved`)
    return result.incident
  })
}
