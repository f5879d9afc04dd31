import t, { type Test } from 'tap'
import net from 'node:net'
import pg from 'pg'
import { createMetrics } from '../src/metrics.js'
import { sha256Hex } from '../src/sha256.js'
import { createDispatcher } from '../src/outbox/dispatcher.js'
import { createRateLimiter } from '../src/outbox/rate-limit.js'
import { createPool, inTransaction } from '../src/store/postgres/connection.js'
import { loadMigrations, migrate } from '../src/store/postgres/migrate.js'
import { databaseUnavailable } from '../src/store/postgres/enqueue.js'
import { createPostgresStore, type PostgresStore } from '../src/store/postgres/store.js'
import type { IncidentChange, StoreFailure } from '../src/store/types.js'
import { startPostgres } from './helpers/postgres.js'
import { item, storeConformance, type StoreFactory } from './store-conformance.js'

// The PostgreSQL engine on a real, throwaway server: the conformance suite every engine
// passes, then what only a shared database has (migrations under a lock, several replicas).

const server = await startPostgres()
t.teardown(server.stop)

const WINDOW = 60_000

const postgresFactory: StoreFactory = async (t, opts) => {
  const url = server.url(await server.createDatabase('conf'))
  const failures: StoreFailure[] = []
  const stores: PostgresStore[] = []
  const open = async (): Promise<PostgresStore> => {
    const s = await createPostgresStore({ url, idempotencyWindowMs: opts.idempotencyWindowMs, poolSize: 4 }, { now: opts.now, onFailure: (f) => { failures.push(f) } })
    stores.push(s)
    return s
  }
  t.teardown(async () => { for (const s of stores) await s.close() })
  let current = await open()
  return {
    store: current,
    failures,
    reopen: async () => {
      await current.close()
      current = await open()
      return current
    }
  }
}

t.test('conformance: PostgreSQL', async (t) => { storeConformance(t, postgresFactory) })

t.test('migrations: replicas starting together migrate once; a newer database refuses to start', async (t) => {
  const url = server.url(await server.createDatabase('mig'))
  const pools = [1, 2, 3].map(() => new pg.Pool({ connectionString: url, max: 1 }))
  t.teardown(async () => { for (const p of pools) await p.end() })
  const applied = await Promise.all(pools.map(async (p) => await migrate(p)))
  const known = loadMigrations().length
  t.same(applied.flat().sort(), Array.from({ length: known }, (_, i) => i + 1), 'each version applied by exactly one of them')
  const { rows } = await pools[0]!.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')
  t.same(rows.map((r) => r.version), Array.from({ length: known }, (_, i) => i + 1))

  await pools[0]!.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future')", [known + 1])
  await t.rejects(migrate(pools[1]!), { name: 'SchemaTooNewError', databaseVersion: known + 1, knownVersion: known })
  await t.rejects(createPostgresStore({ url, idempotencyWindowMs: WINDOW }, { now: Date.now }), new RegExp(`schema is at version ${known + 1}.*newer alert-enricher.*refusing to start`))
})

