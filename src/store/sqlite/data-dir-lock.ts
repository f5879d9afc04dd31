import type { Database } from 'better-sqlite3'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

// One process per data directory. Two processes on one outbox would each think they own its
// claims (and return the other's in-flight sends to pending: duplicates). The lock is SQLite's
// own exclusive lock on the database file, taken at open and held until the connection
// closes, so the operating system releases it when the process dies, however it dies. The pid
// file beside it only names the holder in the refusal.

export const PID_FILE_NAME = 'alert-enricher.pid'

export class DataDirInUseError extends Error {}

export function lockDataDir (db: Database, dataDir: string): () => void {
  const pidFile = join(dataDir, PID_FILE_NAME)
  db.pragma('locking_mode = EXCLUSIVE')
  db.pragma('busy_timeout = 0')
  try {
    // The first write transaction takes the exclusive lock; EXCLUSIVE mode never releases it.
    db.exec('BEGIN IMMEDIATE; COMMIT')
  } catch (err) {
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err
    throw new DataDirInUseError(`data directory ${dataDir} is in use by another alert-enricher (${holder(pidFile)}); refusing to start`)
  }
  writeFileSync(pidFile, `${process.pid}\n`)
  return () => { rmSync(pidFile, { force: true }) }
}

function holder (pidFile: string): string {
  try {
    return `pid ${readFileSync(pidFile, 'utf8').trim()}`
  } catch (err) {
    return `pid unknown: ${(err as NodeJS.ErrnoException).code ?? String(err)}`
  }
}
