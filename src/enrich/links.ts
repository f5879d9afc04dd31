import type { LabelSet } from '../alertmanager/webhook.js'

// Link builders for an enriched alert. Pure string functions.

const ABSOLUTE_HTTP = /^https?:\/\//i

/**
 * A catalog runbook reference as a URL: absolute http(s) URLs pass through unchanged; anything
 * else (`file.md#anchor`) resolves against runbookBaseUrl like a relative link in HTML, with the
 * base treated as a directory whether or not it ends in `/`.
 */
export function resolveRunbookUrl (ref: string, runbookBaseUrl: string): string {
  if (ABSOLUTE_HTTP.test(ref)) return ref
  const base = runbookBaseUrl.endsWith('/') ? runbookBaseUrl : `${runbookBaseUrl}/`
  // Both must parse: a reference like "/\\" is not a URL relative to any base.
  if (URL.canParse(ref, base)) return new URL(ref, base).toString()
  // A non-URL base (e.g. a bare path), or a reference no URL parser takes: plain join, never a throw.
  return base + ref.replace(/^(\.\/)+/, '')
}

/**
 * Alertmanager UI "new silence" link prefilled with the alert's labels:
 * `<externalURL>/#/silences/new?filter=<url-encoded {a="b", c="d"}>`.
 * Labels are sorted by name; values are JSON string literals, exactly as the Alertmanager UI
 * prints (and parses) matcher values, then percent-encoded as the UI does (encodeURIComponent).
 * No labels → no filter parameter, as the UI itself does for an empty filter.
 */
export function silenceUrl (externalURL: string, labels: LabelSet): string {
  const page = `${externalURL.replace(/\/+$/, '')}/#/silences/new`
  const names = Object.keys(labels).sort()
  if (names.length === 0) return page
  const filter = `{${names.map((name) => `${name}=${JSON.stringify(labels[name])}`).join(', ')}}`
  return `${page}?filter=${encodeURIComponent(filter)}`
}

/** The alert's Prometheus graph link; Alertmanager sends "" when it has none. */
export function sourceUrl (generatorURL: string): string | null {
  return generatorURL === '' ? null : generatorURL
}
