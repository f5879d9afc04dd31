import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadSettings } from '../src/config/settings.js'
import { STORE_OPERATIONS } from '../src/store/types.js'
import { REPO } from './helpers/app.js'

// The documented interface keeps up with the code: users script against these names, and a
// variable or label value missing from the docs is one nobody can find.

const doc = (name: string): string => readFileSync(join(REPO, 'docs', name), 'utf8')

t.test('every variable the settings read is in docs/configuration.md', async (t) => {
  const read = new Set<string>()
  const env = new Proxy({}, { get: (_target, key) => { if (typeof key === 'string') read.add(key); return undefined } })
  loadSettings(env, () => { throw new Error('no files') })
  // NAME_FILE is documented once for all secrets, beside NAME.
  const names = [...read].map((k) => k.replace(/_FILE$/, ''))
  t.ok(names.includes('SLACK_UPDATE_DEBOUNCE_MS'), `the proxy saw the reads (${names.length})`)
  const text = doc('configuration.md')
  for (const name of new Set(names)) t.ok(text.includes(`\`${name}\``), name)
})

t.test('every operation label of alert_enricher_store_errors_total is in docs/metrics.md', async (t) => {
  const row = doc('metrics.md').split('\n').find((l) => l.startsWith('| `alert_enricher_store_errors_total`')) ?? ''
  for (const operation of STORE_OPERATIONS) t.ok(row.includes(`\`${operation}\``), operation)
})
