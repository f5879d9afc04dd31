import type { FastifyInstance } from 'fastify'
import type { CatalogHolder } from '../config/catalog-holder.js'
import { redactCatalog } from '../config/redact.js'
import { explain } from '../enrich/explain.js'
import { parseWebhookBody, requireJson } from './ingest.js'

// Read-only views: what the service would do with a payload, and the catalog it runs.

export interface PreviewRouteOptions { catalog: CatalogHolder, bodyLimit: number, now: () => Date }

export async function previewRoutes (app: FastifyInstance, opts: PreviewRouteOptions): Promise<void> {
  app.post('/api/v1/preview', { bodyLimit: opts.bodyLimit, onRequest: requireJson }, async (request, reply) => {
    const payload = parseWebhookBody(request.body, reply)
    if (payload === undefined) return reply
    return explain(payload, opts.catalog.current(), opts.now())
  })

  app.get('/api/v1/catalog', async () => redactCatalog(opts.catalog.current()))
}
