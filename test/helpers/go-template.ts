import { createHash } from 'node:crypto'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'

// A small renderer for the subset of Go text/template + Sprig that the Helm chart uses, so
// the chart can be rendered and checked without a helm binary. Unknown syntax or functions
// throw: a template that needs more than this subset fails the tests loudly rather than
// rendering something plausible. Semantics follow text/template: `{{-`/`-}}` trim
// whitespace, range over a map visits keys in sorted order, pipelines pass their value as
// the last argument, missing map keys are empty, a field of nothing is an error.

type Arg =
  | { t: 'field', base: 'dot' | string, path: string[] }
  | { t: 'lit', v: unknown }
  | { t: 'ident', name: string }
  | { t: 'sub', pipe: Pipe }
interface Pipe { decl?: { names: string[], declare: boolean }, cmds: Arg[][] }
type Node =
  | { t: 'text', s: string }
  | { t: 'out', pipe: Pipe }
  | { t: 'if', branches: Array<{ cond: Pipe, body: Node[] }>, otherwise: Node[] }
  | { t: 'range' | 'with', pipe: Pipe, body: Node[], otherwise: Node[] }

export type Funcs = Record<string, (...args: unknown[]) => unknown>
export interface Template { nodes: Node[], defines: Map<string, Node[]> }

/** Splits text into literal text and `{{ action }}` tokens, applying the trim markers. */
function lex (src: string): Array<{ text: string } | { action: string, line: number }> {
  const out: Array<{ text: string } | { action: string, line: number }> = []
  let i = 0
  let trimNext = false
  while (i < src.length) {
    const open = src.indexOf('{{', i)
    let text = src.slice(i, open === -1 ? src.length : open)
    if (trimNext) text = text.replace(/^\s+/, '')
    trimNext = false
    if (open === -1) { out.push({ text }); break }
    let j = open + 2
    let quote = ''
    for (; j < src.length - 1; j++) {
      const c = src[j]
      if (quote !== '') { if (c === '\\' && quote === '"') j++; else if (c === quote) quote = '' } else if (c === '"' || c === '`') quote = c
      else if (c === '}' && src[j + 1] === '}') break
    }
    if (j >= src.length - 1) throw new Error(`unclosed action at offset ${open}`)
    let body = src.slice(open + 2, j)
    if (body.startsWith('- ')) { text = text.replace(/\s+$/, ''); body = body.slice(2) }
    if (body.endsWith(' -')) { trimNext = true; body = body.slice(0, -2) }
    out.push({ text })
    const action = body.trim()
    if (!(action.startsWith('/*') && action.endsWith('*/'))) out.push({ action, line: src.slice(0, open).split('\n').length })
    i = j + 2
  }
  return out
}

const TOKEN_SOURCE = /\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(:=|=|\||\(|\)|,)|(-?\d+(?:\.\d+)?)|(\$[\w]*(?:\.[\w]+)*)|(\.[\w]+(?:\.[\w]+)*|\.)|([A-Za-z_]\w*))/

function tokens (s: string): string[] {
  const TOKEN = new RegExp(TOKEN_SOURCE.source, 'y')
  const out: string[] = []
  while (TOKEN.lastIndex < s.length) {
    if (/^\s*$/.test(s.slice(TOKEN.lastIndex))) break
    const at = TOKEN.lastIndex
    const m = TOKEN.exec(s)
    if (m === null) throw new Error(`cannot tokenize ${JSON.stringify(s.slice(at))}`)
    out.push(m[0].trim())
  }
  return out
}

