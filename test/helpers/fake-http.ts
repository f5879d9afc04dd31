import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

// The shared machinery of the fake Slack and PagerDuty servers: a real HTTP server on
// 127.0.0.1, runtime modes (ok / fixed status / 429 / hang / fail the next N), and a record of
// every request. The service-specific parts: `validate` refuses what the real service refuses
// (before any mode answers, as the service checks a request before it fails or throttles it),
// and `handle` answers a valid request like the real one.

export type FakeMode =
  | { kind: 'ok' }
  | { kind: 'status', code: number, body?: string, headers?: Record<string, string> }
  | { kind: 'rateLimit', retryAfterSeconds?: number }
  | { kind: 'hang' }
  | { kind: 'failNext', count: number, code?: number, body?: string }
  // Decides per request: a reply, null to hang, or undefined for the service's normal answer.
  | { kind: 'intercept', reply: (req: { method: string, path: string, body: string }) => FakeReply | null | undefined }

export interface FakeReply { status: number, body: string, headers?: Record<string, string>, accepted?: unknown, detail?: string }

export interface RecordedRequest {
  method: string
  path: string
  headers: IncomingHttpHeaders
  body: string
  // What the fake answered; null while (or because) it hangs.
  status: number | null
  response: string
  accepted: boolean
  // Why a request was rejected (which limit, which field), for assertions.
  detail?: string
}

export interface FakeServer {
  url: string
  received: RecordedRequest[]
  accepted: unknown[]
  setMode: (mode: FakeMode) => void
  // Resolves once `count` requests have arrived (answered or hanging); rejects after timeoutMs.
  waitForRequests: (count: number, timeoutMs?: number) => Promise<void>
  close: () => Promise<void>
}

export interface FakeRequest { method: string, path: string, headers: IncomingHttpHeaders, body: string }

export interface FakeHooks {
  // The service's refusal of a malformed request (path, media type, body); undefined when valid.
  validate: (req: FakeRequest) => FakeReply | undefined
  handle: (req: FakeRequest) => FakeReply
  // The body the mode answers with, per status code (services have their own error bodies).
  statusBody: (code: number) => { body: string, headers?: Record<string, string> }
  rateLimitBody: () => { body: string, headers?: Record<string, string> }
}

const MAX_BODY_BYTES = 8 * 1024 * 1024

export async function startFakeServer (hooks: FakeHooks): Promise<FakeServer & { port: number }> {
  const received: RecordedRequest[] = []
  const accepted: unknown[] = []
  const sockets = new Set<Socket>()
  const waiters = new Set<() => void>()
  let mode: FakeMode = { kind: 'ok' }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_BODY_BYTES) chunks.push(chunk)
    })
    req.on('end', () => {
      const record: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        status: null,
        response: '',
        accepted: false
      }
      received.push(record)
      for (const w of waiters) w()
      const reply = replyFor(record, size)
      if (reply === null) return // hang: the socket stays open until the client gives up or close()
      record.status = reply.status
      record.response = reply.body
      if (reply.detail !== undefined) record.detail = reply.detail
      if (reply.accepted !== undefined) {
        record.accepted = true
        accepted.push(reply.accepted)
      }
      send(res, reply)
    })
  })

  function replyFor (record: RecordedRequest, size: number): FakeReply | null {
    if (mode.kind === 'hang') return null
    if (mode.kind === 'intercept') {
      const reply = mode.reply(record)
      if (reply !== undefined) return reply
    }
    const refusal = size > MAX_BODY_BYTES ? { status: 413, body: 'request entity too large' } : hooks.validate(record)
    if (refusal !== undefined) return refusal
    switch (mode.kind) {
      case 'status': {
        const fallback = hooks.statusBody(mode.code)
        return { status: mode.code, body: mode.body ?? fallback.body, headers: { ...fallback.headers, ...mode.headers } }
      }
      case 'rateLimit': {
        const r = hooks.rateLimitBody()
        const headers = mode.retryAfterSeconds === undefined ? r.headers : { ...r.headers, 'retry-after': String(mode.retryAfterSeconds) }
        return { status: 429, body: r.body, ...(headers === undefined ? {} : { headers }) }
      }
      case 'failNext': {
        const code = mode.code ?? 500
        const body = mode.body ?? hooks.statusBody(code).body
        mode = mode.count <= 1 ? { kind: 'ok' } : { ...mode, count: mode.count - 1 }
        return { status: code, body }
      }
      case 'intercept':
      case 'ok':
        return hooks.handle(record)
    }
  }

  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    received,
    accepted,
    setMode: (m) => { mode = m },
    waitForRequests: (count, timeoutMs = 10_000) => new Promise<void>((resolve, reject) => {
      if (received.length >= count) return resolve()
      const check = (): void => {
        if (received.length < count) return
        clearTimeout(timer)
        waiters.delete(check)
        resolve()
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`fake received ${received.length} of ${count} requests`))
      }, timeoutMs)
      waiters.add(check)
    }),
    // Hanging requests would keep server.close() waiting forever: destroy every socket.
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
      for (const s of sockets) s.destroy()
    })
  }
}

function send (res: ServerResponse, reply: FakeReply): void {
  res.writeHead(reply.status, { 'content-type': reply.body.startsWith('{') ? 'application/json' : 'text/plain', ...reply.headers })
  res.end(reply.body)
}
