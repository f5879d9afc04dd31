import { parseArgs } from 'node:util'
import { readSecretEnv } from '../config/settings.js'
import type { Incident } from './types.js'

// `alert-enricher incidents` and `ack`: clients of the running service's admin API (the
// service owns the store; its data directory is locked while it runs).

type Env = Record<string, string | undefined>

function api (env: Env): { base: string, headers: Record<string, string> } {
  const base = env.ALERT_ENRICHER_URL ?? `http://127.0.0.1:${env.PORT ?? '9095'}`
  const token = readSecretEnv(env, 'ADMIN_BEARER_TOKEN')
  return { base: base.replace(/\/+$/, ''), headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }
}

async function call (env: Env, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number, json: unknown } | { error: string }> {
  const { base, headers } = api(env)
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {})
    })
    return { status: res.status, json: await res.json() as unknown }
  } catch (err) {
    return { error: `cannot reach ${base}: ${err instanceof Error ? err.message : String(err)}` }
  }
}

function failed (r: Awaited<ReturnType<typeof call>>): number | undefined {
  if ('error' in r) {
    console.error(r.error)
    return 1
  }
  if (r.status >= 400) {
    const message = (r.json as { message?: string }).message ?? `HTTP ${r.status}`
    console.error(message)
    return 1
  }
  return undefined
}

export function incidentLine (i: Incident): string {
  const ack = i.acknowledgedBy !== null ? ` acked by ${i.acknowledgedBy} via ${i.acknowledgedVia ?? '?'}` : ''
  const breach = i.breached ? ` BREACHED, ${i.escalations} escalation(s)` : ''
  return `${i.id}\t${i.priority}\t${i.state}\trespond by ${i.respondBy}${ack}${breach}\t${i.title}`
}

export async function incidentsCommand (args: string[], env: Env): Promise<number> {
  const { values } = parseArgs({ args, options: { state: { type: 'string' }, json: { type: 'boolean' } } })
  const states = values.state !== undefined ? [values.state] : ['triggered', 'acknowledged']
  const incidents: Incident[] = []
  for (const state of states) {
    const r = await call(env, 'GET', `/api/v1/incidents?state=${encodeURIComponent(state)}&limit=1000`)
    const code = failed(r)
    if (code !== undefined) return code
    if (!('error' in r)) incidents.push(...(r.json as { incidents: Incident[] }).incidents)
  }
  incidents.sort((a, b) => b.id - a.id)
  process.stdout.write(`${values.json === true ? JSON.stringify(incidents, null, 2) : incidents.map(incidentLine).join('\n')}\n`)
  return 0
}

export async function ackCommand (args: string[], env: Env): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { by: { type: 'string' } } })
  const id = positionals[0]
  if (id === undefined || !/^\d+$/.test(id) || values.by === undefined || values.by === '') {
    console.error('usage: alert-enricher ack ID --by NAME')
    return 2
  }
  const r = await call(env, 'POST', `/api/v1/incidents/${id}/ack`, { by: values.by })
  const code = failed(r)
  if (code !== undefined) return code
  if (!('error' in r)) process.stdout.write(`${incidentLine(r.json as Incident)}\n`)
  return 0
}