t.test('replicas: a claim is taken by one replica only; NOTIFY wakes the others', async (t) => {
  const url = server.url(await server.createDatabase('ha'))
  const now = Date.now()
  const replicas = await Promise.all([1, 2, 3].map(async () => await createPostgresStore({ url, idempotencyWindowMs: WINDOW, poolSize: 4 }, { now: () => now })))
  t.teardown(async () => { for (const r of replicas) await r.close() })
  const woken = replicas.map(() => 0)
  replicas.forEach((r, i) => { r.onWork(() => { woken[i]!++ }) })
  const before = [...woken]
  for (let g = 0; g < 60; g++) {
    await replicas[g % 3]!.enqueue({ groupKey: `g${g}`, receivedAt: now, resolved: false, plan: () => [item(`k${g}`, { priority: g % 2 === 0 ? 'P0' : 'P3' })] })
  }
  const deadline = Date.now() + 5_000
  while (woken.some((n, i) => n - before[i]! < 1) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  t.ok(woken.every((n, i) => n > before[i]!), 'every replica heard of the work')
  const claims = await Promise.all(replicas.map(async (r) => await r.claim({ now, limit: 25, leaseMs: 30_000, excludeDestinations: [], admit: () => true })))
  const ids = claims.flat().map((d) => d.id)
  t.equal(ids.length, 60, 'all 60 claimed (the third replica took what was left)')
  t.equal(new Set(ids).size, 60, 'no delivery claimed twice')
  for (const c of claims) t.ok(c.every((d, i) => i === 0 || (d.priority >= c[i - 1]!.priority)), 'each claim highest priority first')
})

t.test('rate limits hold across replicas: one bucket per destination in the database', async (t) => {
  const url = server.url(await server.createDatabase('rate'))
  const clock = { now: Date.now() }
  const limitFor = (destination: string): { perSecond: number, burst: number } | null => destination === 'unlimited' ? null : { perSecond: 2, burst: 5 }
  const replicas = await Promise.all([1, 2, 3].map(async () => await createPostgresStore({ url, idempotencyWindowMs: WINDOW, poolSize: 4 }, { now: () => clock.now, limitFor })))
  t.teardown(async () => { for (const r of replicas) await r.close() })
  for (let g = 0; g < 30; g++) {
    await replicas[0]!.enqueue({ groupKey: `g${g}`, receivedAt: clock.now, resolved: false, plan: () => [item(`pd${g}`), item(`u${g}`, { destination: 'unlimited' })] })
  }
  const claimAll = async (): Promise<Array<{ destination: string }>> => (await Promise.all(replicas.map(async (r) =>
    await r.claim({ now: clock.now, limit: 100, leaseMs: 30_000, excludeDestinations: [], admit: () => true })))).flat()
  const first = await claimAll()
  t.equal(first.filter((d) => d.destination === 'pagerduty').length, 5, 'the burst, once for the deployment (not once per replica)')
  t.equal(first.filter((d) => d.destination === 'unlimited').length, 30, 'an unlimited destination is not held back by the limited one')
  clock.now += 1_000
  t.equal((await claimAll()).length, 2, 'then perSecond across the three replicas')
  clock.now += 250
  t.equal((await claimAll()).length, 0, 'half a token is not a token')
  clock.now += 10_000
  t.equal((await claimAll()).length, 5, 'refilled up to the burst, no more')
})

t.test('HA peers through three replicas at once: one delivery; the group planned from fresh state', async (t) => {
  const url = server.url(await server.createDatabase('peers'))
  const now = Date.now()
  const replicas = await Promise.all([1, 2, 3].map(async () => await createPostgresStore({ url, idempotencyWindowMs: WINDOW, poolSize: 4 }, { now: () => now })))
  t.teardown(async () => { for (const r of replicas) await r.close() })
  for (let round = 0; round < 20; round++) {
    const seen: number[] = []
    const results = await Promise.all(replicas.map(async (r) => await r.enqueue({
      groupKey: `g${round}`,
      receivedAt: now,
      resolved: false,
      // A firing plan adds slack once pagerduty is known: planned under the group's lock, so
      // exactly one of the three sees nobody notified.
      plan: (notified) => {
        seen.push(notified.length)
        return notified.length === 0 ? [item(`trigger-${round}`)] : [item(`trigger-${round}`), item(`slack-${round}`, { destination: 'slack-alerts', type: 'slack' })]
      }
    })))
    t.equal(results.reduce((n, r) => n + r.inserted.length, 0), 2, `round ${round}: one trigger and one slack message stored, across three replicas`)
    t.same(seen.sort(), [0, 1, 2], `round ${round}: the plans ran one after another, each seeing what the one before it stored`)
  }
})

t.test('escalation timers across replicas: an unacknowledged P0 escalates once per due time, whoever polls', async (t) => {
  const url = server.url(await server.createDatabase('esc'))
  const clock = { now: Date.now() }
  const replicas = await Promise.all([1, 2, 3].map(async () => await createPostgresStore({ url, idempotencyWindowMs: WINDOW, poolSize: 4 }, { now: () => clock.now })))
  t.teardown(async () => { for (const r of replicas) await r.close() })
  const escalateTo = [{ destination: 'pagerduty-escalation', type: 'pagerduty' as const }, { destination: 'slack-incident-response', type: 'slack' as const }]
  const ids: number[] = []
  for (let g = 0; g < 20; g++) {
    const { incident } = await replicas[g % 3]!.enqueue({
      groupKey: `g${g}`, receivedAt: clock.now, resolved: false, plan: () => [item(`trigger-${g}`, { priority: 'P0' })],
      incident: { receiver: 'team', decide: () => ({ kind: 'open', dedupKey: `dk-${g}`, title: 'HighErrorRate', priority: 'P0', respondBy: clock.now + 300_000, alertname: 'HighErrorRate', team: 'platform', escalation: { escalateTo, repeatEveryMs: 900_000 } }) }
    })
    ids.push(incident!.id)
  }
  const fireAll = async (): Promise<Array<{ incidentId: number, number: number, deliveries: unknown[] }>> => (await Promise.all(replicas.flatMap((r) =>
    [1, 2].map(async () => await r.fireDueEscalations({ now: clock.now, limit: 7, isConfigured: () => true }))))).flatMap((r) => r.fired)
  t.same(await fireAll(), [], 'nothing before the deadline')
  clock.now += 300_000
  const fired = await fireAll()
  t.same(fired.map((f) => f.incidentId).sort((a, b) => a - b), ids, 'six concurrent polls (limit 7 each) fired each of the 20 incidents exactly once')
  t.ok(fired.every((f) => f.number === 1 && f.deliveries.length === 2), 'escalation 1, to both targets')
  t.same(await fireAll(), [], 'polling again fires nothing: the timers moved to the repeat')
  const escalations = (await replicas[0]!.list({ limit: 1000 })).filter((d) => d.groupKey.startsWith('incident:'))
  t.equal(escalations.length, 40, 'one delivery per incident and target in the outbox')
  clock.now += 900_000
  const repeats = await fireAll()
  t.equal(repeats.length, 20, 'the repeat fires once per incident too')
  t.ok(repeats.every((f) => f.number === 2))
})

t.test('transactions: flush: false skips the WAL flush wait for that transaction only', async (t) => {
  const pool = createPool({ url: server.url(await server.createDatabase('flush')), max: 1, onIdleError: (err) => { t.fail(err.message) } })
  t.teardown(async () => { await pool.end() })
  const setting = async (c: pg.PoolClient): Promise<string> => (await c.query<{ s: string }>("SELECT current_setting('synchronous_commit') AS s")).rows[0]!.s
  t.equal(await inTransaction(pool, setting, { flush: false }), 'off', 'claims and outcome marks commit without waiting')
  // One connection: the next transaction runs on the same session, which must be unchanged.
  t.equal(await inTransaction(pool, setting), 'on', 'a webhook enqueue still waits for the flush')
  t.equal((await pool.query<{ s: string }>("SELECT current_setting('synchronous_commit') AS s")).rows[0]!.s, 'on', 'nothing leaks into the pooled session')
})

t.test('a replica keeps working when a newer build migrates the table under it (rolling upgrade)', async (t) => {
  const url = server.url(await server.createDatabase('rolling'))
  const now = Date.now()
  // One connection: the statements it prepared are the ones used after the change.
  const old = await createPostgresStore({ url, idempotencyWindowMs: WINDOW, poolSize: 1 }, { now: () => now })
  t.teardown(async () => { await old.close() })
  const claim = async (): Promise<number> => (await old.claim({ now, limit: 10, leaseMs: 30_000, excludeDestinations: [], admit: () => true })).length
  const open = (g: string): IncidentChange => ({
    kind: 'open', dedupKey: sha256Hex(g), title: 't', priority: 'P0', respondBy: now + 60_000, alertname: 'A', team: 'platform',
    escalation: { escalateTo: [], repeatEveryMs: null }
  })
  const enqueue = async (g: string): Promise<void> => {
    await old.enqueue({ groupKey: g, receivedAt: now, resolved: false, plan: () => [item(`k-${g}`)], incident: { receiver: 'team', decide: () => open(g) } })
  }
  await enqueue('before')
  t.equal(await claim(), 1)
  t.match(await old.findIncident('team', 'before'), { groupKey: 'before' })
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await admin.query('ALTER TABLE deliveries ADD COLUMN added_by_a_newer_build integer')
  await admin.query('ALTER TABLE incidents ADD COLUMN added_by_a_newer_build integer')
  await admin.end()
  await enqueue('after')
  t.equal(await claim(), 1, 'its prepared claim still runs (no "cached plan must not change result type")')
  t.match(await old.findIncident('team', 'after'), { groupKey: 'after' }, 'and its prepared incident lookup, which every page runs')
  const [d] = await old.list({ state: 'sending', limit: 1 })
  t.equal(await old.markSent(d!, now), 'done')
})

// A store on a database of its own, on a fixed clock, recording each enqueue transaction's size.
async function batchingStore (t: Test, name: string): Promise<{ store: Awaited<ReturnType<typeof createPostgresStore>>, batches: number[], now: number }> {
  const url = server.url(await server.createDatabase(name))
  const batches: number[] = []
  const now = Date.now()
  const store = await createPostgresStore({ url, idempotencyWindowMs: WINDOW, poolSize: 4 }, { now: () => now, onEnqueueBatch: (n) => { batches.push(n) } })
  t.teardown(async () => { await store.close() })
  return { store, batches, now }
}

t.test('group commit: concurrent webhooks share one transaction, each gets its own result', async (t) => {
  const { store, batches, now } = await batchingStore(t, 'batch')
  const open = (g: number): IncidentChange => ({
    kind: 'open', dedupKey: `dk-${g}`, title: `t${g}`, priority: 'P1', respondBy: now + 60_000, alertname: 'A', team: 'platform',
    escalation: { escalateTo: [], repeatEveryMs: null }
  })
  const results = await Promise.all(Array.from({ length: 20 }, async (_, g) => await store.enqueue({
    groupKey: `g${g}`, receivedAt: now, resolved: false,
    plan: () => [item(`k${g}-pd`), item(`k${g}-slack`, { destination: 'slack-alerts', type: 'slack' })],
    incident: { receiver: 'team', decide: () => open(g) }
  })))
  t.equal(batches.reduce((a, b) => a + b, 0), 20, 'every webhook stored once')
  t.ok(batches.length < 20, `fewer transactions than webhooks (${batches.join(', ')})`)
  t.ok(batches.some((n) => n > 1), 'some transaction stored several')
  for (const [g, r] of results.entries()) {
    const rows = await Promise.all(r.inserted.map(async (d) => await store.get(d.id)))
    t.same(rows.map((d) => [d?.groupKey, d?.idempotencyKey]), [[`g${g}`, `k${g}-pd`], [`g${g}`, `k${g}-slack`]], `webhook ${g}: its own rows`)
    const incident = await store.getIncident(r.incident!.id)
    t.match(incident, { groupKey: `g${g}`, dedupKey: `dk-${g}`, state: 'triggered' }, `webhook ${g}: its own incident`)
  }
  t.equal(new Set(results.map((r) => r.incident!.id)).size, 20, 'twenty incidents')
})

t.test('group commit: a group\'s second webhook plans from what its first stored; one that fails fails alone', async (t) => {
  const { store, now } = await batchingStore(t, 'batch2')
  const seen: string[][] = []
  const [first, second, broken, other, throws] = await Promise.allSettled([
    store.enqueue({ groupKey: 'same', receivedAt: now, resolved: false, plan: () => [item('a')] }),
    store.enqueue({ groupKey: 'same', receivedAt: now, resolved: false, plan: (notified) => { seen.push(notified.map((n) => n.destination)); return [item('b')] } }),
    // Violates NOT NULL in the shared statement: its batch fails, then each webhook runs alone.
    store.enqueue({ groupKey: 'broken', receivedAt: now, resolved: false, plan: () => [item('c', { destination: null as unknown as string })] }),
    store.enqueue({ groupKey: 'other', receivedAt: now, resolved: false, plan: () => [item('d')] }),
    // A plan that throws (a bug) fails its own webhook only.
    store.enqueue({ groupKey: 'throws', receivedAt: now, resolved: false, plan: () => { throw new Error('plan broke') } })
  ])
  t.equal(first.status, 'fulfilled')
  t.equal(second.status, 'fulfilled')
  t.same(seen.at(-1), ['pagerduty'], 'the second saw the destination the first notified')
  t.equal(broken.status, 'rejected', 'the broken webhook is refused')
  t.equal(other.status, 'fulfilled', 'its batch-mate is stored')
  t.match(throws, { status: 'rejected', reason: { message: /plan broke/ } }, 'the webhook whose plan threw is refused, with its own error')
  const keys = (await store.list({ limit: 10 })).map((d) => d.idempotencyKey).sort()
  t.same(keys, ['a', 'b', 'd'])
  const superseded = second.status === 'fulfilled' ? second.value.superseded : []
  t.equal(superseded.length, 1, 'the second superseded the first (same destination and group)')
})

t.test('wake-ups: a replica hears the others\' new work, not its own (it woke itself at commit)', async (t) => {
  const url = server.url(await server.createDatabase('own'))
  const now = Date.now()
  const [a, b] = await Promise.all([1, 2].map(async () => await createPostgresStore({ url, idempotencyWindowMs: WINDOW, poolSize: 2 }, { now: () => now })))
  t.teardown(async () => { await a!.close(); await b!.close() })
  // Each listener announces itself once at connect; count from a quiet moment.
  await new Promise((resolve) => setTimeout(resolve, 200))
  const woken = { a: 0, b: 0 }
  a!.onWork(() => { woken.a++ })
  b!.onWork(() => { woken.b++ })
  await a!.enqueue({ groupKey: 'g', receivedAt: now, resolved: false, plan: () => [item('k')] })
  const deadline = Date.now() + 5_000
  while (woken.b === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(woken.b, 1, 'the other replica is woken')
  t.equal(woken.a, 0, 'the enqueuing replica ignores its own announcement')
})

t.test('leases: a lapsed claim returns to pending within a second of its lease', async (t) => {
  const url = server.url(await server.createDatabase('lapse'))
  const clock = { now: Date.now() }
  const store = await createPostgresStore({ url, idempotencyWindowMs: WINDOW, poolSize: 2 }, { now: () => clock.now })
  t.teardown(async () => { await store.close() })
  const claim = async (): Promise<number[]> => (await store.claim({ now: clock.now, limit: 10, leaseMs: 100, excludeDestinations: [], admit: () => true })).map((d) => d.id)
  await store.enqueue({ groupKey: 'g', receivedAt: clock.now, resolved: false, plan: () => [item('k')] })
  const [id] = await claim()
  t.ok(id !== undefined, 'claimed')
  clock.now += 500
  t.same(await claim(), [], 'the lease lapsed 400 ms ago: not yet returned (checked at most once a second)')
  clock.now += 500
  t.same(await claim(), [id], 'a second after the last check it is claimable again')
})

t.test('group commit: a transaction that failed because the database is away is not retried webhook by webhook', async (t) => {
  t.ok(databaseUnavailable(new Error('Connection terminated unexpectedly')), 'a driver error without SQLSTATE')
  t.ok(databaseUnavailable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), 'a socket error')
  t.ok(databaseUnavailable(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })), 'shutdown')
  t.ok(databaseUnavailable(Object.assign(new Error('could not extend file'), { code: '53100' })), 'disk full')
  t.notOk(databaseUnavailable(Object.assign(new Error('null value in column'), { code: '23502' })), "one webhook's data: retried alone")
  t.notOk(databaseUnavailable(Object.assign(new Error('invalid byte sequence'), { code: '22021' })), "one webhook's text: retried alone")
  t.notOk(databaseUnavailable(Object.assign(new Error('deadlock detected'), { code: '40P01' })), 'a deadlock: retried alone')
})

