// /webhook throughput against a bare Fastify route that only parses and schema-validates the
// same bodies, measured in the same run; every request is a distinct group.
import autocannon from 'autocannon'
import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import { startBenchPostgres } from './postgres.js'

const fixture = JSON.parse(readFileSync(new URL('../test/fixtures/alertmanager/firing-two-critical.json', import.meta.url), 'utf8'))

export function makeBody (alertCount, n) {
  const template = fixture.alerts[0]
  const alerts = Array.from({ length: alertCount }, (_, i) => ({
    ...template,
    labels: { ...template.labels, instance: `10.0.${i >> 8}.${i & 255}:8000` },
    fingerprint: (n * 1000 + i).toString(16).padStart(16, '0')
  }))
  return JSON.stringify({ ...fixture, groupKey: `{}:{alertname="HighErrorRate", run="${n}"}`, alerts })
}

export async function startServer (mode, env = {}) {
  const child = fork(new URL('./server.js', import.meta.url), [mode], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: { ...process.env, ...env } })
  const port = await new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m.port))
    child.once('exit', (code) => reject(new Error(`${mode} server exited ${code}`)))
  })
  return {
    url: `http://127.0.0.1:${port}/webhook`,
    // { cpu, loopBusy }: seconds of CPU (all threads) and of event-loop work so far.
    usage: () => new Promise((resolve) => {
      child.once('message', (m) => resolve({ cpu: m.cpuMicros / 1e6, loopBusy: m.loopBusyMicros / 1e6 }))
      child.send('cpu')
    }),
    stop: () => new Promise((resolve) => { child.once('exit', resolve); child.send('stop') })
  }
}

// Every request of a bench run is a new group: a body repeated from an earlier run (the
// warm-up's) would be a duplicate, which stores nothing.
let nextBody = 0

// Returns req/s and the median latency; the share of one core the load generator itself used
// (this process): near 100 % means the figure is bounded by the generator, not by the server;
// the share of the run the server's event loop was busy; and per request, the server's CPU time
// (all threads) and PostgreSQL's (when given).
export async function load (server, { alertCount, seconds, postgres, connections = 16 }) {
  const cpuBefore = process.cpuUsage()
  const serverBefore = await server.usage()
  const postgresCpuBefore = postgres?.cpuSeconds() ?? null
  const startedAt = performance.now()
  const result = await autocannon({
    url: server.url,
    method: 'POST',
    connections,
    duration: seconds,
    headers: { 'content-type': 'application/json' },
    requests: [{ setupRequest: (req) => ({ ...req, body: makeBody(alertCount, nextBody++) }) }]
  })
  const bad = result.non2xx + result.errors + result.timeouts
  if (bad > 0) throw new Error(`${bad} failed requests against ${server.url}`)
  const cpu = process.cpuUsage(cpuBefore)
  const perRequestMicros = (cpuSeconds) => cpuSeconds * 1e6 / result.requests.total
  const postgresCpuAfter = postgres?.cpuSeconds() ?? null
  const serverAfter = await server.usage()
  return {
    rps: result.requests.average,
    medianMs: result.latency.p50,
    loadgenCpu: (cpu.user + cpu.system) / 1000 / (performance.now() - startedAt),
    serverMicros: perRequestMicros(serverAfter.cpu - serverBefore.cpu),
    loopBusyShare: (serverAfter.loopBusy - serverBefore.loopBusy) * 1000 / (performance.now() - startedAt),
    postgresMicros: postgresCpuBefore === null || postgresCpuAfter === null ? null : perRequestMicros(postgresCpuAfter - postgresCpuBefore)
  }
}

export async function benchWebhook ({ seconds = 5 } = {}) {
  const postgres = await startBenchPostgres()
  try {
    return await benchWebhookWith(postgres, seconds)
  } finally {
    postgres.stop()
  }
}

