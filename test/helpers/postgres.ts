import { spawn, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import pg from 'pg'
import { freePort } from './prometheus.js'

// A real, throwaway PostgreSQL for tests (Debian's `postgresql` package): initdb + pg_ctl in
// a temporary directory owned by the `postgres` system user (initdb refuses to run as root),
// on a free 127.0.0.1 port (retried if another process takes it first), trust auth on
// loopback only. stop() shuts it down and removes the directory; a process 'exit' hook stops
// it too if a test dies first. Missing binaries fail loudly: these tests never skip.

export const POSTGRES_PACKAGE = 'postgresql'

export interface RunningPostgres {
  port: number
  // postgres://postgres@127.0.0.1:<port>/<db>
  url: (database?: string) => string
  // A new empty database, for one test's store.
  createDatabase: (prefix?: string) => Promise<string>
  // Stops the server, keeping its data (a database outage); `start` brings it back on the same port.
  pause: (mode?: 'fast' | 'immediate') => Promise<void>
  resume: () => Promise<void>
  stop: () => Promise<void>
}

export function findPostgresBin (where: { root?: string, path?: string } = {}): string {
  const candidates: string[] = []
  const root = where.root ?? '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
    for (const v of versions) candidates.push(join(root, v, 'bin'))
  }
  candidates.push(...(where.path ?? process.env.PATH ?? '').split(delimiter).filter((p) => p !== ''))
  const bin = candidates.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')))
  if (bin === undefined) {
    throw new Error(`PostgreSQL's initdb and pg_ctl were not found in /usr/lib/postgresql/*/bin or on PATH: install the Debian package \`${POSTGRES_PACKAGE}\` (apt-get install -y ${POSTGRES_PACKAGE}; .ci/run does this)`)
  }
  return bin
}

const isRoot = (): boolean => process.getuid?.() === 0

function postgresUser (): { uid: number, gid: number } {
  const id = (flag: string): number => {
    const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`running as root needs the \`postgres\` system user (from the Debian package \`${POSTGRES_PACKAGE}\`): ${r.stderr.trim()}`)
    return Number(r.stdout.trim())
  }
  return { uid: id('-u'), gid: id('-g') }
}

// As the postgres user when root; bounded by `timeoutMs`.
async function run (file: string, args: string[], timeoutMs: number): Promise<{ code: number | null, output: string }> {
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args]
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } })
    let output = ''
    child.stdout.on('data', (c: Buffer) => { output += c.toString('utf8') })
    child.stderr.on('data', (c: Buffer) => { output += c.toString('utf8') })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('exit', (code) => { clearTimeout(timer); resolve({ code, output }) })
  })
}

export async function startPostgres (opts: { settings?: Record<string, string> } = {}): Promise<RunningPostgres> {
  const bin = findPostgresBin()
  const dir = mkdtempSync(join(tmpdir(), 'alert-enricher-postgres-'))
  const data = join(dir, 'data')
  if (isRoot()) {
    const { uid, gid } = postgresUser()
    chownSync(dir, uid, gid)
  }
  const cleanup = (): void => { rmSync(dir, { recursive: true, force: true }) }
  const init = await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], 120_000)
  if (init.code !== 0) {
    cleanup()
    throw new Error(`initdb failed (${String(init.code)}):\n${init.output}`)
  }
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    max_connections: '200',
    // A test server: a crash of the *database* is not what these tests exercise.
    fsync: 'off',
    full_page_writes: 'off',
    ...opts.settings
  }
  let port = 0
  const pgCtl = async (args: string[]): Promise<{ code: number | null, output: string }> => await run(join(bin, 'pg_ctl'), ['-D', data, ...args], 60_000)
  const startOn = async (p: number): Promise<{ code: number | null, output: string }> => {
    const o = Object.entries({ ...settings, port: String(p) }).map(([k, v]) => `-c ${k}=${v}`).join(' ')
    return await pgCtl(['-w', '-t', '30', '-l', join(dir, 'server.log'), '-o', o, 'start'])
  }
  const stopSync = (): void => { spawnSync(isRoot() ? 'runuser' : join(bin, 'pg_ctl'), [...(isRoot() ? ['-u', 'postgres', '--', join(bin, 'pg_ctl')] : []), '-D', data, '-m', 'immediate', 'stop'], { stdio: 'ignore', timeout: 30_000 }) }
  process.once('exit', stopSync)

  let last = ''
  for (let attempt = 0; attempt < 5 && port === 0; attempt++) {
    const p = await freePort()
    const r = await startOn(p)
    if (r.code === 0) port = p
    else last = r.output + readLog(dir)
  }
  if (port === 0) {
    process.removeListener('exit', stopSync)
    cleanup()
    throw new Error(`PostgreSQL did not start on a free port after 5 attempts:\n${last}`)
  }

  const url = (database = 'postgres'): string => `postgres://postgres@127.0.0.1:${port}/${database}`
  let counter = 0
  let stopped = false
  return {
    port,
    url,
    async createDatabase (prefix = 'test') {
      const name = `${prefix}_${process.pid}_${++counter}`.replace(/[^a-z0-9_]/gi, '_').toLowerCase()
      const client = new pg.Client({ connectionString: url() })
      await client.connect()
      try {
        await client.query(`CREATE DATABASE ${name} TEMPLATE template0`)
      } finally {
        await client.end()
      }
      return name
    },
    async pause (mode = 'fast') {
      const r = await pgCtl(['-m', mode, '-w', 'stop'])
      if (r.code !== 0) throw new Error(`pg_ctl stop failed:\n${r.output}`)
    },
    async resume () {
      const r = await startOn(port)
      if (r.code !== 0) throw new Error(`pg_ctl start on port ${port} failed:\n${r.output}${readLog(dir)}`)
    },
    async stop () {
      if (stopped) return
      stopped = true
      await pgCtl(['-m', 'immediate', '-w', 'stop'])
      process.removeListener('exit', stopSync)
      cleanup()
    }
  }
}

function readLog (dir: string): string {
  const r = spawnSync('tail', ['-n', '30', join(dir, 'server.log')], { encoding: 'utf8' })
  return r.stdout ?? ''
}
