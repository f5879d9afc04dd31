import type { SendResult } from './result.js'

// What every integration (slack/, pagerduty/) provides: it sends a rendered body and returns
// a result; it never throws across this boundary.
export interface NotifierDeps { fetch: typeof fetch, timeoutMs: number, now?: () => Date }
export interface Notifier { send: (body: unknown) => Promise<SendResult> }
