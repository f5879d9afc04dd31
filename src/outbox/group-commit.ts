import type { Database } from 'better-sqlite3'

// Group commit: every write submitted during the same turn of the event loop runs in ONE
// transaction, scheduled with setImmediate. Each caller's promise settles only after that
// transaction commits, so "resolved" means "committed". Each operation runs in its own
// savepoint: one that throws fails alone, the rest still commit. If the commit itself fails
// (disk full, I/O error) every caller in the batch is rejected.
//
// Durable batches (those holding an enqueue or a replay) additionally wait for `syncDurable`
// when one is given: the store passes an fdatasync of the WAL run on libuv's thread pool, so
// the event loop keeps parsing requests while the disk flushes. Batches committed while a
// sync is running share the next one (one fsync per wave, however many batches). A failed
// sync poisons the committer: after it, what is on disk is unknown, so every later call is
// refused until the process restarts and SQLite recovers from the file (as PostgreSQL does).

export interface SubmitOptions { durable: boolean }

export interface GroupCommitter {
  submit: <T>(run: () => T, opts: SubmitOptions) => Promise<T>
  // Commits whatever is queued, waits for pending syncs, then refuses new work.
  close: () => Promise<void>
  // Why the committer refuses work (a failed fsync, or closed); null while it accepts it.
  unavailable: () => string | null
  // Only the failure that needs a restart (a failed fsync); null otherwise.
  fatal: () => string | null
}

interface Op {
  run: () => unknown
  durable: boolean
  resolve: (v: unknown) => void
  reject: (e: unknown) => void
}

type Outcome = { ok: true, value: unknown } | { ok: false, error: unknown }
interface Committed { batch: Op[], outcomes: Outcome[] }

export interface GroupCommitterOptions {
  // synchronous level SQLite itself uses for durable batches. With `syncDurable` the store
  // passes NORMAL here and makes the commit durable itself.
  durableSynchronous: 'FULL' | 'NORMAL'
  // Makes every commit so far durable (e.g. fdatasync of the WAL); awaited before durable
  // batches settle. Omitted: a commit settles as soon as SQLite returns.
  syncDurable?: () => Promise<void>
  onCommit?: (info: { operations: number, durable: boolean }) => void
}

export function createGroupCommitter (db: Database, opts: GroupCommitterOptions): GroupCommitter {
  let queue: Op[] = []
  let synchronous: 'FULL' | 'NORMAL' | null = null
  let scheduled = false
  let closed = false
  let failure: Error | null = null
  // Committed durable batches waiting for the next sync, and the sync running now.
  let awaitingSync: Committed[] = []
  let syncing: Promise<void> | null = null
  // One savepoint wrapper for every operation (better-sqlite3 nests a transaction function
  // called inside another as a savepoint); building one per operation showed in profiles.
  const inSavepoint = db.transaction((run: () => unknown) => run())

  function settle ({ batch, outcomes }: Committed, durable: boolean): void {
    opts.onCommit?.({ operations: batch.length, durable })
    batch.forEach((op, i) => {
      const o = outcomes[i]
      if (o === undefined) op.reject(new Error('group commit lost an outcome'))
      else if (o.ok) op.resolve(o.value)
      else op.reject(o.error)
    })
  }

  function startSync (sync: () => Promise<void>): void {
    if (syncing !== null || awaitingSync.length === 0) return
    const wave = awaitingSync
    awaitingSync = []
    syncing = sync().then(
      () => { for (const c of wave) settle(c, true) },
      (err: unknown) => {
        failure = new Error('outbox storage could not be synced to disk; restart required', { cause: err })
        for (const c of wave) for (const op of c.batch) op.reject(failure)
      }
    ).finally(() => {
      syncing = null
      if (failure === null) startSync(sync)
      else for (const c of awaitingSync.splice(0)) for (const op of c.batch) op.reject(failure)
    })
  }

  function flush (): void {
    scheduled = false
    const batch = queue
    queue = []
    if (batch.length === 0) return
    if (failure !== null) {
      for (const op of batch) op.reject(failure)
      return
    }
    const outcomes: Outcome[] = []
    const durable = batch.some((op) => op.durable)
    try {
      const wanted = durable && opts.syncDurable === undefined ? opts.durableSynchronous : 'NORMAL'
      if (synchronous !== wanted) {
        db.pragma(`synchronous = ${wanted}`)
        synchronous = wanted
      }
      db.transaction(() => {
        for (const op of batch) {
          try {
            outcomes.push({ ok: true, value: inSavepoint(op.run) })
          } catch (error) {
            outcomes.push({ ok: false, error })
          }
        }
      }).immediate()
    } catch (error) {
      for (const op of batch) op.reject(error)
      return
    }
    if (durable && opts.syncDurable !== undefined) {
      awaitingSync.push({ batch, outcomes })
      startSync(opts.syncDurable)
    } else {
      settle({ batch, outcomes }, durable)
    }
  }

  return {
    submit<T> (run: () => T, opts: SubmitOptions): Promise<T> {
      if (closed) return Promise.reject(new Error('outbox store is closed'))
      if (failure !== null) return Promise.reject(failure)
      return new Promise<T>((resolve, reject) => {
        queue.push({ run, durable: opts.durable, resolve: resolve as (v: unknown) => void, reject })
        if (!scheduled) {
          scheduled = true
          setImmediate(flush)
        }
      })
    },
    unavailable: () => failure !== null ? failure.message : closed ? 'outbox store is closed' : null,
    fatal: () => failure?.message ?? null,
    async close () {
      closed = true
      flush()
      // Bounded: each wave is a single sync, and nothing new can be submitted.
      while (syncing !== null) await syncing
    }
  }
}
