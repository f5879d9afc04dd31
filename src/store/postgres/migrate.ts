import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type pg from 'pg'
import { inTransaction } from './connection.js'

// Versioned SQL files in migrations/postgres/ (NNNN_name.sql, applied in order, each once).
// All of them run in one transaction under a transaction-scoped advisory lock, so replicas
// starting together migrate once: the others wait, then find nothing left to do. A database
// that holds a version this build does not know was migrated by a newer build: refuse.

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations/postgres/', import.meta.url))

// Any constant shared by every build: the key of the migration lock.
const MIGRATION_LOCK = 7_346_519_201

export interface Migration { version: number, name: string, sql: string }

export function loadMigrations (dir = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort().map((file) => {
    const m = /^(\d+)_([a-z0-9_]+)\.sql$/.exec(file)
    if (m === null) throw new Error(`${dir}${file}: a migration is named NNNN_name.sql`)
    return { version: Number(m[1]), name: m[2] as string, sql: readFileSync(`${dir}${file}`, 'utf8') }
  })
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`${dir}: migration versions must run 1, 2, 3… without gaps (found ${m.version} at position ${i + 1})`)
  })
  return migrations
}

export class SchemaTooNewError extends Error {
  constructor (readonly databaseVersion: number, readonly knownVersion: number) {
    super(`the database schema is at version ${databaseVersion}, written by a newer alert-enricher; this build knows up to ${knownVersion}: refusing to start (upgrade alert-enricher, or restore a database this build migrated)`)
    this.name = 'SchemaTooNewError'
  }
}

// Applies what is missing; returns the versions applied (empty when up to date).
export async function migrate (pool: pg.Pool, migrations: Migration[] = loadMigrations()): Promise<number[]> {
  return await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')
    const current = rows[0]?.v ?? 0
    const known = migrations.length
    if (current > known) throw new SchemaTooNewError(current, known)
    const applied: number[] = []
    for (const m of migrations.filter((m) => m.version > current)) {
      await client.query(m.sql)
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name])
      applied.push(m.version)
    }
    return applied
  })
}
