import t from 'tap'
import pg from 'pg'
import { createPostgresStore } from '../src/store/postgres/store.js'
import { startPostgres } from './helpers/postgres.js'
import { waitUntil } from './helpers/prometheus.js'

// A backlog refreshes the planner's statistics of deliveries (migration 0009): planned on
// statistics that say pending rows are rare, the enqueue's group lookups walk every pending row.
// Autovacuum wakes every second on this server, so the test waits seconds, not a minute.

const server = await startPostgres({ settings: { autovacuum_naptime: '1' } })
t.teardown(server.stop)

t.test('a backlog of pending deliveries far under a tenth of the table is analyzed within seconds', async (t) => {
  const url = server.url(await server.createDatabase('stats'))
  await (await createPostgresStore({ url, idempotencyWindowMs: 60_000 }, { now: Date.now })).close()
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  t.teardown(async () => { await db.end() })
  const insert = async (count: number, state: string, from: number): Promise<void> => {
    await db.query(`INSERT INTO deliveries (destination, type, priority, idempotency_key, group_key, body, state,
        next_attempt_at, received_at, created_at, updated_at)
      SELECT 'pd', 'pagerduty', 3, 'key-' || n, 'group-' || n, '{}', $1, 0, 0, 0, 0 FROM generate_series($2::int, $3::int) AS n`,
    [state, from, from + count - 1])
  }
  const counters = async (): Promise<{ inserted: number, modified: number, analyses: number }> => {
    await db.query('SELECT pg_stat_clear_snapshot()')
    const { rows: [row] } = await db.query<{ inserted: string, modified: string, analyses: string }>(`SELECT n_tup_ins AS inserted,
      n_mod_since_analyze AS modified, autoanalyze_count + analyze_count AS analyses FROM pg_stat_user_tables WHERE relname = 'deliveries'`)
    return { inserted: Number(row?.inserted), modified: Number(row?.modified), analyses: Number(row?.analyses) }
  }
  // This session's counts reach the shared statistics (the ones autovacuum reads) when it
  // flushes them: forced, then awaited.
  const flushed = async (inserted: number): Promise<void> => {
    await db.query('SELECT pg_stat_force_next_flush()')
    await waitUntil(`${inserted} inserts counted`, 4_000, async () => (await counters()).inserted >= inserted)
  }

  // A service that has run a while: settled rows, statistics that know them.
  await insert(20_000, 'sent', 1)
  await flushed(20_000)
  await db.query('ANALYZE deliveries')
  await flushed(20_000)
  const before = await counters()
  t.equal(before.modified, 0, 'the statistics are fresh before the backlog')
  // A destination goes down: 1,500 pages wait (autovacuum's default would wait for 2,050 changes).
  await insert(1_500, 'pending', 100_000)
  await flushed(21_500)
  await waitUntil('deliveries analyzed again', 20_000, async () => (await counters()).analyses > before.analyses)
  const after = await counters()
  t.ok(after.analyses > before.analyses, `deliveries analyzed again after the backlog (analyses: ${before.analyses} → ${after.analyses})`)
  const { rows } = await db.query<{ n: number }>("SELECT (most_common_freqs[array_position(most_common_vals::text::text[], 'pending')])::float AS n FROM pg_stats WHERE tablename = 'deliveries' AND attname = 'state'")
  t.ok((rows[0]?.n ?? 0) > 0.05, `the statistics now count the pending rows (${String(rows[0]?.n)} of the table)`)
})
