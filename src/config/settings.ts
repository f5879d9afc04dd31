import { readFileSync } from 'node:fs'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { DEFAULT_PAGERDUTY_EVENTS_URL } from '../notify/pagerduty/notifier.js'
import { DEFAULT_SLACK_API_URL } from '../notify/slack/web-api.js'
import { resolveSecret } from './secrets.js'

// Process settings from the environment (shared/design/interface.md). Every secret also
// works as NAME_FILE, the Kubernetes/Docker secrets convention.

export const Settings = Type.Object({
  port: Type.Integer({ minimum: 0, maximum: 65535 }),
  host: Type.String({ minLength: 1 }),
  catalogPath: Type.String({ minLength: 1 }),
  runbooksDir: Type.String({ minLength: 1 }),
  runbookBaseUrl: Type.Optional(Type.String({ pattern: '^https?://', description: "overrides the catalog's runbookBaseUrl" })),
  dataDir: Type.String({ minLength: 1 }),
  // postgres://… selects the PostgreSQL engine (several replicas share it); unset keeps SQLite
  // in dataDir. A secret: it may hold a password.
  databaseUrl: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', description: 'postgres:// or postgresql:// URL' })),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))),
  webhookBearerToken: Type.Optional(Type.String({ minLength: 1 })),
  webhookBasicAuth: Type.Optional(Type.Object({ username: Type.String({ minLength: 1 }), password: Type.String({ minLength: 1 }) })),
  adminToken: Type.Optional(Type.String({ minLength: 1 })),
  webhookBodyLimitBytes: Type.Integer({ minimum: 1024 }),
  /** PagerDuty webhooks v3 signing secrets (several while one is rotated); unset: the route answers 404. */
  pagerDutyWebhookSecrets: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
  pagerDutyEventsUrl: Type.String({ minLength: 1 }),
  // Slack Web API base (bot-token destinations); tests point it at a fake.
  slackApiUrl: Type.String({ pattern: '^https?://' }),
  // Verifies POST /integrations/slack/interactions; unset turns that route off.
  slackSigningSecret: Type.Optional(Type.String({ minLength: 1 })),
  // At most one chat.update per Slack incident message this often; 0 edits at every change.
  slackUpdateDebounceMs: Type.Integer({ minimum: 0 }),
  // Delivery tuning, all optional with production defaults.
  idempotencyWindowSeconds: Type.Integer({ minimum: 0 }),
  notifyTimeoutMs: Type.Integer({ minimum: 100 }),
  maxDeliveryAgeSeconds: Type.Integer({ minimum: 60 }),
  // What a 2xx from /webhook survives: FULL (default) = its rows are fsynced (power loss, OS
  // crash); NORMAL = written to the OS but not fsynced (process crash / SIGKILL only).
  outboxSynchronous: Type.Union([Type.Literal('FULL'), Type.Literal('NORMAL')])
})
export type Settings = Static<typeof Settings>

export type Env = Record<string, string | undefined>

export class SettingsError extends Error {}

/** Reads NAME, or the file named by NAME_FILE (trailing newline trimmed). */
export function readSecretEnv (env: Env, name: string, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): string | undefined {
  try {
    return resolveSecret({ env: name }, env, readFile)
  } catch (err) {
    // resolveSecret's message names the path, never the content.
    throw new SettingsError(err instanceof Error ? err.message : String(err))
  }
}

// A comma-separated list of secrets (rotation: old and new side by side). Errors never quote it.
function splitSecrets (env: Env, name: string, readFile?: (p: string) => string): string[] | undefined {
  const raw = readSecretEnv(env, name, readFile)
  if (raw === undefined) return undefined
  const secrets = raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (secrets.length === 0) throw new SettingsError(`${name}: set but holds no secret (expected one or more, comma-separated)`)
  return secrets
}

function nonEmptyOr (value: string | undefined, fallback: string): string {
  return value === undefined || value === '' ? fallback : value
}

