import t from 'tap'
import { helmFuncs, parseTemplate, render } from './helpers/go-template.js'

// The chart tests trust this renderer, so it is held to text/template's documented behaviour
// on the constructs the chart uses.

const run = (src: string, dot: unknown): string => render(parseTemplate(src), dot, helmFuncs())

t.test('trim markers eat whitespace on their side only', async (t) => {
  t.equal(run('a  {{- "b" -}}  c', {}), 'abc')
  t.equal(run('a  {{ "b" }}  c', {}), 'a  b  c')
  t.equal(run('x:\n  {{- if true }}\n  y: 1\n  {{- end }}\n', {}), 'x:\n  y: 1\n')
  t.equal(run('{{/* a comment */}}k', {}), 'k')
})

t.test('if / else if / else, with and range', async (t) => {
  const src = '{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}'
  t.same([run(src, { a: 1 }), run(src, { b: 'x' }), run(src, { a: 0, b: '' })], ['A', 'B', 'C'])
  t.equal(run('{{ with .m }}{{ .k }}{{ else }}none{{ end }}', { m: { k: 'v' } }), 'v')
  t.equal(run('{{ with .m }}{{ .k }}{{ else }}none{{ end }}', { m: {} }), 'none', 'an empty map is false')
  t.equal(run('{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}', { m: { b: 2, a: 1, c: 3 } }), 'a=1;b=2;c=3;', 'map keys sorted')
  t.equal(run('{{ range .l }}[{{ . }}]{{ else }}empty{{ end }}', { l: [] }), 'empty')
  t.equal(run('{{ range .l }}{{ $.p }}{{ . }}{{ end }}', { l: [1, 2], p: '-' }), '-1-2', '$ is the root inside range')
})

t.test('pipelines, variables, include', async (t) => {
  t.equal(run('{{ .x | default "d" | quote }}', { x: '' }), '"d"')
  t.equal(run('{{ printf "%s-%s" .a (.b | default "z") }}', { a: 'q', b: null }), 'q-z')
  t.equal(run('{{- $v := "k" }}{{ if true }}{{ $v }}{{ end }}', {}), 'k', 'variables visible in nested blocks')
  t.equal(run('{{ define "n" }}<{{ .v }}>{{ end }}{{ include "n" .s | nindent 2 }}', { s: { v: 1 } }), '\n  <1>')
  t.equal(run('{{ and .a .b }}|{{ or .a .b }}', { a: 0, b: 'y' }), '0|y', 'and/or return an operand')
  t.equal(run('{{ toYaml .m | indent 2 }}', { m: { a: [1] } }), '  a:\n    - 1')
})

t.test('what text/template refuses, the renderer refuses', async (t) => {
  t.throws(() => run('{{ .a.b }}', {}), /nil pointer/)
  t.throws(() => run('{{ nosuchfunc 1 }}', {}), /outside the supported subset/)
  t.throws(() => run('{{ include "missing" . }}', {}), /undefined template/)
  t.throws(() => run('{{ $nope }}', {}), /undefined variable/)
  t.throws(() => run('{{ required "need x" .x }}', {}), /need x/)
  t.throws(() => run('{{ .m }}', { m: { a: 1 } }), /toYaml/)
})
