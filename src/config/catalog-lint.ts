import { TypeCompiler } from '@sinclair/typebox/compiler'
import { contradiction, describeMatchers, implies } from '../alertmanager/matcher-sets.js'
import { parseMatcher, type CompiledMatcher } from '../alertmanager/matchers.js'
import { validateCalendar } from '../enrich/sla.js'
import { hasNul, NUL_PROBLEM } from '../text.js'
import { Calendar, CatalogEntry, PRIORITIES, PriorityPolicy } from './catalog-schema.js'
import type { CompiledEntry } from './catalog.js'
import { createEntryIndex } from './catalog-index.js'
import type { Problem } from './problems.js'
import { formatPath, lineOf, problemAt, type YamlPath, type YamlSource } from './yaml-source.js'

// Checks the schema cannot express: references between sections, calendar sanity, matcher
// syntax, and entries that can never match (contradictory, or shadowed by an earlier entry).
// Works on a possibly schema-invalid value: each part is checked only once it is well-formed,
// so one run reports schema and semantic problems together.

const ID = /^[a-z0-9][a-z0-9-]*$/
const validCalendar = TypeCompiler.Compile(Calendar)

export interface LintResult { problems: Problem[], entries: CompiledEntry[] }

export function lintCatalog (value: unknown, source: YamlSource): LintResult {
  const problems: Problem[] = []
  const report = (path: YamlPath, message: string, opts?: { key?: boolean, index?: number }): void => {
    problems.push(problemAt(source, path, `${formatPath(path)}: ${message}`, opts))
  }
  const root = asRecord(value)

  const destinations = asRecord(root.destinations)
  const known = Object.keys(destinations)
  for (const id of known) {
    if (!ID.test(id)) report(['destinations', id], "destination id must be lower-case letters, digits and '-'", { key: true })
  }
  const checkRefs = (path: YamlPath, ids: readonly string[]): void => {
    ids.forEach((id, i) => {
      if (!Object.hasOwn(destinations, id)) report([...path, i], `unknown destination '${id}' (defined: ${known.join(', ') || 'none'})`)
    })
  }

  const priorities = asRecord(root.priorities)
  const validPolicy = TypeCompiler.Compile(PriorityPolicy)
  for (const p of PRIORITIES) {
    const policy = priorities[p]
    if (!validPolicy.Check(policy)) continue
    checkRefs(['priorities', p, 'destinations'], policy.destinations)
    if (policy.escalateTo !== undefined) checkRefs(['priorities', p, 'escalateTo'], policy.escalateTo)
  }

  reportNuls(value, [], report)
  lintCalendar(root.calendar, report)
  const entries = lintEntries(Array.isArray(root.entries) ? root.entries : [], source, report, checkRefs)
  return { problems, entries }
}

type Report = (path: YamlPath, message: string, opts?: { key?: boolean, index?: number }) => void

// Calendar sanity is validateCalendar's (the SLA module owns what a usable calendar is);
// here its findings only get a position: each message starts with the field it is about.
function lintCalendar (calendar: unknown, report: Report): void {
  if (!validCalendar.Check(calendar)) return // the schema errors say why
  for (const message of validateCalendar(calendar)) {
    const field = /^calendar\.(\w+)/.exec(message)?.[1]
    report(field !== undefined ? ['calendar', field] : ['calendar'], message.replace(/^calendar\.[\w.]+: /, ''))
  }
}

function lintEntries (raw: unknown[], source: YamlSource, report: Report, checkRefs: (path: YamlPath, ids: readonly string[]) => void): CompiledEntry[] {
  const compiled: CompiledEntry[] = []
  const validEntry = TypeCompiler.Compile(CatalogEntry)
  const firstById = new Map<string, number>()
  const index = createEntryIndex<CompiledEntry>()

  raw.forEach((entry, i) => {
    if (!validEntry.Check(entry)) return // the schema errors say why
    const first = firstById.get(entry.id)
    if (first === undefined) firstById.set(entry.id, i)
    else report(['entries', i, 'id'], `duplicate entry id '${entry.id}' (first at line ${lineOf(source, ['entries', first])})`)
    if (entry.destinations !== undefined) checkRefs(['entries', i, 'destinations'], entry.destinations)
    if (entry.escalateTo !== undefined) checkRefs(['entries', i, 'escalateTo'], entry.escalateTo)

    const matchers: CompiledMatcher[] = []
    entry.matchers.forEach((text, j) => {
      const parsed = parseMatcher(text)
      if (parsed.ok) matchers.push(parsed.matcher)
      else report(['entries', i, 'matchers', j], `invalid matcher '${text}': ${parsed.error}`, { index: parsed.column - 1 })
    })
    if (matchers.length < entry.matchers.length) return

    const ce: CompiledEntry = { index: i, entry, matchers, line: lineOf(source, ['entries', i]) }
    compiled.push(ce)
    const never = contradiction(matchers)
    if (never !== undefined) {
      report(['entries', i, 'matchers'], `entry '${entry.id}' can never match: no value of label '${never.name}' satisfies ${describeMatchers(never.matchers)}`)
      return
    }
    const shadow = findShadowing(index, ce)
    if (shadow !== undefined) {
      report(['entries', i, 'matchers'], `entry '${entry.id}' can never match: entry '${shadow.entry.id}' (line ${shadow.line}) matches every alert it matches`)
    }
    index.add(ce)
  })
  return compiled
}

// An earlier entry that implies `later`. Such an entry pins alertname to a superset of
// later's alertnames (so it sits in the bucket of any one of them) or is generic.
function findShadowing (index: ReturnType<typeof createEntryIndex<CompiledEntry>>, later: CompiledEntry): CompiledEntry | undefined {
  const names = index.alertnames(later)
  const first = names === undefined ? undefined : names.values().next().value
  const shadows = (earlier: CompiledEntry): boolean => implies(later.matchers, earlier.matchers)
  return first === undefined ? index.generic().find(shadows) : index.first(first, shadows)
}

function asRecord (v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : {}
}

// Catalog text reaches the store (titles, teams, destination names): PostgreSQL's text cannot
// hold a NUL, and a page stored there would fail on every try. Keys and values alike.
function reportNuls (value: unknown, path: YamlPath, report: (path: YamlPath, message: string, opts?: { key?: boolean }) => void): void {
  if (typeof value === 'string') {
    if (hasNul(value)) report(path, NUL_PROBLEM)
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => { reportNuls(v, [...path, i], report) })
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (hasNul(k)) report([...path, k], `the name ${NUL_PROBLEM}`, { key: true })
      reportNuls(v, [...path, k], report)
    }
  }
}