t.test('claims along: an enqueue claims its due pages in its own transaction when lent slots', async (t) => {
  const url = server.url(await server.createDatabase('along'))
  const now = Date.now()
  const limitFor = (): { perSecond: number, burst: number } => ({ perSecond: 0.001, burst: 1 })
  const store = await createPostgresStore({ url, idempotencyWindowMs: WINDOW, poolSize: 4 }, { now: () => now, limitFor })
  t.teardown(async () => { await store.close() })
  const launched: number[][] = []
  let released = 0
  let lend: 'yes' | 'no' | 'admit throws' = 'yes'
  store.lendSlotsFrom(() => lend === 'no'
    ? null
    : {
        limit: 10,
        request: () => ({
          // The dispatcher's clock may read earlier than the write's: the claim still sees its rows due.
          now: now - 5_000,
          limit: 10,
          leaseMs: 30_000,
          excludeDestinations: [],
          admit: () => { if (lend === 'admit throws') throw new Error('admit broke'); return true }
        }),
        launch: (rows) => { launched.push(rows.map((d) => d.id)) },
        release: () => { released++ }
      })
  const enqueue = async (group: string, key: string, destination = 'pagerduty'): Promise<number> =>
    (await store.enqueue({ groupKey: group, receivedAt: now, resolved: false, plan: () => [item(key, { priority: 'P0', destination })] })).inserted[0]!.id

  const first = await enqueue('g1', 'k1')
  t.same(launched, [[first]], 'launched as the enqueue committed')
  t.match(await store.get(first), { state: 'sending', attempts: 1, claimedUntil: now + 30_000 })

  const sameGroup = await enqueue('g1', 'k2')
  t.same(launched.at(-1), [], 'a newer delivery of a group waits while the older is in flight')
  t.match(await store.get(sameGroup), { state: 'pending' })

  const noToken = await enqueue('g2', 'k3')
  t.same(launched.at(-1), [], 'the destination\'s shared bucket is empty: not claimed')
  t.match(await store.get(noToken), { state: 'pending' })

  lend = 'no'
  const unlent = await enqueue('g3', 'k4', 'other')
  t.equal(launched.length, 3, 'no loan, no claim')
  t.match(await store.get(unlent), { state: 'pending' }, 'left for the dispatcher\'s claim round')

  lend = 'admit throws'
  await t.rejects(enqueue('g4', 'k5', 'other'), /admit broke/, 'a claim that fails fails its transaction')
  t.equal(released, 1, 'and its slots are returned')
  t.equal(launched.length, 3)
  t.same((await store.list({ limit: 20 })).map((d) => d.idempotencyKey).sort(), ['k1', 'k2', 'k3', 'k4'], 'nothing of the failed webhook was stored')
})

