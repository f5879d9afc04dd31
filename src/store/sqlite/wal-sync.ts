import { open, type FileHandle } from 'node:fs/promises'

// fdatasync of the WAL file on libuv's thread pool: what synchronous=FULL would do inside
// every commit, without holding the event loop while the disk flushes. A sync covers every
// frame written before it started; SQLite keeps the same file while the connection is open.
export function createWalSync (walPath: string): { sync: () => Promise<void>, close: () => Promise<void> } {
  let handle: FileHandle | null = null
  return {
    async sync () {
      handle ??= await open(walPath, 'r')
      await handle.datasync()
    },
    async close () {
      await handle?.close()
      handle = null
    }
  }
}