function int (env: Env, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw)) throw new SettingsError(`${name}: expected a non-negative integer, got ${JSON.stringify(raw)}`)
  return Number(raw)
}

export function loadSettings (env: Env, readFile?: (p: string) => string): Settings {
  const username = env.WEBHOOK_BASIC_AUTH_USERNAME
  const password = readSecretEnv(env, 'WEBHOOK_BASIC_AUTH_PASSWORD', readFile)
  if ((username === undefined || username === '') !== (password === undefined)) {
    throw new SettingsError('WEBHOOK_BASIC_AUTH_USERNAME and WEBHOOK_BASIC_AUTH_PASSWORD must be set together')
  }
  const token = readSecretEnv(env, 'WEBHOOK_BEARER_TOKEN', readFile)
  const adminToken = readSecretEnv(env, 'ADMIN_BEARER_TOKEN', readFile)
  const pagerDutyWebhookSecrets = splitSecrets(env, 'PAGERDUTY_WEBHOOK_SECRET', readFile)
  const slackSigningSecret = readSecretEnv(env, 'SLACK_SIGNING_SECRET', readFile)
  const databaseUrl = readSecretEnv(env, 'DATABASE_URL', readFile)
  const settings: Settings = {
    port: int(env, 'PORT', 9095),
    host: env.HOST ?? '0.0.0.0',
    catalogPath: env.CATALOG_PATH ?? 'rules/catalog.yaml',
    runbooksDir: env.RUNBOOKS_DIR ?? 'runbooks',
    ...(env.RUNBOOK_BASE_URL !== undefined && env.RUNBOOK_BASE_URL !== '' ? { runbookBaseUrl: env.RUNBOOK_BASE_URL } : {}),
    dataDir: env.DATA_DIR ?? './data',
    ...(databaseUrl !== undefined && databaseUrl !== '' ? { databaseUrl } : {}),
    logLevel: (env.LOG_LEVEL ?? 'info') as Settings['logLevel'],
    ...(token !== undefined ? { webhookBearerToken: token } : {}),
    ...(username !== undefined && username !== '' && password !== undefined ? { webhookBasicAuth: { username, password } } : {}),
    ...(adminToken !== undefined ? { adminToken } : {}),
    ...(pagerDutyWebhookSecrets !== undefined ? { pagerDutyWebhookSecrets } : {}),
    webhookBodyLimitBytes: int(env, 'WEBHOOK_BODY_LIMIT_BYTES', 4 * 1024 * 1024),
    pagerDutyEventsUrl: env.PAGERDUTY_EVENTS_URL ?? DEFAULT_PAGERDUTY_EVENTS_URL,
    slackApiUrl: nonEmptyOr(env.SLACK_API_URL, DEFAULT_SLACK_API_URL).replace(/\/+$/, ''),
    ...(slackSigningSecret !== undefined ? { slackSigningSecret } : {}),
    idempotencyWindowSeconds: int(env, 'IDEMPOTENCY_WINDOW_SECONDS', 600),
    notifyTimeoutMs: int(env, 'NOTIFY_TIMEOUT_MS', 10_000),
    slackUpdateDebounceMs: int(env, 'SLACK_UPDATE_DEBOUNCE_MS', 3_000),
    maxDeliveryAgeSeconds: int(env, 'MAX_DELIVERY_AGE_SECONDS', 86_400),
    outboxSynchronous: (env.OUTBOX_SYNCHRONOUS ?? 'FULL').toUpperCase() as Settings['outboxSynchronous']
  }
  const first = Value.Errors(Settings, settings).First()
  // Never echo the URL: it may hold the password.
  if (first?.path === '/databaseUrl') throw new SettingsError('DATABASE_URL: expected a postgres:// or postgresql:// URL')
  if (first !== undefined) throw new SettingsError(`invalid setting ${first.path.slice(1)}: ${first.message}`)
  return settings
}
