import t from 'tap'
import { crashSafetyTrial } from './helpers/crash-trial.js'
import { startPostgres } from './helpers/postgres.js'

// PostgreSQL: the same trial (helpers/crash-trial.ts) with the store in a real database.
// SIGKILLs at random moments under a stream of pages, restarts on the same database; every
// page answered 2xx reaches PagerDuty. The killed process's claims return when their lease
// lapses (twice the send timeout plus 10 s: 20 s with the trial's 5 s timeout).

t.test('on PostgreSQL: every page answered 2xx reaches PagerDuty across SIGKILLs and restarts', async (t) => {
  const server = await startPostgres()
  t.teardown(server.stop)
  const url = server.url(await server.createDatabase('crash'))
  await crashSafetyTrial(t, { env: { DATABASE_URL: url }, drainMs: 60_000 })
})
