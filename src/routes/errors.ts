import { Type, type Static } from '@sinclair/typebox'
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'

// Every error body is { error, message } (interface.md). Fastify's own errors (body
// parsing, limits, media type) are mapped to codes a user can act on; anything unexpected
// is a 500 that never echoes internals.

export const ErrorBody = Type.Object({
  error: Type.String({ description: 'stable machine-readable code, e.g. invalid_payload' }),
  message: Type.String({ description: 'what was wrong, for a human' })
}, { description: 'every 4xx/5xx body' })
export type ErrorBody = Static<typeof ErrorBody>

// Response schemas for the error statuses a route can send. Every route can fail with 500.
export function errorResponses<C extends number> (...codes: C[]): Record<C | 500, typeof ErrorBody> {
  return Object.fromEntries([...codes, 500].map((c) => [c, ErrorBody])) as Record<C | 500, typeof ErrorBody>
}

// The statuses Fastify itself sends for a route that takes a JSON body (see FASTIFY_CODES).
export const JSON_BODY_ERRORS = [400, 413, 415] as const

export function sendError (reply: FastifyReply, status: number, error: string, message: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error, message } satisfies ErrorBody)
}

const FASTIFY_CODES: Record<string, { status: number, error: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, error: 'unsupported_media_type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, error: 'bad_request' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, error: 'payload_too_large' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, error: 'bad_request' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, error: 'invalid_json' },
  FST_ERR_VALIDATION: { status: 400, error: 'bad_request' }
}

export function classifyError (err: FastifyError): { status: number, error: string, message: string } {
  const known = err.code !== undefined ? FASTIFY_CODES[err.code] : undefined
  if (known !== undefined) {
    if (known.status === 415) return { ...known, message: 'Content-Type must be application/json' }
    return { ...known, message: err.message }
  }
  // JSON.parse failures from the content-type parser surface as SyntaxError with 400.
  if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
    return { status: 400, error: 'invalid_json', message: `body is not valid JSON: ${err.message}` }
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    return { status: err.statusCode, error: 'bad_request', message: err.message }
  }
  return { status: 500, error: 'internal', message: 'internal error; see the service log' }
}

export function registerErrorHandlers (app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const c = classifyError(err)
    if (c.status >= 500) request.log.error({ err }, 'request failed')
    reply.header('connection', c.status === 413 ? 'close' : undefined)
    return sendError(reply, c.status, c.error, c.message)
  })
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`))
}
