import t from 'tap'
import { SchemaTooNewError } from '../src/store/postgres/migrate.js'
import { startWithRetry } from '../src/store/postgres/start-with-retry.js'

// The start on PostgreSQL while the database is away: retried with capped exponential
// backoff, each failure reported; a newer schema is not retried; shutting down ends the loop.

function recorder (): { waits: number[], failures: Array<[string, number, number]>, sleep: (ms: number) => Promise<void> } {
  const waits: number[] = []
  return { waits, failures: [], sleep: async (ms) => { waits.push(ms) } }
}

t.test('retries until start succeeds, doubling the wait from 0.5 s up to 30 s', async (t) => {
  const r = recorder()
  let calls = 0
  const started = await startWithRetry(async () => {
    if (++calls < 10) throw new Error(`connect ECONNREFUSED (${calls})`)
  }, { stopped: () => false, sleep: r.sleep, onFailure: (err, attempt, wait) => { r.failures.push([err.message, attempt, wait]) } })
  t.equal(started, true)
  t.equal(calls, 10)
  t.same(r.waits, [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000])
  t.same(r.failures[0], ['connect ECONNREFUSED (1)', 1, 500], 'each failed attempt reported with its wait')
  t.equal(r.failures.length, 9)
})

t.test('a database schema newer than this build is thrown at once, not retried', async (t) => {
  const r = recorder()
  let calls = 0
  await t.rejects(startWithRetry(async () => { calls++; throw new SchemaTooNewError(9, 4) }, {
    stopped: () => false, sleep: r.sleep, onFailure: () => { t.fail('not reported as a retry') }
  }), { name: 'SchemaTooNewError' })
  t.equal(calls, 1)
  t.same(r.waits, [])
})

t.test('shutting down ends the loop without another attempt', async (t) => {
  const r = recorder()
  let stopped = false
  let calls = 0
  const started = await startWithRetry(async () => {
    calls++
    stopped = true
    throw new Error('store is closed')
  }, { stopped: () => stopped, sleep: r.sleep, onFailure: () => { t.fail('a failure while stopping is not reported') } })
  t.equal(started, false)
  t.equal(calls, 1)
})
