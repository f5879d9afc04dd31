import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { helmFuncs, parseTemplate, render, type Template } from './go-template.js'

// `helm template` for this repository's chart, on top of the go-template subset renderer:
// values are coalesced the way Helm does it, every file in templates/ shares the defines of
// every other, _*.tpl files render nothing, NOTES.txt is rendered on its own.

export interface Chart {
  dir: string
  meta: Record<string, unknown>
  values: Record<string, unknown>
  /** Template file name (relative to templates/) -> source. */
  sources: Map<string, string>
  template: Template
}

export interface Rendered {
  /** Manifest file name -> rendered text (files that render only whitespace are left out). */
  manifests: Map<string, string>
  notes: string
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Helm's coalescing: maps merge key by key, anything else replaces, null deletes. */
export function mergeValues (base: Obj, over: Obj): Obj {
  const out: Obj = { ...base }
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k]
    else if (isObj(v) && isObj(out[k])) out[k] = mergeValues(out[k], v)
    else out[k] = v
  }
  return out
}

export function loadChart (dir: string): Chart {
  const meta = parseYaml(readFileSync(join(dir, 'Chart.yaml'), 'utf8')) as Obj
  const values = parseYaml(readFileSync(join(dir, 'values.yaml'), 'utf8')) as Obj
  const sources = new Map<string, string>()
  for (const f of readdirSync(join(dir, 'templates')).sort()) sources.set(f, readFileSync(join(dir, 'templates', f), 'utf8'))
  // One template set: defines from every file are visible everywhere, as in Helm.
  const parsed = [...sources].map(([name, src]) => parseTemplate(src, name))
  const defines = new Map(parsed.flatMap((p) => [...p.defines]))
  return { dir, meta, values, sources, template: { nodes: [], defines } }
}

export function renderChart (chart: Chart, overrides: Obj = {}, release = { Name: 'alert-enricher', Namespace: 'monitoring' }): Rendered {
  const m = chart.meta
  const root = {
    Values: mergeValues(chart.values, overrides),
    Chart: { Name: m.name, Version: m.version, AppVersion: m.appVersion, Description: m.description, Type: m.type },
    Release: { ...release, Service: 'Helm', IsInstall: true, IsUpgrade: false, Revision: 1 },
    Files: {
      Get: (path: unknown) => {
        const p = join(chart.dir, String(path))
        return existsSync(p) ? readFileSync(p, 'utf8') : ''
      }
    }
  }
  const manifests = new Map<string, string>()
  let notes = ''
  for (const [name, src] of chart.sources) {
    if (name.startsWith('_')) continue
    const own = parseTemplate(src, name)
    const text = render({ nodes: own.nodes, defines: chart.template.defines }, root, helmFuncs())
    if (name === 'NOTES.txt') notes = text
    else if (text.trim() !== '') manifests.set(name, text)
  }
  return { manifests, notes }
}

/** The rendered objects, by `Kind/name`. */
export function objects (r: Rendered): Map<string, Obj> {
  const out = new Map<string, Obj>()
  for (const [file, text] of r.manifests) {
    const doc = parseYaml(text) as unknown
    if (!isObj(doc)) throw new Error(`${file} did not render to a YAML mapping`)
    const meta = doc.metadata as Obj | undefined
    out.set(`${String(doc.kind)}/${String(meta?.name)}`, doc)
  }
  return out
}
