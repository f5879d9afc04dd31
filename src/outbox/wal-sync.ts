import { open, type FileHandle } from 'node:fs/promises'

// FULL durability without blocking the event loop. SQLite's own synchronous=FULL, in WAL
// mode, means exactly one thing more than NORMAL: fsync the WAL at every commit. Commits
// here run with NORMAL (write() the WAL frames into the page cache, no fsync) and then this
// fdatasyncs the same WAL file on libuv's thread pool before any durable caller is answered,
// so a webhook is still answered 2xx only once its rows are on disk. A sync covers every
// frame written before it started (fsync acts on the file, not the descriptor); checkpoints
// still fsync the WAL and the database themselves, as in NORMAL. While the disk flushes, the
// event loop keeps parsing, enriching and committing the next batch.
export function createWalSync (path: string): { sync: () => Promise<void>, close: () => Promise<void> } {
  let handle: FileHandle | null = null
  return {
    async sync () {
      // Opened lazily: the WAL exists once something was committed. SQLite keeps the same
      // file (it rewinds, never deletes it) while this connection is open.
      handle ??= await open(path, 'r')
      await handle.datasync()
    },
    async close () {
      await handle?.close()
      handle = null
    }
  }
}
