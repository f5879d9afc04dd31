import t from 'tap'
import pg from 'pg'
import { findPostgresBin, startPostgres } from './helpers/postgres.js'

// The throwaway server the PostgreSQL tests stand on: it starts, takes connections, survives a
// pause/resume on the same port, and its binaries are found or named by their package.

t.test('a throwaway PostgreSQL starts, serves, pauses, resumes and stops', async (t) => {
  t.match(findPostgresBin(), /bin$/)
  const server = await startPostgres()
  t.teardown(server.stop)
  const db = await server.createDatabase()
  const query = async (sql: string): Promise<unknown[]> => {
    const c = new pg.Client({ connectionString: server.url(db) })
    await c.connect()
    try { return (await c.query(sql)).rows } finally { await c.end() }
  }
  t.same(await query('SELECT 1 AS one'), [{ one: 1 }])
  await query('CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)')
  await server.pause()
  await t.rejects(query('SELECT 1'), 'down while paused')
  await server.resume()
  t.same(await query('SELECT x FROM kept'), [{ x: 7 }], 'data kept across the pause')
})

t.test('missing binaries fail with the Debian package to install', async (t) => {
  t.throws(() => findPostgresBin({ root: '/nonexistent', path: '/nonexistent/bin' }), /install the Debian package `postgresql`/)
})
