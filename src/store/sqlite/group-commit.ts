import type { Database } from 'better-sqlite3'

// Group commit: every write submitted during one turn of the event loop runs in ONE
// transaction (scheduled with setImmediate), committed with synchronous=NORMAL: its rows are
// visible (claimable) at once. A durable operation (an enqueue, a replay) then settles only
// once `syncWal` has made the WAL durable; `onCommitted` runs before that wait, so a page can
// be claimed and sent while its row is being synced, and /webhook still answers 2xx only
// after the sync. Batches committed while a sync runs share the next one. Bookkeeping (claims,
// outcome marks) settles at commit: lost in a power cut, it only means a delivery is sent
// again. Each operation runs in its own savepoint: one that throws fails alone. If the commit
// fails, every caller in the batch is rejected; if a sync fails, what is on disk is unknown
// until SQLite recovers from its file, so the committer refuses all later work (as PostgreSQL
// does after a failed fsync) and `fatal` says why.

export interface SubmitOptions {
  durable: boolean
  // Called right after the transaction committed, with the operation's result.
  onCommitted?: () => void
}

export interface GroupCommitter {
  submit: <T>(run: () => T, opts: SubmitOptions) => Promise<T>
  // Commits what is queued, waits for the sync in flight, then refuses new work.
  close: () => Promise<void>
  fatal: () => string | null
}

interface Op extends SubmitOptions { run: () => unknown, resolve: (v: unknown) => void, reject: (e: unknown) => void }
type Outcome = { ok: true, value: unknown } | { ok: false, error: unknown }

export interface GroupCommitterOptions {
  // Makes everything committed so far durable; omitted, a commit is as durable as the
  // connection's synchronous level makes it.
  syncWal?: () => Promise<void>
  onCommit?: (info: { operations: number, durable: boolean }) => void
}

export function createGroupCommitter (db: Database, opts: GroupCommitterOptions): GroupCommitter {
  let queue: Op[] = []
  let scheduled = false
  let closed = false
  let failure: Error | null = null
  let awaitingSync: Array<{ op: Op, value: unknown }> = []
  let syncing: Promise<void> | null = null
  // One savepoint wrapper for every operation: better-sqlite3 nests a transaction function
  // called inside another as a savepoint.
  const inSavepoint = db.transaction((run: () => unknown) => run())

  function startSync (sync: () => Promise<void>): void {
    if (syncing !== null || awaitingSync.length === 0) return
    const wave = awaitingSync
    awaitingSync = []
    syncing = sync().then(
      () => { for (const { op, value } of wave) op.resolve(value) },
      (err: unknown) => {
        failure = new Error(`the store's write-ahead log could not be synced to disk (${err instanceof Error ? err.message : String(err)}); restart required`)
        for (const { op } of [...wave, ...awaitingSync.splice(0)]) op.reject(failure)
      }
    ).finally(() => {
      syncing = null
      if (failure === null) startSync(sync)
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
    try {
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
    opts.onCommit?.({ operations: batch.length, durable: batch.some((op) => op.durable) })
    batch.forEach((op, i) => {
      const o = outcomes[i] as Outcome
      if (!o.ok) {
        op.reject(o.error)
        return
      }
      op.onCommitted?.()
      if (op.durable && opts.syncWal !== undefined) awaitingSync.push({ op, value: o.value })
      else op.resolve(o.value)
    })
    if (opts.syncWal !== undefined) startSync(opts.syncWal)
  }

  return {
    async submit<T> (run: () => T, submitOpts: SubmitOptions): Promise<T> {
      if (closed) throw new Error('store is closed')
      if (failure !== null) throw failure
      return await new Promise<T>((resolve, reject) => {
        // Fields named, not spread: this runs per webhook, and a spread's object is slower to build.
        queue.push({ durable: submitOpts.durable, onCommitted: submitOpts.onCommitted, run, resolve: resolve as (v: unknown) => void, reject })
        if (!scheduled) {
          scheduled = true
          setImmediate(flush)
        }
      })
    },
    async close () {
      flush()
      closed = true
      // Bounded: each wave is one sync, and nothing new can be submitted.
      while (syncing !== null) await syncing
    },
    fatal: () => failure?.message ?? null
  }
}
