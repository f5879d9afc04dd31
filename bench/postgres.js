// A throwaway PostgreSQL for the benchmarks (same approach as test/helpers/postgres.ts: initdb +
// pg_ctl from Debian's `postgresql` package, as the postgres user when root, a free loopback
// port), with fsync on: the figures are for a durable commit.
import { spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

function binDir () {
  const root = '/usr/lib/postgresql'
  const dirs = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => b - a).map((v) => join(root, v, 'bin')) : []
  dirs.push(...(process.env.PATH ?? '').split(':'))
  const bin = dirs.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')))
  if (bin === undefined) throw new Error('initdb/pg_ctl not found: install the Debian package `postgresql`')
  return bin
}

const root = process.getuid?.() === 0
function run (file, args) {
  const r = spawnSync(root ? 'runuser' : file, root ? ['-u', 'postgres', '--', file, ...args] : args, { encoding: 'utf8', timeout: 120_000 })
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stdout}${r.stderr}`)
}

// CPU seconds used so far by the server's processes (the postmaster and its children:
// backends, WAL writer, checkpointer; those that exited count in the postmaster's children's
// time), read from /proc; null where there is no /proc.
function serverCpuSeconds (data) {
  if (!existsSync('/proc/self/stat')) return null
  const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
  const ticksPerSecond = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim())
  let ticks = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let fields
    try {
      // Fields after the command name, which may itself hold spaces and parentheses.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    } catch (err) {
      if (err.code === 'ENOENT' || err.code === 'ESRCH') continue // exited while we read
      throw err
    }
    // fields[1] is the parent pid; [11] and [12] are user and system time in ticks, [13] and
    // [14] those of the children it has reaped.
    if (Number(entry) === postmaster) ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])
    else if (Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks / ticksPerSecond
}

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer()
  s.once('error', reject)
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) })
})

export async function startBenchPostgres () {
  const bin = binDir()
  const dir = mkdtempSync(join(tmpdir(), 'ae-bench-pg-'))
  if (root) {
    const id = (f) => Number(spawnSync('id', [f, 'postgres'], { encoding: 'utf8' }).stdout.trim())
    chownSync(dir, id('-u'), id('-g'))
  }
  const data = join(dir, 'data')
  run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions'])
  let port
  for (let i = 0; i < 5 && port === undefined; i++) {
    const p = await freePort()
    try {
      run(join(bin, 'pg_ctl'), ['-D', data, '-w', '-l', join(dir, 'log'), '-o', `-c listen_addresses=127.0.0.1 -c port=${p} -c unix_socket_directories=${dir} -c max_connections=200`, 'start'])
      port = p
    } catch (err) {
      if (i === 4) throw err
    }
  }
  let n = 0
  return {
    cpuSeconds: () => serverCpuSeconds(data),
    async createDatabase () {
      const name = `bench_${++n}`
      const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` })
      await c.connect()
      await c.query(`CREATE DATABASE ${name}`)
      await c.end()
      return `postgres://postgres@127.0.0.1:${port}/${name}`
    },
    stop () {
      run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop'])
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
