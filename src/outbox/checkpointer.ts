import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

// WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever
// commit pushes the WAL past 1,000 pages: that commit then copies every page into the
// database file and fsyncs it, on the event loop, while webhooks wait (~40 % of the cost of
// /webhook's commits, measured). Here a second connection on a worker thread runs PASSIVE
// checkpoints instead: they never block the writer, and SQLite's own locking makes them safe
// alongside it (a crash at any point is recovered from the WAL, as with any checkpoint).
// The writer's automatic checkpoint stays, at a higher mark, as a backstop: should this thread
// fall behind or die, and because under a steady stream of commits PASSIVE checkpoints never
// quite catch up with the writer, so only the writer's own checkpoint lets the WAL start over
// from its beginning. By then this thread has copied nearly every page; what is left for the
// event loop is the tail and one fsync of the database file. Measured in a 10 s webhook storm:
// at 10,000 pages the WAL grew to 40 MB; at 2,000 it stays under 8.5 MB, at the same req/s.

export const CHECKPOINT_EVERY_COMMITS = 32
export const BACKSTOP_AUTOCHECKPOINT_PAGES = 2_000

export interface Checkpointer {
  /** Called after each commit; starts a checkpoint every CHECKPOINT_EVERY_COMMITS commits. */
  committed: () => void
  close: () => Promise<void>
}

// Plain CommonJS run with `eval`: the same source works from dist/ and under the test runner.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.file)
db.pragma('busy_timeout = 5000')
db.pragma('synchronous = NORMAL')
parentPort.on('message', (m) => {
  if (m === 'close') { db.close(); parentPort.close(); return }
  try { db.pragma('wal_checkpoint(PASSIVE)') } catch (err) { parentPort.postMessage({ error: String(err && err.message) }); return }
  parentPort.postMessage({ error: null })
})
`

export function createCheckpointer (file: string, deps: { onError: (message: string) => void }): Checkpointer {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { file, driver: createRequire(import.meta.url).resolve('better-sqlite3') }
  })
  worker.unref() // never keeps the process alive by itself
  let sinceLast = 0
  let running = false
  let closed = false
  worker.on('message', (m: { error: string | null }) => {
    running = false
    if (m.error !== null) deps.onError(m.error)
  })
  worker.on('error', (err) => { closed = true; deps.onError(err.message) })
  return {
    committed () {
      if (closed || ++sinceLast < CHECKPOINT_EVERY_COMMITS || running) return
      sinceLast = 0
      running = true
      worker.postMessage('checkpoint')
    },
    async close () {
      if (closed) return
      closed = true
      const exited = new Promise<void>((resolve) => worker.once('exit', () => { resolve() }))
      worker.ref() // wait for it: its connection must be closed before the writer's
      worker.postMessage('close')
      await exited
    }
  }
}
