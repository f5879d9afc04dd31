import pg from 'pg'

// One dedicated connection that LISTENs for committed work, so a delivery enqueued through
// any replica is claimed by whichever replica is free within milliseconds. Losing it is
// reported and retried with capped exponential backoff; the dispatcher's poll covers the gap.

export const WORK_CHANNEL = 'alert_enricher_work'

export interface WorkListener {
  // Resolves once listening, or after the first failure (reconnects run on their own).
  start: () => Promise<void>
  close: () => Promise<void>
}

export interface WorkListenerOptions {
  url: string
  onWork: () => void
  // Notifications carrying this payload are this process's own (it woke itself at commit).
  ownPayload?: string
  onState: (state: 'connected' | 'lost', detail: string) => void
  minBackoffMs?: number
  maxBackoffMs?: number
}

export function createWorkListener (opts: WorkListenerOptions): WorkListener {
  const minMs = opts.minBackoffMs ?? 100
  const maxMs = opts.maxBackoffMs ?? 5_000
  let client: pg.Client | null = null
  let closed = false
  let failures = 0
  let timer: NodeJS.Timeout | null = null
  let wasLost = false

  function lost (err: unknown): void {
    const c = client
    client = null
    c?.removeAllListeners()
    // Already broken: end() only releases the socket; its own error is the one being reported.
    c?.end().catch((endErr: unknown) => { opts.onState('lost', `closing the lost LISTEN connection: ${endErr instanceof Error ? endErr.message : String(endErr)}`) })
    if (closed) return
    wasLost = true
    opts.onState('lost', err instanceof Error ? err.message : String(err))
    const delay = Math.min(maxMs, minMs * 2 ** Math.min(failures++, 16))
    timer = setTimeout(() => { void connect() }, delay)
  }

  async function connect (): Promise<void> {
    timer = null
    if (closed) return
    const c = new pg.Client({ connectionString: opts.url, connectionTimeoutMillis: 5_000 })
    client = c
    c.on('error', lost)
    c.on('end', () => { if (client === c) lost(new Error('LISTEN connection ended')) })
    c.on('notification', (msg) => { if (opts.ownPayload === undefined || msg.payload !== opts.ownPayload) opts.onWork() })
    try {
      await c.connect()
      await c.query(`LISTEN ${WORK_CHANNEL}`)
      failures = 0
      if (wasLost) opts.onState('connected', 'LISTEN connection restored')
      wasLost = false
      // Work may have been committed while nobody listened.
      opts.onWork()
    } catch (err) {
      if (client === c) lost(err)
    }
  }

  return {
    start: connect,
    async close () {
      closed = true
      if (timer !== null) clearTimeout(timer)
      const c = client
      client = null
      if (c !== null) {
        c.removeAllListeners()
        // Closing anyway: a connection that fails to end cleanly has nothing left to lose.
        await c.end().catch((err: unknown) => { opts.onState('lost', `closing the LISTEN connection: ${err instanceof Error ? err.message : String(err)}`) })
      }
    }
  }
}
