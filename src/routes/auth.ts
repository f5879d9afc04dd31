import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { sendError } from './errors.js'

// Bearer and/or basic auth for /webhook (Alertmanager's http_config can send either).
// Both sides are hashed first so the comparison is constant-time whatever the lengths.

export interface WebhookAuthConfig { bearerToken?: string, basic?: { username: string, password: string } }

export function isAuthConfigured (cfg: WebhookAuthConfig): boolean {
  return cfg.bearerToken !== undefined || cfg.basic !== undefined
}

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

function safeEqual (a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b))
}

export function checkAuthorization (header: string | undefined, cfg: WebhookAuthConfig): boolean {
  if (!isAuthConfigured(cfg)) return true
  if (header === undefined) return false
  const space = header.indexOf(' ')
  if (space < 0) return false
  const scheme = header.slice(0, space).toLowerCase()
  const value = header.slice(space + 1).trim()
  if (scheme === 'bearer' && cfg.bearerToken !== undefined) return safeEqual(value, cfg.bearerToken)
  if (scheme === 'basic' && cfg.basic !== undefined) {
    const decoded = Buffer.from(value, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon < 0) return false
    // Evaluate both halves so timing doesn't reveal which one was wrong.
    const userOk = safeEqual(decoded.slice(0, colon), cfg.basic.username)
    const passOk = safeEqual(decoded.slice(colon + 1), cfg.basic.password)
    return userOk && passOk
  }
  return false
}

export function createAuthHook (cfg: WebhookAuthConfig) {
  const challenge = [cfg.bearerToken !== undefined ? 'Bearer realm="alert-enricher"' : undefined, cfg.basic !== undefined ? 'Basic realm="alert-enricher", charset="UTF-8"' : undefined]
    .filter((v): v is string => v !== undefined).join(', ')
  return async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (checkAuthorization(request.headers.authorization, cfg)) return
    reply.header('www-authenticate', challenge)
    await sendError(reply, 401, 'unauthorized', request.headers.authorization === undefined ? 'missing Authorization header' : 'invalid credentials')
  }
}
