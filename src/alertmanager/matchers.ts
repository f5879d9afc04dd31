import { Type, type Static } from '@sinclair/typebox'
import type { LabelSet } from './webhook.js'

// Alertmanager matchers (`name=value`, `!=`, `=~`, `!~`) with Alertmanager's semantics:
// regexes are fully anchored, and a missing label matches as the empty string.

export const MatchOp = Type.Union([Type.Literal('='), Type.Literal('!='), Type.Literal('=~'), Type.Literal('!~')])
export type MatchOp = Static<typeof MatchOp>

export const LABEL_NAME_PATTERN = '^[a-zA-Z_][a-zA-Z0-9_]*$'

export const Matcher = Type.Object({
  name: Type.String({ pattern: LABEL_NAME_PATTERN }),
  op: MatchOp,
  value: Type.String()
}, { additionalProperties: false })
export type Matcher = Static<typeof Matcher>

/** A parsed matcher; `regex` is set exactly when `op` is `=~` or `!~`. */
export type CompiledMatcher = Readonly<Matcher> & { readonly regex?: RegExp }

export type ParseMatcherResult =
  | { ok: true, matcher: CompiledMatcher }
  | { ok: false, error: string, column: number }

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/
const MUST_QUOTE = /[\s{}!=~,"']/

/** Parses one matcher. `column` (1-based) points into `text` at the offending character. */
export function parseMatcher (text: string): ParseMatcherResult {
  let pos = skipSpace(text, 0)
  const fail = (error: string, at: number): ParseMatcherResult => ({ ok: false, error, column: at + 1 })

  const nameMatch = LABEL_NAME.exec(text.slice(pos))
  if (nameMatch === null) return fail('expected a label name', pos)
  const name = nameMatch[0]
  pos = skipSpace(text, pos + name.length)

  const op = (['=~', '!~', '!=', '='] as const).find((o) => text.startsWith(o, pos))
  if (op === undefined) return fail(`expected one of =, !=, =~, !~ after label name '${name}'`, pos)
  pos = skipSpace(text, pos + op.length)
  const valueStart = pos

  let value: string
  if (text[pos] === '"') {
    const quoted = readQuoted(text, pos)
    if (!quoted.ok) return fail('unterminated quoted value', pos)
    value = quoted.value
    pos = skipSpace(text, quoted.end)
    if (pos < text.length) return fail('unexpected text after the quoted value', pos)
  } else {
    value = text.slice(pos).trimEnd()
    const bad = MUST_QUOTE.exec(value)
    if (bad?.index === 0 && '=~!'.includes(value[0] ?? '')) return fail(`unexpected '${value[0] ?? ''}' after operator '${op}'`, pos)
    if (bad !== null) return fail(`a value containing spaces or any of {}!=~,"' must be double-quoted`, pos + bad.index)
  }

  if (op === '=' || op === '!=') return { ok: true, matcher: { name, op, value } }
  const regex = compileAnchored(value)
  if (typeof regex === 'string') return fail(`invalid regular expression: ${regex}`, valueStart)
  return { ok: true, matcher: { name, op, value, regex } }
}

/** The label's value as Alertmanager sees it: missing means "". */
export function labelValue (labels: LabelSet, name: string): string {
  return Object.hasOwn(labels, name) ? labels[name] ?? '' : ''
}

/** Whether `value` (a label value, "" when missing) satisfies one matcher. */
export function matchesValue (m: CompiledMatcher, value: string): boolean {
  switch (m.op) {
    case '=': return value === m.value
    case '!=': return value !== m.value
    case '=~': return m.regex?.test(value) ?? false
    case '!~': return !(m.regex?.test(value) ?? false)
  }
}

export function matches (m: CompiledMatcher, labels: LabelSet): boolean {
  return matchesValue(m, labelValue(labels, m.name))
}

/** Matchers of one list are ANDed; an empty list matches everything. */
export function matchesAll (matchers: readonly CompiledMatcher[], labels: LabelSet): boolean {
  for (const m of matchers) if (!matches(m, labels)) return false
  return true
}

/** Canonical text: the value is always double-quoted, so parseMatcher(formatMatcher(m)) round-trips. */
export function formatMatcher (m: Matcher): string {
  const escaped = m.value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
  return `${m.name}${m.op}"${escaped}"`
}

function skipSpace (text: string, pos: number): number {
  while (pos < text.length && (text[pos] === ' ' || text[pos] === '\t' || text[pos] === '\n' || text[pos] === '\r')) pos++
  return pos
}

// Escapes as Alertmanager's matcher parser: \" \\ \n; any other backslash is kept, so a
// regex such as "\d+" needs no doubling.
function readQuoted (text: string, start: number): { ok: true, value: string, end: number } | { ok: false } {
  let value = ''
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i]
    if (c === '"') return { ok: true, value, end: i + 1 }
    if (c === '\\' && i + 1 < text.length) {
      const next = text[i + 1]
      if (next === '"' || next === '\\') { value += next; i++; continue }
      if (next === 'n') { value += '\n'; i++; continue }
    }
    value += c
  }
  return { ok: false }
}

// Go's RE2 allows leading flag groups like (?i) or (?is); JavaScript (Node 20) only as RegExp flags.
const LEADING_FLAGS = /^\(\?([is]+)\)/

/** `^(?:re)$`, or the reason the regex does not compile. */
export function compileAnchored (source: string): RegExp | string {
  const flags = LEADING_FLAGS.exec(source)
  const body = flags === null ? source : source.slice(flags[0].length)
  const jsFlags = flags === null ? '' : [...new Set(flags[1])].join('')
  try {
    new RegExp(body, jsFlags) // alone first: "a)|(b" must not escape the anchoring group
    return new RegExp(`^(?:${body})$`, jsFlags)
  } catch (err) {
    return err instanceof Error ? err.message.replace(/^Invalid regular expression: /, '') : String(err)
  }
}
