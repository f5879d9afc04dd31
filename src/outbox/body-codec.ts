import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants } from 'node:zlib'

// Bodies above this size are stored brotli-compressed (a BLOB; smaller ones stay TEXT, and
// rows written before compression existed read back unchanged). A 20-alert webhook is ~13 KB
// of repetitive JSON that compresses ~15×, and bytes written (WAL, then checkpoint) dominate
// the cost of its commit. Quality 0 takes half the CPU of quality 1 (~50 vs ~100 µs for a
// 20-alert webhook) for ~10 % more bytes. Synchronous: on the thread pool it measured slower,
// and it would let two webhooks of one group be enqueued out of order.
const COMPRESS_ABOVE_CHARS = 8 * 1024
const BROTLI_FAST = { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 0, [zlibConstants.BROTLI_PARAM_MODE]: zlibConstants.BROTLI_MODE_TEXT } }

export function encodeBody (json: string): string | Buffer {
  return json.length <= COMPRESS_ABOVE_CHARS ? json : brotliCompressSync(json, BROTLI_FAST)
}

export function decodeBody (stored: string | Buffer): unknown {
  return JSON.parse(typeof stored === 'string' ? stored : brotliDecompressSync(stored).toString('utf8')) as unknown
}