function parsePipe (toks: string[], pos: { i: number }, stopAtParen: boolean): Pipe {
  const pipe: Pipe = { cmds: [] }
  // Declarations: `$x :=`, `$k, $v :=`, `$x =`.
  const save = pos.i
  const names: string[] = []
  while (toks[pos.i]?.startsWith('$') === true) {
    names.push(toks[pos.i++] ?? '')
    if (toks[pos.i] === ',') { pos.i++; continue }
    break
  }
  if (names.length > 0 && (toks[pos.i] === ':=' || toks[pos.i] === '=')) {
    pipe.decl = { names, declare: toks[pos.i] === ':=' }
    pos.i++
  } else pos.i = save
  let cmd: Arg[] = []
  for (; pos.i < toks.length; pos.i++) {
    const tok = toks[pos.i] ?? ''
    if (tok === ')') { if (stopAtParen) break; throw new Error('unbalanced )') }
    if (tok === '|') { pipe.cmds.push(cmd); cmd = []; continue }
    if (tok === '(') { pos.i++; cmd.push({ t: 'sub', pipe: parsePipe(toks, pos, true) }); continue }
    if (tok.startsWith('"')) cmd.push({ t: 'lit', v: JSON.parse(tok) })
    else if (tok.startsWith('`')) cmd.push({ t: 'lit', v: tok.slice(1, -1) })
    else if (/^-?\d/.test(tok)) cmd.push({ t: 'lit', v: Number(tok) })
    else if (tok === 'true' || tok === 'false') cmd.push({ t: 'lit', v: tok === 'true' })
    else if (tok === 'nil') cmd.push({ t: 'lit', v: null })
    else if (tok.startsWith('$')) { const [base, ...path] = tok.split('.'); cmd.push({ t: 'field', base: base ?? '$', path }) }
    else if (tok.startsWith('.')) cmd.push({ t: 'field', base: 'dot', path: tok === '.' ? [] : tok.slice(1).split('.') })
    else cmd.push({ t: 'ident', name: tok })
  }
  if (stopAtParen && toks[pos.i] !== ')') throw new Error('missing )')
  pipe.cmds.push(cmd)
  if (pipe.cmds.some((c) => c.length === 0)) throw new Error('empty command in pipeline')
  return pipe
}

function pipeOf (s: string): Pipe {
  const toks = tokens(s)
  const pos = { i: 0 }
  const p = parsePipe(toks, pos, false)
  if (pos.i !== toks.length) throw new Error(`trailing tokens in ${JSON.stringify(s)}`)
  return p
}

/** Parses a template file; `define` blocks go to `defines`. Unbalanced blocks throw. */
export function parseTemplate (src: string, name = 'template'): Template {
  const defines = new Map<string, Node[]>()
  const toks = lex(src)
  let k = 0
  // Returns the nodes up to the next `end`/`else` (which it leaves for the caller).
  function block (depth: number): { nodes: Node[], stop: string } {
    const nodes: Node[] = []
    for (; k < toks.length; k++) {
      const tok = toks[k]
      if (tok === undefined) break
      if ('text' in tok) { if (tok.text !== '') nodes.push({ t: 'text', s: tok.text }); continue }
      const { action, line } = tok
      const kw = /^(\w+)\b\s*(.*)$/s.exec(action)
      const word = kw?.[1] ?? ''
      const rest = kw?.[2] ?? ''
      const where = `${name}:${line}`
      if (word === 'end' || word === 'else') {
        if (depth === 0) throw new Error(`${where}: {{ ${word} }} without an open block`)
        return { nodes, stop: action }
      }
      if (word === 'if' || word === 'range' || word === 'with') {
        k++
        const first = block(depth + 1)
        const branches = [{ cond: pipeOf(rest), body: first.nodes }]
        let otherwise: Node[] = []
        let stop = first.stop
        while (stop.startsWith('else')) {
          const elseIf = /^else\s+if\s+(.*)$/s.exec(stop)
          k++
          const next = block(depth + 1)
          if (elseIf !== null && word === 'if') branches.push({ cond: pipeOf(elseIf[1] ?? ''), body: next.nodes })
          else if (stop === 'else') otherwise = next.nodes
          else throw new Error(`${where}: unsupported ${stop}`)
          stop = next.stop
        }
        if (stop !== 'end') throw new Error(`${where}: {{ ${word} }} is not closed by {{ end }}`)
        if (word === 'if') nodes.push({ t: 'if', branches, otherwise })
        else nodes.push({ t: word, pipe: branches[0]?.cond ?? { cmds: [] }, body: branches[0]?.body ?? [], otherwise })
        continue
      }
      if (word === 'define') {
        const defName = JSON.parse(rest) as string
        k++
        const body = block(depth + 1)
        if (body.stop !== 'end') throw new Error(`${where}: define ${defName} is not closed`)
        defines.set(defName, body.nodes)
        continue
      }
      if (['template', 'block', 'break', 'continue'].includes(word)) throw new Error(`${where}: {{ ${word} }} is outside the supported subset`)
      nodes.push({ t: 'out', pipe: pipeOf(action) })
    }
    if (depth > 0) throw new Error(`${name}: a block is not closed by {{ end }} before the end of the file`)
    return { nodes, stop: '' }
  }
  const { nodes } = block(0)
  return { nodes, defines }
}

