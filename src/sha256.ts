import { createHash } from 'node:crypto'

/** sha256 as lower-case hex: group-key hashes, idempotency keys, catalog content digests. */
export function sha256Hex (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}