// Between the store and PostgreSQL: once armed, the next COMMIT reaches the server (which
// commits it) but the connection dies before its reply, as when the network drops mid-commit.
async function commitReplyLosingProxy (target: URL): Promise<{ url: string, arm: () => void, close: () => Promise<void> }> {
  let armed = false
  const sockets = new Set<net.Socket>()
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname)
    for (const s of [client, upstream]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => { s.destroy() }) }
    upstream.pipe(client)
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk)
      if (armed && chunk.includes('COMMIT\0')) {
        armed = false
        client.destroy()
        // The server reads the COMMIT before it sees the socket close.
        setTimeout(() => { upstream.end() }, 200)
      }
    })
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const url = new URL(target)
  url.port = String((proxy.address() as net.AddressInfo).port)
  return {
    url: url.toString(),
    arm: () => { armed = true },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => proxy.close(resolve))
    }
  }
}

t.test('claims along: a COMMIT whose reply was lost returns its claimed pages to pending, not to a lease', async (t) => {
  const target = new URL(server.url(await server.createDatabase('along_lost_commit')))
  const proxy = await commitReplyLosingProxy(target)
  const now = Date.now()
  const failures: StoreFailure[] = []
  const store = await createPostgresStore({ url: proxy.url, idempotencyWindowMs: WINDOW, poolSize: 4 }, { now: () => now, onFailure: (f) => { failures.push(f) } })
  t.teardown(async () => { await store.close(); await proxy.close() })
  const launched: number[] = []
  store.lendSlotsFrom(() => ({
    limit: 10,
    request: () => ({ now, limit: 10, leaseMs: 60_000, excludeDestinations: [], admit: () => true }),
    launch: (rows) => { launched.push(...rows.map((d) => d.id)) },
    release: () => {}
  }))
  proxy.arm()
  await t.rejects(store.enqueue({ groupKey: 'g', receivedAt: now, resolved: false, plan: () => [item('lost-reply', { priority: 'P0' })] }),
    'the webhook is refused (Alertmanager retries it)')
  t.same(launched, [], 'nothing launched: the outcome was unknown')
  const [row] = await store.list({ limit: 5 })
  t.match(row, { idempotencyKey: 'lost-reply', state: 'pending', claimedUntil: null }, 'committed after all, and claimable at the next claim round')
  t.same(failures.map((f) => f.operation), ['enqueue'], 'the enqueue\'s failure is counted; the unclaim went through')
  t.same((await store.claim({ now, limit: 10, leaseMs: 60_000, excludeDestinations: [], admit: () => true })).map((d) => d.idempotencyKey), ['lost-reply'])
})

