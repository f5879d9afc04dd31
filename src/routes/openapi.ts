import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { errorResponses } from './errors.js'

// GET /openapi.json: the OpenAPI document @fastify/swagger builds from the route schemas, so the
// document and the validation/serialisation the routes do are one thing. No UI is served.

export const OPENAPI_OPTIONS = {
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'alert-enricher',
      description: 'Enriches Prometheus Alertmanager webhooks and delivers them to Slack and PagerDuty through a durable outbox. Every 4xx/5xx body is {error, message}.',
      version: '0.1.0'
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http' as const, scheme: 'bearer' },
        basic: { type: 'http' as const, scheme: 'basic' }
      }
    }
  }
}

export async function openapiRoutes (app: FastifyInstance): Promise<void> {
  app.get('/openapi.json', {
    schema: {
      summary: 'This document (OpenAPI 3.1)',
      response: { 200: Type.Object({ openapi: Type.String() }, { additionalProperties: true, description: 'OpenAPI document' }), ...errorResponses() }
    }
  }, async () => app.swagger())
}
