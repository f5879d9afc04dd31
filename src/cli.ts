#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { validateWebhook } from './alertmanager/validate.js'
import { loadCatalog, withOverrides } from './config/catalog.js'
import { checkProject } from './config/check.js'
import { formatProblem } from './config/problems.js'
import { explain } from './notify/explain.js'
import { formatExplanation } from './notify/explain-text.js'
import { serve } from './main.js'
import { ackCommand, incidentsCommand } from './incidents/cli.js'
import { migrateCommand } from './store/postgres/migrate-command.js'

// In the spirit of amtool/promtool: `serve`, `check` a catalog, `explain` a payload.

const USAGE = `usage:
  alert-enricher serve
  alert-enricher migrate            (PostgreSQL: apply the schema migrations and exit; needs DATABASE_URL)
  alert-enricher check [--catalog PATH] [--rules DIR] [--runbooks DIR]
  alert-enricher explain PAYLOAD.json [--json] [--catalog PATH] [--now RFC3339]
  alert-enricher incidents [--state triggered|acknowledged|resolved] [--json]
  alert-enricher ack ID --by NAME

incidents and ack talk to the running service: ALERT_ENRICHER_URL (default
http://127.0.0.1:$PORT) with ADMIN_BEARER_TOKEN.

environment: see README (PORT, HOST, CATALOG_PATH, DATA_DIR, DATABASE_URL, LOG_LEVEL, ...)`

async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      await serve(process.env)
      return -1 // keeps running; main.ts owns shutdown
    case 'check':
      return await check(rest)
    case 'migrate':
      return await migrateCommand(process.env, (line) => { console.log(line) }, (line) => { console.error(line) })
    case 'explain':
      return await explainCommand(rest)
    case 'incidents':
      return await incidentsCommand(rest, process.env)
    case 'ack':
      return await ackCommand(rest, process.env)
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(USAGE)
      return command === undefined ? 2 : 0
    default:
      console.error(`unknown command ${JSON.stringify(command)}\n${USAGE}`)
      return 2
  }
}

async function check (args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { catalog: { type: 'string' }, rules: { type: 'string' }, runbooks: { type: 'string' } } })
  const catalogPath = values.catalog ?? process.env.CATALOG_PATH ?? 'rules/catalog.yaml'
  const problems = await checkProject({
    catalogPath,
    rulesDir: values.rules ?? 'rules',
    runbooksDir: values.runbooks ?? process.env.RUNBOOKS_DIR ?? 'runbooks'
  })
  for (const p of problems) console.log(formatProblem(p))
  if (problems.length > 0) {
    console.error(`${problems.length} problem(s)`)
    return 1
  }
  console.log(`${catalogPath}: OK`)
  return 0
}

async function explainCommand (args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' }, catalog: { type: 'string' }, now: { type: 'string' } } })
  const file = positionals[0]
  if (file === undefined) {
    console.error(USAGE)
    return 2
  }
  let body: unknown
  try {
    body = JSON.parse(file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8'))
  } catch (err) {
    console.error(`${file}: ${(err as Error).message}`)
    return 1
  }
  const validated = validateWebhook(body)
  if (!validated.ok) {
    console.error(`${file}: not an Alertmanager webhook v4 payload: ${validated.message}`)
    return 1
  }
  const loaded = withOverrides(await loadCatalog(values.catalog ?? process.env.CATALOG_PATH ?? 'rules/catalog.yaml'), { runbookBaseUrl: process.env.RUNBOOK_BASE_URL || undefined })
  if (!loaded.ok) {
    for (const p of loaded.problems) console.error(formatProblem(p))
    return 1
  }
  const now = values.now !== undefined ? new Date(values.now) : new Date()
  if (Number.isNaN(now.getTime())) {
    console.error(`--now: not a timestamp: ${values.now}`)
    return 2
  }
  const result = explain(validated.payload, loaded.catalog, now)
  console.log(values.json === true ? JSON.stringify(result, null, 2) : formatExplanation(result, now))
  return 0
}

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code
}, (err: unknown) => {
  // One line, then exit: a start that failed must not linger without a listener.
  console.error(err instanceof Error ? err.message : String(err))
  process.exit(1)
})