t.test('migration 0008: a database at 0007 with rows in it moves its group indexes to digests and keeps every group', async (t) => {
  const url = server.url(await server.createDatabase('mig8'))
  const pool = new pg.Pool({ connectionString: url, max: 1 })
  t.teardown(async () => { await pool.end() })
  const all = loadMigrations()
  const before = all.findIndex((m) => m.name === 'group_digest_indexes')
  t.equal(all[before]?.version, 8)
  t.same(await migrate(pool, all.slice(0, before)), [1, 2, 3, 4, 5, 6, 7])
  const now = Date.now()
  // What a build at 0007 left: a pending trigger, a notification held for business hours, the
  // destination told, the open incident.
  await pool.query(`INSERT INTO deliveries (destination, type, priority, idempotency_key, group_key, body, state, next_attempt_at,
      received_at, created_at, updated_at, deferred_until)
    VALUES ('pagerduty', 'pagerduty', 0, 'old-trigger', 'g', '{}', 'pending', $1, $1, $1, $1, NULL),
      ('slack-alerts', 'slack', 3, 'old-held', 'g', '{}', 'pending', $2, $1, $1, $1, $2)`, [now, now + 3_600_000])
  await pool.query("INSERT INTO group_notified VALUES ('g', 'pagerduty', 'pagerduty', 0, $1)", [now])
  const { rows: [incident] } = await pool.query<{ id: number }>(`INSERT INTO incidents (receiver, group_key, dedup_key, alertname, team, title,
      priority, state, opened_at, triggered_at, respond_by, repeats_left, escalate_to, updated_at)
    VALUES ('team', 'g', 'dk-g', 'A', 'platform', 'A', 0, 'triggered', $1, $1, $2, 3, '[]', $1) RETURNING id`, [now, now + 300_000])

  const store = await createPostgresStore({ url, idempotencyWindowMs: WINDOW, poolSize: 2 }, { now: () => now })
  t.teardown(async () => { await store.close() })
  t.equal((await pool.query<{ v: number }>('SELECT max(version) AS v FROM schema_migrations')).rows[0]?.v, all.length, 'migrated to the last version')
  const { rows: indexes } = await pool.query<{ name: string, def: string }>(`SELECT indexname AS name, indexdef AS def FROM pg_indexes
    WHERE indexname IN ('deliveries_group', 'deliveries_deferred', 'incidents_open', 'group_notified_group') ORDER BY 1`)
  t.equal(indexes.length, 4)
  t.ok(indexes.every((i) => i.def.includes('md5(group_key)')), 'each keyed on the digest')

  const seen: string[][] = []
  const refire = await store.enqueue({
    groupKey: 'g', receivedAt: now, resolved: false, plan: (n) => { seen.push(n.map((d) => d.destination)); return [item('new-trigger', { priority: 'P0' })] },
    incident: { receiver: 'team', decide: (open) => { t.equal(open?.id, Number(incident!.id), 'the open incident is found'); return null } }
  })
  t.same(seen.at(-1), ['pagerduty'], 'the destination told before the migration is remembered')
  t.same(refire.superseded.map((d) => d.destination), ['pagerduty'], 'the pending trigger from before is superseded')
  const claim = async (): Promise<string[]> => (await store.claim({ now, limit: 10, leaseMs: 30_000, excludeDestinations: [], admit: () => true })).map((d) => d.idempotencyKey)
  t.same(await claim(), ['new-trigger'])
  await t.rejects(pool.query(`INSERT INTO incidents (receiver, group_key, dedup_key, alertname, team, title, priority, state, opened_at,
      triggered_at, respond_by, repeats_left, escalate_to, updated_at) VALUES ('team', 'g', 'dk-g', 'A', 'p', 'A', 0, 'triggered', 0, 0, 0, 3, '[]', 0)`),
  { code: '23505' }, 'still one open incident per group')
  const resolved = await store.enqueue({
    groupKey: 'g', receivedAt: now, resolved: true, plan: () => [item('resolve', { status: 'resolved', priority: 'P0' })],
    incident: { receiver: 'team', decide: () => ({ kind: 'resolve' }) }
  })
  t.same(resolved.resolvedWhileDeferred.map((d) => d.destination), ['slack-alerts'], 'the held notification from before is skipped')
  t.match(resolved.incident, { id: Number(incident!.id), change: 'resolve' })
  t.same(await claim(), [], 'the resolve waits for the trigger in flight')
})

