import { readdir, readFile } from 'node:fs/promises'
import { join, relative, resolve, sep, isAbsolute } from 'node:path'
import { headingAnchors } from '../runbooks/anchors.js'
import { catalogReadProblem, parseCatalogSource, type Catalog } from './catalog.js'
import { sortByPosition, type Problem } from './problems.js'
import { parseYamlSource, problemAt, type YamlPath, type YamlSource } from './yaml-source.js'

// `alert-enricher check`: the catalog's own problems plus its cross-references — every
// Prometheus alerting rule has a catalog entry, and every relative runbook link (catalog
// entries, defaults, rules' runbook_url) names an existing file and heading anchor.

export interface CheckOptions { catalogPath: string, rulesDir: string, runbooksDir: string }

export async function checkProject (opts: CheckOptions): Promise<Problem[]> {
  const runbooks = createRunbookResolver(opts.runbooksDir)
  const catalogProblems: Problem[] = []
  let catalog: Catalog | undefined
  const catalogText = await readText(opts.catalogPath)
  if (typeof catalogText !== 'string') {
    catalogProblems.push(catalogReadProblem(opts.catalogPath, catalogText.cause))
  } else {
    const parsed = parseYamlSource(catalogText, opts.catalogPath)
    const result = parseCatalogSource(parsed)
    if (result.ok) {
      catalog = result.catalog
      catalogProblems.push(...await checkCatalogRunbooks(catalog, parsed.source, runbooks))
    } else {
      catalogProblems.push(...result.problems)
    }
  }

  const problems = sortByPosition(catalogProblems)
  for (const file of await ruleFiles(opts.rulesDir)) {
    problems.push(...sortByPosition(await checkRuleFile(file, catalog, runbooks)))
  }
  return problems
}

type RunbookResolver = (ref: string) => Promise<string | undefined>

async function checkCatalogRunbooks (catalog: Catalog, source: YamlSource, runbooks: RunbookResolver): Promise<Problem[]> {
  const refs: Array<{ path: YamlPath, ref: string }> = [{ path: ['defaults', 'runbook'], ref: catalog.doc.defaults.runbook }]
  for (const e of catalog.entries) {
    if (e.entry.runbook !== undefined) refs.push({ path: ['entries', e.index, 'runbook'], ref: e.entry.runbook })
  }
  const problems: Problem[] = []
  for (const { path, ref } of refs) {
    if (isAbsoluteUrl(ref)) continue
    const error = await runbooks(ref)
    if (error !== undefined) problems.push(problemAt(source, path, error))
  }
  return problems
}

async function checkRuleFile (file: string, catalog: Catalog | undefined, runbooks: RunbookResolver): Promise<Problem[]> {
  const text = await readText(file)
  if (typeof text !== 'string') return [{ file, line: 1, col: 1, message: `cannot read rule file: ${text.error}` }]
  const { source, problems } = parseYamlSource(text, file)
  if (problems.length > 0 || catalog === undefined) return problems
  let doc: unknown
  try {
    doc = source.doc.toJS()
  } catch (err) { // e.g. too many alias expansions
    return [problemAt(source, [], err instanceof Error ? err.message : String(err))]
  }
  const groups = asArray(asRecord(doc).groups)
  for (const [g, group] of groups.entries()) {
    for (const [r, rule] of asArray(asRecord(group).rules).entries()) {
      const { alert, labels, annotations } = asRecord(rule)
      if (typeof alert !== 'string') continue // a recording rule
      const at: YamlPath = ['groups', g, 'rules', r]
      const alertLabels: Record<string, string> = {}
      for (const [k, v] of Object.entries(asRecord(labels))) if (v !== null && v !== undefined) alertLabels[k] = String(v)
      alertLabels.alertname = alert // Prometheus sets it last: a rule label cannot override it
      if (catalog.findEntry(alertLabels) === undefined) problems.push(problemAt(source, [...at, 'alert'], `alert '${alert}' has no catalog entry`))
      const url = asRecord(annotations).runbook_url
      const base = catalog.doc.runbookBaseUrl
      if (typeof url === 'string' && url.startsWith(base)) {
        const error = await runbooks(url.slice(base.length))
        if (error !== undefined) problems.push(problemAt(source, [...at, 'annotations', 'runbook_url'], error))
      }
    }
  }
  return problems
}

/** `file.md#anchor` (relative to runbooksDir) → an error message, or undefined when it resolves. */
function createRunbookResolver (runbooksDir: string): RunbookResolver {
  const root = resolve(runbooksDir)
  const anchorsByFile = new Map<string, Promise<Set<string> | string>>()
  const anchorsOf = (full: string): Promise<Set<string> | string> => {
    let cached = anchorsByFile.get(full)
    if (cached === undefined) {
      cached = readText(full).then((t) => typeof t === 'string' ? new Set(headingAnchors(t).map((a) => a.slug)) : t.error)
      anchorsByFile.set(full, cached)
    }
    return cached
  }
  return async (ref) => {
    const hash = ref.indexOf('#')
    const filePart = decode(hash < 0 ? ref : ref.slice(0, hash))
    const anchor = hash < 0 ? undefined : decode(ref.slice(hash + 1))
    const full = resolve(root, filePart)
    const shown = join(runbooksDir, filePart)
    if (filePart === '' || isAbsolute(filePart) || !full.startsWith(root + sep)) return `runbook '${ref}': must name a file inside ${runbooksDir}`
    const anchors = await anchorsOf(full)
    if (typeof anchors === 'string') return `runbook '${ref}': ${shown} not found`
    if (anchor !== undefined && anchor !== '' && !anchors.has(anchor)) return `runbook '${ref}': no heading with anchor '#${anchor}' in ${shown}`
    return undefined
  }
}

/** `*.rules.yml` / `*.rules.yaml` under dir, recursively, sorted; promtool tests (`tests/`) skipped. */
async function ruleFiles (dir: string): Promise<string[]> {
  const found: string[] = []
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true })
  } catch {
    return found // no rules directory: nothing to cross-check
  }
  for (const e of entries) {
    if (!e.isFile() || !/\.rules\.ya?ml$/.test(e.name)) continue
    const full = join(e.parentPath, e.name)
    if (relative(dir, full).split(sep).includes('tests')) continue
    found.push(full)
  }
  return found.sort()
}

async function readText (file: string): Promise<string | { error: string, cause: unknown }> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? String(err), cause: err }
  }
}

function isAbsoluteUrl (ref: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(ref) || ref.startsWith('//')
}

function decode (s: string): string {
  try { return decodeURIComponent(s) } catch { return s }
}

function asRecord (v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : {}
}

function asArray (v: unknown): unknown[] {
  return Array.isArray(v) ? v : []
}
