import type { FastifyReply, FastifyRequest } from 'fastify'
import { validateWebhook } from '../alertmanager/validate.js'
import type { WebhookPayload } from '../alertmanager/webhook.js'
import { sendError } from './errors.js'

// Shared by /webhook and /api/v1/preview: the same media type and schema rules, so a
// preview that succeeds is a webhook that would be accepted.

export function isJsonContentType (header: string | undefined): boolean {
  if (header === undefined) return false
  const type = header.split(';', 1)[0]?.trim().toLowerCase()
  return type === 'application/json'
}

export async function requireJson (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (isJsonContentType(request.headers['content-type'])) return
  await sendError(reply, 415, 'unsupported_media_type', `Content-Type must be application/json, got ${JSON.stringify(request.headers['content-type'] ?? '')}`)
}

/**
 * Route option for /webhook and /api/v1/preview: their body schema documents the payload, and
 * validateWebhook checks it (one compiled check shared with the CLI, no type coercion, messages
 * naming the field), so Fastify's own validator must not run (it would coerce and re-word).
 */
export const validatedInHandler = { validatorCompiler: () => () => true }

/** Validates the parsed body; on failure answers 400 naming the field and returns undefined. */
export function parseWebhookBody (body: unknown, reply: FastifyReply): WebhookPayload | undefined {
  const result = validateWebhook(body)
  if (result.ok) return result.payload
  void sendError(reply, 400, 'invalid_payload', result.message)
  return undefined
}
