import { createHmac, timingSafeEqual } from 'node:crypto'

// Slack request signing (contracts.md): X-Slack-Signature is `v0=` + hex HMAC-SHA256 of
// `v0:{X-Slack-Request-Timestamp}:{raw body}` with the app's signing secret. Compared in
// constant time; a timestamp more than 5 minutes away from now is refused (a replay).

export const MAX_SIGNATURE_AGE_SECONDS = 5 * 60

export type SignatureVerdict = { ok: true } | { ok: false, problem: string }

export function verifySlackSignature (
  secret: string,
  headers: { timestamp: string | undefined, signature: string | undefined },
  rawBody: Buffer,
  nowMs: number
): SignatureVerdict {
  const { timestamp, signature } = headers
  if (timestamp === undefined || signature === undefined) return { ok: false, problem: 'X-Slack-Request-Timestamp and X-Slack-Signature are required' }
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, problem: 'X-Slack-Request-Timestamp is not Unix seconds' }
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > MAX_SIGNATURE_AGE_SECONDS) {
    return { ok: false, problem: 'X-Slack-Request-Timestamp is more than 5 minutes from now (replayed or clock skew)' }
  }
  const expected = Buffer.from(`v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(rawBody).digest('hex')}`)
  const given = Buffer.from(signature)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, problem: 'X-Slack-Signature does not match' }
  return { ok: true }
}
