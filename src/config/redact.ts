import type { Catalog } from './catalog.js'
import type { CatalogDocument, SecretRef } from './catalog-schema.js'

// The catalog holds secret *references* only (env var names, file paths), never values, so
// "redacted" means: show where each secret comes from, never what it is.
export function redactCatalog (catalog: Catalog): { file: string, entries: number, catalog: CatalogDocument } {
  const destinations: CatalogDocument['destinations'] = {}
  for (const [id, d] of Object.entries(catalog.doc.destinations)) {
    destinations[id] = d.type === 'pagerduty'
      ? { ...d, routingKey: describeRef(d.routingKey) }
      : 'botToken' in d
        ? { ...d, botToken: describeRef(d.botToken) }
        : { ...d, webhookUrl: describeRef(d.webhookUrl) }
  }
  return { file: catalog.file, entries: catalog.entries.length, catalog: { ...catalog.doc, destinations } }
}

function describeRef (ref: SecretRef): SecretRef {
  return 'env' in ref ? { env: ref.env } : { file: ref.file }
}
