import type { Database } from 'better-sqlite3'

// Group commit: every write submitted during one turn of the event loop runs in ONE
// transaction (scheduled with setImmediate), so a burst of webhooks shares one WAL sync.
// Each caller's promise settles only after that transaction commits: "resolved" means
// "committed", as durably as the connection's `synchronous` says. Each operation runs in its
// own savepoint: one that throws fails alone, the others still commit. If the commit itself
// fails, every caller in the batch is rejected.

export interface GroupCommitter {
  submit: <T>(run: () => T) => Promise<T>
  // Commits what is queued, then refuses new work.
  close: () => void
}

interface Op { run: () => unknown, resolve: (v: unknown) => void, reject: (e: unknown) => void }
type Outcome = { ok: true, value: unknown } | { ok: false, error: unknown }

export function createGroupCommitter (db: Database, onCommit?: (operations: number) => void): GroupCommitter {
  let queue: Op[] = []
  let scheduled = false
  let closed = false
  // One savepoint wrapper for every operation: better-sqlite3 nests a transaction function
  // called inside another as a savepoint.
  const inSavepoint = db.transaction((run: () => unknown) => run())

  function flush (): void {
    scheduled = false
    const batch = queue
    queue = []
    if (batch.length === 0) return
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
    onCommit?.(batch.length)
    batch.forEach((op, i) => {
      const o = outcomes[i] as Outcome
      if (o.ok) op.resolve(o.value)
      else op.reject(o.error)
    })
  }

  return {
    async submit<T> (run: () => T): Promise<T> {
      if (closed) throw new Error('store is closed')
      return await new Promise<T>((resolve, reject) => {
        queue.push({ run, resolve: resolve as (v: unknown) => void, reject })
        if (!scheduled) {
          scheduled = true
          setImmediate(flush)
        }
      })
    },
    close () {
      flush()
      closed = true
    }
  }
}