t.test('claims along: other replicas (NOTIFY) and this one (onCommitted) are woken only when work may be left', async (t) => {
  const url = server.url(await server.createDatabase('along_wake'))
  const now = Date.now()
  const [store, other] = await Promise.all([1, 2].map(async () => await createPostgresStore({ url, idempotencyWindowMs: WINDOW, poolSize: 4 }, { now: () => now })))
  t.teardown(async () => { await store!.close(); await other!.close() })
  let heard = 0
  other!.onWork(() => { heard++ })
  let limit: number | null = 5
  store!.lendSlotsFrom(() => {
    if (limit === null) return null
    const lent = limit
    return { limit: lent, request: () => ({ now, limit: lent, leaseMs: 30_000, excludeDestinations: [], admit: () => true }), launch: () => {}, release: () => {} }
  })
  let committed = 0
  const enqueue = async (group: string, destinations: string[]): Promise<void> => {
    await store!.enqueue({ groupKey: group, receivedAt: now, resolved: false, onCommitted: () => { committed++ }, plan: () => destinations.map((d) => item(`${group}-${d}`, { priority: 'P0', destination: d })) })
  }
  const heardAtLeast = async (n: number): Promise<void> => {
    for (let i = 0; i < 500 && heard < n; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  }

  await enqueue('all-claimed', ['a', 'b'])
  t.equal(committed, 0, 'two claimed of five slots: no claim round here')
  limit = 2
  await enqueue('slots-full', ['a2', 'b2'])
  t.equal(committed, 1, 'every lent slot filled: woken')
  limit = null
  await enqueue('no-loan', ['c'])
  t.equal(committed, 2, 'no loan: woken as before')
  await heardAtLeast(2)
  // Notifications arrive in commit order within milliseconds: a third (from the first
  // enqueue) would be here by now.
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(heard, 2, 'the other replica heard the second and third enqueues, not the first')
})

t.test('claims along with a real dispatcher: every page is sent without a single poll (its timers never fire)', async (t) => {
  const url = server.url(await server.createDatabase('along_dispatcher'))
  const store = await createPostgresStore({ url, idempotencyWindowMs: WINDOW, poolSize: 4 }, { now: Date.now })
  const sent: string[] = []
  let holdFirst: (() => void) | null = null
  const quiet = (): void => {}
  const dispatcher = createDispatcher({ concurrency: 4, releaseClaimsAtStart: false }, {
    store,
    limiter: createRateLimiter(() => null),
    now: Date.now,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
    setTimer: () => ({ clear: quiet }), // no poll, no scheduled wake-up: only commits and sends wake it
    send: async (d) => {
      if (d.idempotencyKey === 'held-trigger') await new Promise<void>((resolve) => { holdFirst = resolve })
      sent.push(d.idempotencyKey)
      return { ok: true, status: 202 }
    }
  })
  store.lendSlotsFrom(dispatcher.lendSlots)
  t.teardown(async () => { await dispatcher.stop({ timeoutMs: 0 }); await store.close() })
  await dispatcher.start()
  const enqueue = async (group: string, key: string): Promise<unknown> =>
    await store.enqueue({ groupKey: group, receivedAt: Date.now(), resolved: false, onCommitted: dispatcher.wake, plan: () => [item(key, { priority: 'P0' })] })
  const sentAll = async (keys: string[], what: string): Promise<void> => {
    for (let i = 0; i < 500 && !keys.every((k) => sent.includes(k)); i++) await new Promise((resolve) => setTimeout(resolve, 10))
    t.ok(keys.every((k) => sent.includes(k)), `${what} (sent: ${sent.join(', ')})`)
  }

  for (let i = 0; i < 3; i++) {
    await enqueue(`one-${i}`, `page-${i}`)
    await sentAll([`page-${i}`], `page ${i}, alone`)
  }
  await Promise.all(Array.from({ length: 10 }, async (_, i) => await enqueue(`burst-${i}`, `burst-${i}`)))
  await sentAll(Array.from({ length: 10 }, (_, i) => `burst-${i}`), 'ten at once through four slots')

  await enqueue('ordered', 'held-trigger')
  for (let i = 0; i < 500 && holdFirst === null; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  await enqueue('ordered', 'its-resolve')
  t.notOk(sent.includes('its-resolve'), 'the group\'s newer delivery waits for the one in flight')
  ;(holdFirst as (() => void) | null)?.()
  await sentAll(['held-trigger', 'its-resolve'], 'then goes once it has been sent')
  t.same(sent.filter((k) => k === 'held-trigger' || k === 'its-resolve'), ['held-trigger', 'its-resolve'])
})
