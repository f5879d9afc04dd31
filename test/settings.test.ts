import t from 'tap'
import { loadSettings, SettingsError } from '../src/config/settings.js'

const files: Record<string, string> = { '/run/secrets/token': 'file-token\n', '/run/secrets/pw': 'file-pw\n', '/run/secrets/pd': 'pd-old,pd-new\n' }
const readFile = (p: string): string => {
  const content = files[p]
  if (content === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' })
  return content
}

t.test('defaults match interface.md', async (t) => {
  const s = loadSettings({}, readFile)
  t.match(s, { port: 9095, host: '0.0.0.0', catalogPath: 'rules/catalog.yaml', dataDir: './data', logLevel: 'info', webhookBodyLimitBytes: 4194304, pagerDutyEventsUrl: 'https://events.pagerduty.com/v2/enqueue' })
  t.equal(s.webhookBearerToken, undefined)
  t.equal(s.webhookBasicAuth, undefined)
  t.equal(s.pagerDutyWebhookSecrets, undefined, 'no PagerDuty webhook secret: the route answers 404')
})

t.test('secrets from env or NAME_FILE', async (t) => {
  t.equal(loadSettings({ WEBHOOK_BEARER_TOKEN: 'env-token' }, readFile).webhookBearerToken, 'env-token')
  t.equal(loadSettings({ WEBHOOK_BEARER_TOKEN_FILE: '/run/secrets/token' }, readFile).webhookBearerToken, 'file-token')
  t.same(loadSettings({ WEBHOOK_BASIC_AUTH_USERNAME: 'am', WEBHOOK_BASIC_AUTH_PASSWORD_FILE: '/run/secrets/pw' }, readFile).webhookBasicAuth, { username: 'am', password: 'file-pw' })
})

t.test('PAGERDUTY_WEBHOOK_SECRET: one secret, or several comma-separated during rotation', async (t) => {
  t.same(loadSettings({ PAGERDUTY_WEBHOOK_SECRET: 'pd-one' }, readFile).pagerDutyWebhookSecrets, ['pd-one'])
  t.same(loadSettings({ PAGERDUTY_WEBHOOK_SECRET: ' pd-old , pd-new ,' }, readFile).pagerDutyWebhookSecrets, ['pd-old', 'pd-new'])
  t.same(loadSettings({ PAGERDUTY_WEBHOOK_SECRET_FILE: '/run/secrets/pd' }, readFile).pagerDutyWebhookSecrets, ['pd-old', 'pd-new'])
  t.equal(loadSettings({ PAGERDUTY_WEBHOOK_SECRET: '' }, readFile).pagerDutyWebhookSecrets, undefined, 'empty is unset')
  t.throws(() => loadSettings({ PAGERDUTY_WEBHOOK_SECRET: ' , ,' }, readFile), new SettingsError('PAGERDUTY_WEBHOOK_SECRET: set but holds no secret (expected one or more, comma-separated)'))
})

t.test('RUNBOOK_BASE_URL overrides the catalog base when it is an http(s) URL', async (t) => {
  t.equal(loadSettings({}, readFile).runbookBaseUrl, undefined)
  t.equal(loadSettings({ RUNBOOK_BASE_URL: 'https://git.example/runbooks/' }, readFile).runbookBaseUrl, 'https://git.example/runbooks/')
  t.throws(() => loadSettings({ RUNBOOK_BASE_URL: 'runbooks/' }, readFile), { message: /runbookBaseUrl/ })
})

t.test('bad settings are refused with the variable named, never its secret value', async (t) => {
  t.throws(() => loadSettings({ PORT: 'eighty' }, readFile), new SettingsError('PORT: expected a non-negative integer, got "eighty"'))
  t.throws(() => loadSettings({ PORT: '70000' }, readFile), { message: /port/ })
  t.throws(() => loadSettings({ LOG_LEVEL: 'loud' }, readFile), { message: /logLevel/ })
  t.throws(() => loadSettings({ WEBHOOK_BASIC_AUTH_USERNAME: 'am' }, readFile), { message: /must be set together/ })
  t.throws(() => loadSettings({ WEBHOOK_BASIC_AUTH_PASSWORD: 'hunter2' }, readFile), { message: /must be set together/ })
  for (const env of [{ WEBHOOK_BASIC_AUTH_PASSWORD: 'hunter2' }, { WEBHOOK_BASIC_AUTH_USERNAME: 'am', WEBHOOK_BASIC_AUTH_PASSWORD: 'hunter2', PORT: 'eighty' }]) {
    let message = ''
    try {
      loadSettings(env, readFile)
    } catch (err) {
      message = err instanceof Error ? err.message : String(err)
    }
    t.not(message, '', `${Object.keys(env).join(', ')}: refused`)
    t.notMatch(message, /hunter2/, `${Object.keys(env).join(', ')}: the password is not in the message`)
  }
  t.throws(() => loadSettings({ WEBHOOK_BEARER_TOKEN_FILE: '/run/secrets/missing' }, readFile), { message: /\/run\/secrets\/missing.*ENOENT/ })
})

t.test('Slack: SLACK_API_URL (default slack.com/api) and SLACK_SIGNING_SECRET (or _FILE)', async (t) => {
  const s = loadSettings({}, readFile)
  t.equal(s.slackApiUrl, 'https://slack.com/api')
  t.equal(s.slackSigningSecret, undefined, 'unset: interactivity is off')
  t.equal(loadSettings({ SLACK_API_URL: 'http://127.0.0.1:9999/api/' }, readFile).slackApiUrl, 'http://127.0.0.1:9999/api', 'a trailing slash is dropped')
  t.throws(() => loadSettings({ SLACK_API_URL: 'slack.com/api' }, readFile), { message: /slackApiUrl/ })
  t.equal(loadSettings({}, readFile).slackUpdateDebounceMs, 3_000, 'Slack message updates: at most one every 3 s by default')
  t.equal(loadSettings({ SLACK_UPDATE_DEBOUNCE_MS: '0' }, readFile).slackUpdateDebounceMs, 0)
  t.throws(() => loadSettings({ SLACK_UPDATE_DEBOUNCE_MS: '-1' }, readFile), { message: /slackUpdateDebounceMs|SLACK_UPDATE_DEBOUNCE_MS/ })
  t.equal(loadSettings({ SLACK_SIGNING_SECRET: 'sign' }, readFile).slackSigningSecret, 'sign')
  t.equal(loadSettings({ SLACK_SIGNING_SECRET_FILE: '/run/secrets/token' }, readFile).slackSigningSecret, 'file-token')
})
