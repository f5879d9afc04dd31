import { readSecretEnv, type Env } from '../../config/settings.js'
import { createPool, createRedactor, describeUrl } from './connection.js'
import { loadMigrations, migrate } from './migrate.js'

// `alert-enricher migrate`: the migrations alone (a Kubernetes Job or init container), under
// the same advisory lock `serve` takes, so it is safe beside running replicas. Exit code 0 when
// the schema is current, 1 on failure, 2 without DATABASE_URL.

export async function migrateCommand (env: Env, print: (line: string) => void, printError: (line: string) => void): Promise<number> {
  const url = readSecretEnv(env, 'DATABASE_URL')
  if (url === undefined || url === '') {
    printError('migrate: DATABASE_URL (or DATABASE_URL_FILE) is not set; migrations apply to PostgreSQL only (SQLite migrates itself at start)')
    return 2
  }
  const redact = createRedactor(url)
  let idleError: Error | null = null
  const pool = createPool({ url, max: 1, onIdleError: (err) => { idleError = err } })
  try {
    const known = loadMigrations().length
    const applied = await migrate(pool)
    print(applied.length === 0
      ? `${describeUrl(url)}: schema already at version ${known}`
      : `${describeUrl(url)}: applied ${applied.join(', ')}; schema at version ${known}`)
    return 0
  } catch (err) {
    printError(`migrate failed: ${redact(err instanceof Error ? err.message : String(err))}`)
    return 1
  } finally {
    await pool.end()
    if (idleError !== null) printError(`note: the connection reported: ${redact((idleError as Error).message)}`)
  }
}