export function truthy (v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false
  if (Array.isArray(v)) return v.length > 0
  if (typeof v === 'object') return Object.keys(v).length > 0
  return true
}

function print (v: unknown): string {
  if (v === null || v === undefined) return ''
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  throw new Error(`cannot print a ${Array.isArray(v) ? 'list' : 'map'} directly; use toYaml`)
}

function goString (v: unknown): string {
  return v === null || v === undefined ? '' : typeof v === 'string' ? v : print(v)
}

function printf (format: string, ...args: unknown[]): string {
  let n = 0
  return format.replace(/%([sdvq%])/g, (_m, verb: string) => {
    if (verb === '%') return '%'
    const a = args[n++]
    return verb === 'q' ? JSON.stringify(goString(a)) : goString(a)
  })
}

/** The Sprig/Helm functions the chart uses (values first, piped value last, as in Sprig). */
export function helmFuncs (): Funcs {
  return {
    default: (d, v) => (truthy(v) ? v : d),
    quote: (v) => JSON.stringify(goString(v)),
    toString: (v: unknown) => goString(v),
    trunc: (n, s) => goString(s).slice(0, Number(n)),
    trimSuffix: (suffix, s) => { const str = goString(s); const x = goString(suffix); return x !== '' && str.endsWith(x) ? str.slice(0, -x.length) : str },
    contains: (sub, s) => goString(s).includes(goString(sub)),
    replace: (from, to, s) => goString(s).split(goString(from)).join(goString(to)),
    printf: (format, ...args) => printf(goString(format), ...args),
    indent: (n, s) => goString(s).split('\n').map((l) => ' '.repeat(Number(n)) + l).join('\n'),
    nindent: (n, s) => '\n' + goString(s).split('\n').map((l) => ' '.repeat(Number(n)) + l).join('\n'),
    toYaml: (v) => stringifyYaml(v, { lineWidth: 0 }).replace(/\n$/, ''),
    fromYaml: (s) => parseYaml(goString(s)) as unknown,
    sha256sum: (s) => createHash('sha256').update(goString(s)).digest('hex'),
    required: (msg, v) => { if (v === null || v === undefined || v === '') throw new Error(goString(msg)); return v },
    eq: (a, ...bs) => bs.some((b) => a === b),
    ne: (a, b) => a !== b,
    not: (v) => !truthy(v),
    and: (...vs) => { const i = vs.findIndex((v) => !truthy(v)); return vs[i === -1 ? vs.length - 1 : i] },
    or: (...vs) => { const i = vs.findIndex((v) => truthy(v)); return vs[i === -1 ? vs.length - 1 : i] },
    empty: (v) => !truthy(v)
  }
}

type Scope = Map<string, unknown>

