import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseCatalog, withOverrides, type CatalogResult } from '../src/config/catalog.js'
import { createCatalogHolder } from '../src/config/catalog-holder.js'
import { createMetrics } from '../src/metrics.js'
import { BUNDLED_CATALOG } from './helpers/app.js'

t.test('deployment overrides survive reloads (the holder parses with the injected parser)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-holder-'))
  const path = join(dir, 'catalog.yaml')
  const text = readFileSync(BUNDLED_CATALOG, 'utf8')
  writeFileSync(path, text)
  const base = 'https://git.example/ops/blob/main/runbooks/'
  const parse = (body: string, file: string): CatalogResult => withOverrides(parseCatalog(body, file), { runbookBaseUrl: base })
  const initial = parse(text, path)
  if (!initial.ok) throw new Error('bundled catalog invalid')
  const holder = createCatalogHolder(path, initial.catalog, text, { metrics: createMetrics({ defaultMetrics: false }), logger: { info () {}, warn () {}, error () {} }, now: () => new Date(), parse })
  t.equal(holder.current().doc.runbookBaseUrl, base)
  writeFileSync(path, text.replace('team: platform\n  runbook:', 'team: sre\n  runbook:'))
  const result = await holder.reload()
  t.match(result, { ok: true, changed: true })
  t.equal(holder.current().doc.defaults.team, 'sre', 'the new catalog is live')
  t.equal(holder.current().doc.runbookBaseUrl, base, 'and still carries the override')
  const plain = withOverrides(parseCatalog(text, path), {})
  t.equal(plain.ok ? plain.catalog.doc.runbookBaseUrl : undefined, 'http://localhost:9095/runbooks/', 'no override: the catalog\'s own base')
})
