import type { Database } from 'better-sqlite3'

// Group commit: every write submitted during the same turn of the event loop runs in ONE
// transaction (one fsync), scheduled with setImmediate. Each caller's promise settles only
// after that transaction commits, so "resolved" means "durable". Each operation runs in its
// own savepoint: one that throws fails alone, the rest still commit. If the commit itself
// fails (disk full, I/O error) every caller in the batch is rejected.

export interface SubmitOptions { durable: boolean }

export interface GroupCommitter {
  submit: <T>(run: () => T, opts: SubmitOptions) => Promise<T>
  // Commits whatever is queued, then refuses new work.
  close: () => Promise<void>
}

interface Op {
  run: () => unknown
  durable: boolean
  resolve: (v: unknown) => void
  reject: (e: unknown) => void
}

export interface GroupCommitterOptions {
  // synchronous level for durable batches; NORMAL trades OS-crash safety for speed.
  durableSynchronous: 'FULL' | 'NORMAL'
  onCommit?: (info: { operations: number, durable: boolean }) => void
}

export function createGroupCommitter (db: Database, opts: GroupCommitterOptions): GroupCommitter {
  let queue: Op[] = []
  let synchronous: 'FULL' | 'NORMAL' | null = null
  let scheduled = false
  let closed = false

  function flush (): void {
    scheduled = false
    const batch = queue
    queue = []
    if (batch.length === 0) return
    const outcomes: Array<{ ok: true, value: unknown } | { ok: false, error: unknown }> = []
    const durable = batch.some((op) => op.durable)
    try {
      const wanted = durable ? opts.durableSynchronous : 'NORMAL'
      if (synchronous !== wanted) {
        db.pragma(`synchronous = ${wanted}`)
        synchronous = wanted
      }
      db.transaction(() => {
        for (const op of batch) {
          try {
            outcomes.push({ ok: true, value: db.transaction(op.run)() })
          } catch (error) {
            outcomes.push({ ok: false, error })
          }
        }
      }).immediate()
    } catch (error) {
      for (const op of batch) op.reject(error)
      return
    }
    opts.onCommit?.({ operations: batch.length, durable })
    batch.forEach((op, i) => {
      const o = outcomes[i]
      if (o === undefined) op.reject(new Error('group commit lost an outcome'))
      else if (o.ok) op.resolve(o.value)
      else op.reject(o.error)
    })
  }

  return {
    submit<T> (run: () => T, opts: SubmitOptions): Promise<T> {
      if (closed) return Promise.reject(new Error('outbox store is closed'))
      return new Promise<T>((resolve, reject) => {
        queue.push({ run, durable: opts.durable, resolve: resolve as (v: unknown) => void, reject })
        if (!scheduled) {
          scheduled = true
          setImmediate(flush)
        }
      })
    },
    async close () {
      closed = true
      flush()
    }
  }
}
