import { formatMatcher, matchesValue, type CompiledMatcher } from './matchers.js'

// Reasoning about matcher lists without alerts: which values a label can take, whether a list
// can match at all, and whether one list implies another. Exact where a label is pinned to a
// finite set of values (`=` or a plain alternation of literals); conservative elsewhere
// (it never claims an implication or contradiction it cannot prove).

/** `A|B|C` (optionally wrapped in one group) → its literal alternatives; undefined for any other regex. */
export function literalAlternatives (source: string): string[] | undefined {
  let body = source
  if (body.startsWith('(?:') && body.endsWith(')')) body = body.slice(3, -1)
  else if (body.startsWith('(') && body.endsWith(')')) body = body.slice(1, -1)
  const alternatives: string[] = []
  let current = ''
  for (let i = 0; i < body.length; i++) {
    const c = body[i] ?? ''
    if (c === '|') { alternatives.push(current); current = ''; continue }
    if (c === '\\') {
      const next = body[i + 1] ?? ''
      if (!/^[^\w\s]$/.test(next)) return undefined // \d, \b, \n … are not literals
      current += next
      i++
      continue
    }
    if ('.^$*+?()[]{}'.includes(c)) return undefined
    current += c
  }
  alternatives.push(current)
  return alternatives
}

/** The values label `name` can take under `matchers`, when some matcher pins it to a finite set. */
export function finiteValues (matchers: readonly CompiledMatcher[], name: string): Set<string> | undefined {
  const own = matchers.filter((m) => m.name === name)
  let candidates: Set<string> | undefined
  for (const m of own) {
    const values = m.op === '=' ? [m.value] : m.op === '=~' ? literalAlternatives(m.value) : undefined
    if (values === undefined) continue
    candidates = candidates === undefined ? new Set(values) : new Set(values.filter((v) => candidates?.has(v)))
  }
  if (candidates === undefined) return undefined
  return new Set([...candidates].filter((v) => own.every((m) => matchesValue(m, v))))
}

/** A label whose matchers no value satisfies, with those matchers; undefined if none is provable. */
export function contradiction (matchers: readonly CompiledMatcher[]): { name: string, matchers: CompiledMatcher[] } | undefined {
  const byName = new Map<string, CompiledMatcher[]>()
  for (const m of matchers) byName.set(m.name, [...byName.get(m.name) ?? [], m])
  for (const [name, own] of byName) {
    if (own.length === 1) continue // one matcher alone is always satisfiable (as far as we can tell)
    const values = finiteValues(own, name)
    const opposite = own.some((a) => own.some((b) => a.value === b.value &&
      ((a.op === '=~' && b.op === '!~') || (a.op === '=' && b.op === '!='))))
    if ((values !== undefined && values.size === 0) || opposite) return { name, matchers: own }
  }
  return undefined
}

/** True when every label set that satisfies `later` also satisfies `earlier`. */
export function implies (later: readonly CompiledMatcher[], earlier: readonly CompiledMatcher[]): boolean {
  return earlier.every((m) => impliedBy(m, later))
}

function impliedBy (m: CompiledMatcher, list: readonly CompiledMatcher[]): boolean {
  if (list.some((o) => o.name === m.name && o.op === m.op && o.value === m.value)) return true
  const values = finiteValues(list, m.name)
  return values !== undefined && [...values].every((v) => matchesValue(m, v))
}

export function describeMatchers (matchers: readonly CompiledMatcher[]): string {
  return matchers.map(formatMatcher).join(', ')
}