/** Renders `nodes` with `dot`; `include` renders a define with the given context. */
export function render (tpl: Template, root: unknown, funcs: Funcs, nodes: Node[] = tpl.nodes): string {
  const all: Funcs = { ...funcs, include: (name, ctx) => renderNodes(definition(goString(name)), ctx, [new Map([['$', ctx]])]) }
  function definition (name: string): Node[] {
    const d = tpl.defines.get(name)
    if (d === undefined) throw new Error(`include of undefined template ${JSON.stringify(name)}`)
    return d
  }
  function lookup (scopes: Scope[], name: string): unknown {
    for (let i = scopes.length - 1; i >= 0; i--) if (scopes[i]?.has(name) === true) return scopes[i]?.get(name)
    throw new Error(`undefined variable ${name}`)
  }
  function field (base: unknown, path: string[], what: string): unknown {
    let v = base
    for (const [i, p] of path.entries()) {
      if (v === null || v === undefined || typeof v !== 'object') throw new Error(`nil pointer evaluating ${what}: no ${path.slice(0, i).join('.') || '.'} to take .${p} of`)
      v = (v as Record<string, unknown>)[p]
    }
    return v
  }
  function evalArg (a: Arg, dot: unknown, scopes: Scope[]): unknown {
    if (a.t === 'lit') return a.v
    if (a.t === 'sub') return evalPipe(a.pipe, dot, scopes)
    if (a.t === 'ident') return callFn(a.name, [])
    return field(a.base === 'dot' ? dot : lookup(scopes, a.base), a.path, `${a.base === 'dot' ? '' : a.base}.${a.path.join('.')}`)
  }
  function callFn (name: string, args: unknown[]): unknown {
    const f = all[name]
    if (f === undefined) throw new Error(`function ${JSON.stringify(name)} is outside the supported subset`)
    return f(...args)
  }
  function evalCmd (cmd: Arg[], dot: unknown, scopes: Scope[], piped: unknown[]): unknown {
    const [head, ...rest] = cmd
    if (head === undefined) throw new Error('empty command')
    const args = [...rest.map((a) => evalArg(a, dot, scopes)), ...piped]
    if (head.t === 'ident') return callFn(head.name, args)
    const v = evalArg(head, dot, scopes)
    if (typeof v === 'function') return (v as (...a: unknown[]) => unknown)(...args)
    if (args.length > 0) throw new Error('arguments given to a value that is not a function')
    return v
  }
  function evalPipe (pipe: Pipe, dot: unknown, scopes: Scope[]): unknown {
    let piped: unknown[] = []
    for (const cmd of pipe.cmds) piped = [evalCmd(cmd, dot, scopes, piped)]
    const v = piped[0]
    if (pipe.decl !== undefined) {
      const name = pipe.decl.names[0] ?? ''
      if (pipe.decl.declare) scopes[scopes.length - 1]?.set(name, v)
      else {
        const owner = [...scopes].reverse().find((s) => s.has(name))
        if (owner === undefined) throw new Error(`assignment to undeclared ${name}`)
        owner.set(name, v)
      }
    }
    return v
  }
  function renderNodes (nodes: Node[], dot: unknown, scopes: Scope[]): string {
    let out = ''
    for (const n of nodes) {
      if (n.t === 'text') out += n.s
      else if (n.t === 'out') { const v = evalPipe(n.pipe, dot, scopes); if (n.pipe.decl === undefined) out += print(v) }
      else if (n.t === 'if') {
        const hit = n.branches.find((b) => truthy(evalPipe(b.cond, dot, [...scopes, new Map()])))
        out += renderNodes(hit !== undefined ? hit.body : n.otherwise, dot, [...scopes, new Map()])
      } else if (n.t === 'with') {
        const v = evalPipe(n.pipe, dot, scopes)
        out += truthy(v) ? renderNodes(n.body, v, [...scopes, new Map()]) : renderNodes(n.otherwise, dot, [...scopes, new Map()])
      } else {
        const decl = n.pipe.decl
        const v = evalPipe({ cmds: n.pipe.cmds }, dot, scopes)
        const entries: Array<[unknown, unknown]> = Array.isArray(v)
          ? v.map((x, i) => [i, x])
          : v !== null && typeof v === 'object' ? Object.keys(v).sort().map((key) => [key, (v as Record<string, unknown>)[key]]) : []
        if (v !== null && v !== undefined && typeof v !== 'object') throw new Error(`range over ${typeof v}`)
        if (entries.length === 0) { out += renderNodes(n.otherwise, dot, [...scopes, new Map()]); continue }
        for (const [key, val] of entries) {
          const scope: Scope = new Map()
          if (decl?.names.length === 2) { scope.set(decl.names[0] ?? '', key); scope.set(decl.names[1] ?? '', val) } else if (decl?.names.length === 1) scope.set(decl.names[0] ?? '', val)
          out += renderNodes(n.body, val, [...scopes, scope])
        }
      }
    }
    return out
  }
  return renderNodes(nodes, root, [new Map([['$', root]])])
}
