// Text rules every layer shares (enrichment, renderers, the CLI): one copy each, so a
// summary or a deadline reads the same in Slack, PagerDuty and `alert-enricher explain`.

/** The value, or undefined when it is missing or only whitespace. */
export function nonEmpty (value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value
}

// "in 4 min", "overdue by 3 min", "in 2 h 5 min", "in 3 d 4 h": whole units, rounded down, so
// the time left to a deadline is never overstated.
export function formatRelative (deadline: Date, now: Date): string {
  const diff = deadline.getTime() - now.getTime()
  const span = formatSpan(Math.abs(diff))
  return diff >= 0 ? `in ${span}` : `overdue by ${span}`
}

export function formatSpan (ms: number): string {
  const minutes = Math.floor(ms / 60_000)
  if (minutes < 1) return '<1 min'
  if (minutes < 120) return `${minutes} min`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`
  const days = Math.floor(hours / 24)
  return hours % 24 === 0 ? `${days} d` : `${days} d ${hours % 24} h`
}

// PostgreSQL's text type cannot hold U+0000 (SQLSTATE 22021) while SQLite can, so text from a
// request that may be stored must not contain it: refused at the HTTP edge, the same on both
// engines, instead of a failed write answered 5xx (which the sender retries forever).
/** A JSON Schema `pattern` for strings without a NUL character. */
export const NUL_FREE = '^[^\\u0000]*$'
export const NUL_PROBLEM = 'contains a NUL character (U+0000)'

export function hasNul (value: string): boolean {
  return value.includes('\u0000')
}
