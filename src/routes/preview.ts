import { Type } from '@sinclair/typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { WebhookPayload } from '../alertmanager/webhook.js'
import type { CatalogHolder } from '../config/catalog-holder.js'
import { redactCatalog } from '../config/redact.js'
import { explain } from '../notify/explain.js'
import { PreviewResult } from '../enrich/types.js'
import type { Incident } from '../incidents/types.js'
import { errorResponses, JSON_BODY_ERRORS } from './errors.js'
import { parseWebhookBody, requireJson, validatedInHandler } from './request-body.js'

// Read-only views: what the service would do with a payload, and the catalog it runs.

export interface PreviewRouteOptions {
  catalog: CatalogHolder
  bodyLimit: number
  now: () => Date
  // The group's incident, so the preview says what the real message would of it.
  findIncident?: (receiver: string, groupKey: string) => Promise<Incident | null>
}

export const CatalogView = Type.Object({
  file: Type.String(),
  entries: Type.Integer({ minimum: 0 }),
  catalog: Type.Unknown({ description: 'the catalog document as loaded, each secret shown as its reference ({env} or {file}), never its value' })
})

export async function previewRoutes (fastify: FastifyInstance, opts: PreviewRouteOptions): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.post('/api/v1/preview', {
    bodyLimit: opts.bodyLimit,
    onRequest: requireJson,
    ...validatedInHandler,
    schema: {
      summary: 'What the service would send for an Alertmanager webhook payload (nothing is sent)',
      body: WebhookPayload,
      response: { 200: PreviewResult, ...errorResponses(...JSON_BODY_ERRORS) }
    }
  }, async (request, reply) => {
    const payload = parseWebhookBody(request.body, reply)
    if (payload === undefined) return reply
    const incident = await opts.findIncident?.(payload.receiver, payload.groupKey) ?? null
    return explain(payload, opts.catalog.current(), opts.now(), incident)
  })

  app.get('/api/v1/catalog', {
    schema: { summary: 'The loaded catalog, secrets redacted', response: { 200: CatalogView, ...errorResponses() } }
  }, async () => redactCatalog(opts.catalog.current()))
}
