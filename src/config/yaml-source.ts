import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml'
import type { Problem } from './problems.js'

// A parsed YAML file that remembers where every value came from, so problems found in the
// plain JS value (schema errors, lint, cross-checks) point at the offending node.

export type YamlPath = ReadonlyArray<string | number>

export interface YamlSource {
  readonly file: string
  readonly text: string
  readonly doc: Document.Parsed
  readonly lineCounter: LineCounter
}

export interface ParsedYaml { source: YamlSource, problems: Problem[] }

/** Parses one YAML document; YAML syntax errors (all of them) become problems. */
export function parseYamlSource (text: string, file: string): ParsedYaml {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false })
  const source = { file, text, doc, lineCounter }
  const problems = doc.errors.map((e) => problemAtOffset(source, e.pos[0], `YAML syntax error: ${firstLine(e.message)}`))
  return { source, problems }
}

export interface LocateOptions {
  /** Point at the key of the last path segment instead of its value (e.g. an unknown property). */
  key?: boolean
  /** Character index inside the string value at `path`; used when it can be mapped back to the source. */
  index?: number
}

/** A problem at the node for `path`, or at its nearest existing parent. */
export function problemAt (source: YamlSource, path: YamlPath, message: string, opts: LocateOptions = {}): Problem {
  return problemAtOffset(source, offsetOf(source, path, opts), message)
}

/** 1-based line of the node at `path` (or its nearest existing parent). */
export function lineOf (source: YamlSource, path: YamlPath): number {
  return source.lineCounter.linePos(offsetOf(source, path, {})).line
}

/** `entries[3].priority`, `destinations.slack-alerts.type`. */
export function formatPath (path: YamlPath): string {
  if (path.length === 0) return '(document)'
  return path.map((seg, i) => typeof seg === 'number'
    ? `[${seg}]`
    : /^[\w-]+$/.test(seg) ? (i === 0 ? seg : `.${seg}`) : `[${JSON.stringify(seg)}]`).join('')
}

function problemAtOffset (source: YamlSource, offset: number, message: string): Problem {
  const { line, col } = source.lineCounter.linePos(Math.max(0, offset))
  return { file: source.file, line, col, message }
}

function firstLine (s: string): string {
  return s.split('\n')[0] ?? s
}

function offsetOf (source: YamlSource, path: YamlPath, opts: LocateOptions): number {
  let node: unknown = source.doc.contents
  let keyNode: unknown
  for (const seg of path) {
    const child = childOf(node, seg)
    if (child === undefined) return rangeStart(node) // nearest existing parent
    node = child.value
    keyNode = child.key
  }
  if (opts.key === true && keyNode !== undefined) return rangeStart(keyNode)
  const start = rangeStart(node)
  if (opts.index !== undefined && isScalar(node)) return start + (sourceIndex(source.text, node, opts.index) ?? 0)
  return start
}

function childOf (node: unknown, seg: string | number): { key?: unknown, value: unknown } | undefined {
  if (isMap(node)) {
    const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg))
    return pair === undefined ? undefined : { key: pair.key, value: pair.value ?? pair.key }
  }
  if (isSeq(node) && typeof seg === 'number') {
    const item = node.items[seg]
    return item === undefined ? undefined : { value: item }
  }
  return undefined
}

function rangeStart (node: unknown): number {
  return (node as Node | null)?.range?.[0] ?? 0
}

// Maps an index in a scalar's value to an offset from the scalar's start in the source, for
// single-line plain and quoted scalars; undefined where folding or escapes make it ambiguous.
function sourceIndex (text: string, node: { value: unknown, type?: string, range?: [number, number, number] | null }, index: number): number | undefined {
  if (node.range == null || typeof node.value !== 'string') return undefined
  const raw = text.slice(node.range[0], node.range[1])
  if (raw.includes('\n')) return undefined
  if (node.type === 'PLAIN') return raw === node.value ? index : undefined
  const quote = node.type === 'QUOTE_SINGLE' ? "'" : node.type === 'QUOTE_DOUBLE' ? '"' : undefined
  if (quote === undefined) return undefined
  let logical = 0
  for (let i = 1; i < raw.length; i++) {
    if (logical === index) return i
    const c = raw[i]
    if (quote === "'" && c === "'" && raw[i + 1] === "'") i++
    else if (quote === '"' && c === '\\') {
      const next = raw[i + 1] ?? ''
      i += next === 'x' ? 3 : next === 'u' ? 5 : next === 'U' ? 9 : 1
    }
    logical++
  }
  return logical === index ? raw.length - 1 : undefined
}
