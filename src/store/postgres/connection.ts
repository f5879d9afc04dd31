import pg from 'pg'

// A bounded pool on DATABASE_URL, and the one place the URL's password is handled: every
// message that leaves the engine goes through `redact`, since driver errors may quote the
// connection string.

export interface PoolOptions {
  url: string
  max?: number
  connectionTimeoutMs?: number
  // Fired for errors of idle connections (the database went away); without a listener the
  // pool's 'error' event would end the process.
  onIdleError: (error: Error) => void
}

// bigint columns hold Unix ms and ids: well inside Number's exact range.
const INT8_OID = 20
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format as 'text')
} as unknown as pg.CustomTypesConfig

export function createPool (opts: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectionTimeoutMs ?? 5_000,
    idleTimeoutMillis: 30_000,
    // A statement stuck behind a lost network path gives up instead of hanging a claim round.
    query_timeout: 30_000,
    types
  })
  pool.on('error', opts.onIdleError)
  return pool
}

// The secret parts of a connection string, in every form a message may quote them.
export function createRedactor (url: string): (message: string) => string {
  const secrets: string[] = [url]
  try {
    const u = new URL(url)
    if (u.password !== '') secrets.push(u.password, decodeURIComponent(u.password))
  } catch {
    // Not a URL (a libpq key=value string): the whole string is the only thing to hide.
  }
  const sorted = [...new Set(secrets)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length)
  return (message) => sorted.reduce((m, s) => m.split(s).join('[redacted]'), message)
}

// A driver or socket error as one line. Node's connect to a name with several addresses
// fails with an AggregateError whose own message is empty; its parts name the addresses.
export function errorMessage (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  if (err.message !== '') return err.message
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(errorMessage).join('; ')
  return (err as NodeJS.ErrnoException).code ?? err.name
}

// "postgres://host:port/db" without user or password: what logs may show.
export function describeUrl (url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname}`
  } catch {
    return 'postgres (connection string not a URL)'
  }
}

// Runs fn in one transaction on a client of its own. A checked-out client has no pool
// listener: its connection dying mid-transaction would otherwise be an unhandled 'error'
// event (a crash); the pending query rejects anyway. fn's own error is the one thrown; a
// connection that cannot even roll back is dropped from the pool, not reused.
// `flush: false` commits without waiting for the WAL flush (synchronous_commit off, this
// transaction only): for writes whose loss in a database crash only repeats work.
export interface TransactionOptions {
  flush?: boolean
  // Plans each statement for its parameters and the tables as they are now, instead of reusing
  // a generic plan made when they were small or empty (a plan that walks every pending row).
  customPlans?: boolean
}

export async function inTransaction<T> (pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
  const c = await pool.connect()
  let broken: Error | undefined
  const onError = (err: Error): void => { broken = err }
  c.on('error', onError)
  try {
    // One round trip for both statements (the simple query protocol runs a list).
    await c.query(['BEGIN', ...(opts.flush === false ? ['SET LOCAL synchronous_commit = off'] : []),
      ...(opts.customPlans === true ? ['SET LOCAL plan_cache_mode = force_custom_plan'] : [])].join('; '))
    const value = await fn(c)
    await c.query('COMMIT')
    return value
  } catch (err) {
    if (broken === undefined) await c.query('ROLLBACK').catch((rollbackErr: unknown) => { broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr)) })
    throw err
  } finally {
    c.removeListener('error', onError)
    c.release(broken)
  }
}
