// Text helpers shared by the renderers: mrkdwn escaping and length limits that never cut a
// character (or an escape entity) in half.

const ELLIPSIS = '…'

// Slack's rule: escape exactly these three, nothing else. This is what keeps `<!channel>` or
// `<@U123>` in a label from pinging anyone.
export function escapeMrkdwn (raw: string): string {
  if (!/[&<>]/.test(raw)) return raw
  return raw.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

// Limits are counted in UTF-16 code units (String#length): never less than the characters a
// service counts, so a text within our limit is within theirs.
export function truncate (text: string, max: number): string {
  if (text.length <= max) return text
  const budget = Math.max(0, max - ELLIPSIS.length)
  return text.slice(0, graphemeBoundary(text, budget)) + ELLIPSIS
}

// Escapes `raw` and truncates the escaped result to `max`, cutting the raw text between
// characters before escaping, so an entity like `&amp;` is either whole or absent.
export function escapeTruncate (raw: string, max: number): string {
  // Escaping never shortens: a raw text longer than max cannot fit, so skip escaping it whole.
  if (raw.length <= max) {
    const escaped = escapeMrkdwn(raw)
    if (escaped.length <= max) return escaped
  }
  const budget = Math.max(0, max - ELLIPSIS.length)
  let used = 0
  let cut = 0
  for (; cut < raw.length; cut++) {
    const c = raw.charCodeAt(cut)
    const width = c === 38 /* & */ ? 5 : c === 60 || c === 62 /* < > */ ? 4 : 1
    if (used + width > budget) break
    used += width
  }
  return escapeMrkdwn(raw.slice(0, graphemeBoundary(raw, cut))) + ELLIPSIS
}

// The last grapheme-cluster boundary at or before `cut`, so an emoji with its modifiers or a
// letter with its accents is never split. Segmenting the whole text costs O(n) per step in
// V8's ICU, so only a window around the cut is segmented; clusters are far shorter than it.
function graphemeBoundary (text: string, cut: number): number {
  if (cut <= 0) return 0
  if (cut >= text.length) return text.length
  const start = Math.max(0, cut - 64)
  const window = text.slice(start, Math.min(text.length, cut + 64))
  let boundary = start
  for (const { index } of new Intl.Segmenter('en', { granularity: 'grapheme' }).segment(window)) {
    if (start + index > cut) break
    boundary = start + index
  }
  return boundary
}

// One line of text: newlines and tabs would break list layouts.
export function oneLine (text: string): string {
  return text.replace(/[\r\n\t]+/g, ' ').trim()
}

export function distinct<T> (values: Iterable<T>): T[] {
  return [...new Set(values)]
}