async function benchWebhookWith (postgres, seconds) {
  const rows = []
  for (const alertCount of [1, 20]) {
    // Each mode's best measured run.
    const best = {}
    // Alternate baseline and service twice and keep each one's best, so a noisy neighbour
    // on a shared 2-core machine hurts both sides alike.
    for (let round = 0; round < 2; round++) {
      for (const mode of ['baseline', 'service', 'service-memory', 'no-outbox', 'service-postgres']) {
        const server = await startServer(mode, mode === 'service-postgres' ? { DATABASE_URL: await postgres.createDatabase() } : {})
        try {
          await load(server, { alertCount, seconds: 1 }) // warm-up
          const measured = await load(server, { alertCount, seconds, ...(mode === 'service-postgres' ? { postgres } : {}) })
          if (measured.rps > (best[mode]?.rps ?? 0)) best[mode] = measured
        } finally {
          await server.stop()
        }
      }
    }
    const figures = Object.fromEntries(Object.entries(best).map(([mode, run]) => [mode, run.rps]))
    const ratio = figures.service / figures.baseline
    // A floor against a naive design (one fsync per request on the event loop), not a target.
    const floor = 0.2
    rows.push({ name: `webhook ${alertCount}-alert bodies (classify + route + durable outbox) vs bare Fastify parse+validate`, baseline: figures.baseline, value: figures.service, unit: 'req/s', ratio, goal: `floor ≥ ${floor}×: ${ratio >= floor ? 'held' : 'BROKEN'}` })
    // Read the ratio with this: on 2 cores the generator shares the machine with the server.
    rows.push({ name: `  load generator's own CPU, share of one core: baseline run vs service run (diagnostic)`, baseline: best.baseline.loadgenCpu * 100, value: best.service.loadgenCpu * 100, unit: '%', ratio: best.service.loadgenCpu / best.baseline.loadgenCpu })
    // What a floor leaves per webhook: at floor × baseline req/s the machine's cores have this
    // much CPU time per request, for the server, the database and the load generator together.
    const cores = availableParallelism()
    const budgetMicros = (f) => cores * 1e6 / (f * figures.baseline)
    rows.push({ name: `  CPU per webhook: the service's process vs what the ${floor}× floor leaves on ${cores} cores (diagnostic)`, baseline: budgetMicros(floor), value: best.service.serverMicros, unit: 'µs', ratio: best.service.serverMicros / budgetMicros(floor) })
    // Near 100 %: the one thread of the event loop bounds the figure, whatever cores are left.
    rows.push({ name: `  the service's event loop, share of the run it was busy (diagnostic)`, baseline: 100, value: best.service.loopBusyShare * 100, unit: '%', ratio: best.service.loopBusyShare })
    // Several replicas: the same path committing to PostgreSQL (fsync on), SQLite beside it.
    const pgFloor = 0.15
    const pgRatio = figures['service-postgres'] / figures.baseline
    rows.push({ name: `webhook ${alertCount}-alert bodies, durable outbox on PostgreSQL vs bare Fastify`, baseline: figures.baseline, value: figures['service-postgres'], unit: 'req/s', ratio: pgRatio, goal: `floor ≥ ${pgFloor}×: ${pgRatio >= pgFloor ? 'held' : 'BROKEN'}` })
    const { serverMicros, postgresMicros } = best['service-postgres']
    if (postgresMicros !== null) {
      rows.push({ name: `  CPU per webhook on PostgreSQL: PostgreSQL's processes vs what the ${pgFloor}× floor leaves on ${cores} cores (diagnostic)`, baseline: budgetMicros(pgFloor), value: postgresMicros, unit: 'µs', ratio: postgresMicros / budgetMicros(pgFloor) })
    }
    rows.push({ name: `  CPU per webhook on PostgreSQL: the service's process vs the same on SQLite (diagnostic)`, baseline: best.service.serverMicros, value: serverMicros, unit: 'µs', ratio: serverMicros / best.service.serverMicros })
    rows.push({ name: `  PostgreSQL vs SQLite, same bodies (diagnostic)`, baseline: figures.service, value: figures['service-postgres'], unit: 'req/s', ratio: figures['service-postgres'] / figures.service })
    // Diagnostic: the same app with an intake that stores nothing, against the same baseline.
    rows.push({ name: `  same, outbox replaced by an intake that stores nothing (diagnostic)`, baseline: figures.baseline, value: figures['no-outbox'], unit: 'req/s', ratio: figures['no-outbox'] / figures.baseline })
    // Diagnostic: the same statements on an in-memory database: what is left with no disk at all.
    rows.push({ name: `  same, SQLite in memory: no file, WAL or sync (diagnostic)`, baseline: figures.baseline, value: figures['service-memory'], unit: 'req/s', ratio: figures['service-memory'] / figures.baseline })
    // Diagnostic: what the durable outbox itself costs, against the same app storing nothing.
    rows.push({ name: `  durable outbox vs the same app storing nothing (diagnostic)`, baseline: figures['no-outbox'], value: figures.service, unit: 'req/s', ratio: figures.service / figures['no-outbox'] })
  }
  return rows
}
