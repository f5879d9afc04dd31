import { readFile } from 'node:fs/promises'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { matchesAll, labelValue, type CompiledMatcher } from '../alertmanager/matchers.js'
import type { LabelSet } from '../alertmanager/webhook.js'
import { CatalogDocument, type CatalogEntry } from './catalog-schema.js'
import { createEntryIndex } from './catalog-index.js'
import { lintCatalog } from './catalog-lint.js'
import { sortByPosition, type Problem } from './problems.js'
import { schemaIssues } from './schema-errors.js'
import { formatPath, parseYamlSource, problemAt, type ParsedYaml } from './yaml-source.js'

// The catalog loader: YAML → schema → lint → a compiled, indexed Catalog. Pure apart from
// loadCatalog's file read; every problem found is reported, each at its YAML node.

export interface CompiledEntry {
  /** Position in `entries:` (0-based); lower wins. */
  readonly index: number
  readonly entry: CatalogEntry
  readonly matchers: readonly CompiledMatcher[]
  /** 1-based line of the entry in the catalog file. */
  readonly line: number
}

export interface Catalog {
  readonly file: string
  readonly doc: CatalogDocument
  readonly entries: readonly CompiledEntry[]
  /** The first entry, in file order, whose matchers all match; undefined → use the defaults. */
  findEntry: (labels: LabelSet) => CompiledEntry | undefined
  /** 1-based line of the entry with this id; 0 if there is none. */
  entryLine: (id: string) => number
}

export type CatalogResult = { ok: true, catalog: Catalog } | { ok: false, problems: Problem[] }

/**
 * The catalog with deployment-specific settings applied: RUNBOOK_BASE_URL lets one git-reviewed
 * catalog link to the runbooks wherever this deployment can reach them (the service's own
 * /runbooks/, or the git host).
 */
export function withOverrides (result: CatalogResult, overrides: { runbookBaseUrl?: string | undefined }): CatalogResult {
  if (!result.ok || overrides.runbookBaseUrl === undefined) return result
  const c = result.catalog
  return { ok: true, catalog: createCatalog(c.file, { ...c.doc, runbookBaseUrl: overrides.runbookBaseUrl }, c.entries) }
}

export function parseCatalog (text: string, file: string): CatalogResult {
  return parseCatalogSource(parseYamlSource(text, file))
}

/** As parseCatalog, for a caller that also needs the YAML positions (see check.ts). */
export function parseCatalogSource ({ source, problems: yamlProblems }: ParsedYaml): CatalogResult {
  if (yamlProblems.length > 0) return { ok: false, problems: yamlProblems }
  let raw: unknown
  try {
    raw = source.doc.toJS()
  } catch (err) { // e.g. too many alias expansions
    return { ok: false, problems: [problemAt(source, [], err instanceof Error ? err.message : String(err))] }
  }
  const value = withDefaults(raw)
  const valid = TypeCompiler.Compile(CatalogDocument).Check(value) // fast path; explain only on failure
  const problems = (valid ? [] : schemaIssues(CatalogDocument, value))
    .map((i) => problemAt(source, i.path, `${formatPath(i.path)}: ${i.message}`, { key: i.atKey }))
  const lint = lintCatalog(value, source)
  problems.push(...lint.problems)
  if (problems.length > 0) return { ok: false, problems: sortByPosition(problems) }
  return { ok: true, catalog: createCatalog(source.file, value as CatalogDocument, lint.entries) }
}

// The schema's one default: calendar.holidays may be omitted.
function withDefaults (raw: unknown): unknown {
  const doc = raw ?? {}
  const calendar = (doc as { calendar?: unknown }).calendar
  if (typeof calendar === 'object' && calendar !== null && !Array.isArray(calendar) && !('holidays' in calendar)) {
    return { ...doc, calendar: { ...calendar, holidays: [] } }
  }
  return doc
}

/** Reads and parses a catalog file; a read error is one problem at 1:1. */
export async function loadCatalog (path: string): Promise<CatalogResult> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    return { ok: false, problems: [catalogReadProblem(path, err)] }
  }
  return parseCatalog(text, path)
}

/** A catalog file that cannot be read: one problem at 1:1 naming the error code (ENOENT, EACCES, …). */
export function catalogReadProblem (file: string, err: unknown): Problem {
  const reason = (err as NodeJS.ErrnoException | undefined)?.code ?? (err instanceof Error ? err.message : String(err))
  return { file, line: 1, col: 1, message: `cannot read catalog: ${reason}` }
}

/** Indexes already-validated entries (given in file order). */
export function createCatalog (file: string, doc: CatalogDocument, entries: readonly CompiledEntry[]): Catalog {
  const index = createEntryIndex<CompiledEntry>()
  const lines = new Map<string, number>()
  for (const e of entries) {
    index.add(e)
    if (!lines.has(e.entry.id)) lines.set(e.entry.id, e.line)
  }
  return {
    file,
    doc,
    entries,
    findEntry (labels) {
      return index.first(labelValue(labels, 'alertname'), (e) => matchesAll(e.matchers, labels))
    },
    entryLine: (id) => lines.get(id) ?? 0
  }
}
