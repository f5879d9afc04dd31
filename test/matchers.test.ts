import t from 'tap'
import fc from 'fast-check'
import { formatMatcher, matchesAll, parseMatcher, type CompiledMatcher } from '../src/alertmanager/matchers.js'
import { contradiction, finiteValues, implies, literalAlternatives } from '../src/alertmanager/matcher-sets.js'
import type { LabelSet } from '../src/alertmanager/webhook.js'

function m (text: string): CompiledMatcher {
  const r = parseMatcher(text)
  if (!r.ok) throw new Error(`${text}: ${r.error}`)
  return r.matcher
}

t.test('parses the four operators, quoted and unquoted values', async (t) => {
  const cases: Array<[string, string, string, string]> = [
    ['alertname="HighErrorRate"', 'alertname', '=', 'HighErrorRate'],
    ['severity!=info', 'severity', '!=', 'info'],
    ['job=~"api|web"', 'job', '=~', 'api|web'],
    ['  team !~ "ops.*"  ', 'team', '!~', 'ops.*'],
    ['team=', 'team', '=', ''],
    ['team=""', 'team', '=', ''],
    ['msg="say \\"hi\\" \\\\ bye"', 'msg', '=', 'say "hi" \\ bye'],
    ['msg="a\\nb"', 'msg', '=', 'a\nb'],
    ['re=~"\\d+"', 're', '=~', '\\d+'],
    ['summary="disk {full}, x!=y"', 'summary', '=', 'disk {full}, x!=y'],
    ['path=/api/v1:8080', 'path', '=', '/api/v1:8080']
  ]
  for (const [text, name, op, value] of cases) {
    const r = parseMatcher(text)
    t.ok(r.ok, text)
    if (r.ok) t.same({ name: r.matcher.name, op: r.matcher.op, value: r.matcher.value }, { name, op, value }, text)
    if (r.ok) t.equal(r.matcher.regex !== undefined, op === '=~' || op === '!~', `${text}: regex compiled only for regex ops`)
  }
})

t.test('malformed matchers are rejected with the column of the problem', async (t) => {
  const cases: Array<[string, RegExp, number]> = [
    ['', /label name/, 1],
    ['="x"', /label name/, 1],
    ['1abc="x"', /label name/, 1],
    ['alertname', /one of =, !=, =~, !~/, 10],
    ['alertname<"x"', /one of =, !=, =~, !~/, 10],
    ['alertname=="x"', /unexpected '=' after operator '='/, 11],
    ['team=a b', /must be double-quoted/, 7],
    ['team=a,b', /must be double-quoted/, 7],
    ["team=it's", /must be double-quoted/, 8],
    ['team="open', /unterminated/, 6],
    ['team="x" y', /unexpected text after the quoted value/, 10],
    ['team=~"(unclosed"', /invalid regular expression/, 7],
    ['team=~"a)|(b"', /invalid regular expression/, 7]
  ]
  for (const [text, error, column] of cases) {
    const r = parseMatcher(text)
    t.notOk(r.ok, `${JSON.stringify(text)} is rejected`)
    if (!r.ok) {
      t.match(r.error, error, text)
      t.equal(r.column, column, `${text}: column`)
    }
  }
})

t.test('matching semantics', async (t) => {
  const cases: Array<[string[], LabelSet, boolean, string]> = [
    [['job=~"api"'], { job: 'api' }, true, 'regex matches the whole value'],
    [['job=~"api"'], { job: 'api-2' }, false, 'regex is anchored at the end'],
    [['job=~"api"'], { job: 'my-api' }, false, 'regex is anchored at the start'],
    [['job=~"api|web"'], { job: 'web' }, true, 'alternation inside the anchors'],
    [['job=~"api|web"'], { job: 'webx' }, false, 'alternation is grouped before anchoring'],
    [['job!~"api|web"'], { job: 'db' }, true, '!~ with alternation'],
    [['team!="x"'], {}, true, '!= matches an alert without the label'],
    [['team=""'], {}, true, '="" matches a missing label'],
    [['team=""'], { team: 'a' }, false, '="" does not match a present label'],
    [['team=~".*"'], {}, true, '=~".*" matches a missing label'],
    [['team=~".+"'], {}, false, '=~".+" requires the label'],
    [['team!~".+"'], {}, true, '!~".+" matches a missing label'],
    [['constructor=""'], {}, true, 'inherited object properties are not labels'],
    [['sev=~"(?i)CRIT"'], { sev: 'crit' }, true, 'leading (?i) flag as in Go regexps'],
    [['alertname="A"', 'severity="critical"'], { alertname: 'A', severity: 'critical' }, true, 'matchers are ANDed'],
    [['alertname="A"', 'severity="critical"'], { alertname: 'A', severity: 'warning' }, false, 'one failing matcher fails the list'],
    [[], { alertname: 'A' }, true, 'an empty list matches everything']
  ]
  for (const [texts, labels, expected, why] of cases) {
    t.equal(matchesAll(texts.map(m), labels), expected, why)
  }
})

t.test('formatMatcher is canonical and round-trips', async (t) => {
  t.equal(formatMatcher(m('team = ops')), 'team="ops"')
  t.equal(formatMatcher(m('msg="a\\"b\\\\c"')), 'msg="a\\"b\\\\c"')
  fc.assert(fc.property(
    fc.constantFrom('a', 'alertname', '_x1'),
    fc.constantFrom('=' as const, '!=' as const),
    fc.string({ maxLength: 20 }),
    (name, op, value) => {
      const r = parseMatcher(formatMatcher({ name, op, value }))
      return r.ok && r.matcher.name === name && r.matcher.op === op && r.matcher.value === value
    }), { numRuns: 300 })
})

t.test('matcher sets: literal alternations, finite values, contradictions, implication', async (t) => {
  t.same(literalAlternatives('A|B|C'), ['A', 'B', 'C'])
  t.same(literalAlternatives('(?:A|B)'), ['A', 'B'])
  t.same(literalAlternatives('api\\.example'), ['api.example'])
  t.equal(literalAlternatives('A.*'), undefined)
  t.equal(literalAlternatives('\\d+'), undefined)
  t.equal(literalAlternatives('(?i)A'), undefined)

  t.same([...finiteValues([m('alertname=~"A|B|C"'), m('alertname!="B"')], 'alertname') ?? []], ['A', 'C'])
  t.equal(finiteValues([m('alertname=~"A.*"')], 'alertname'), undefined)

  t.ok(contradiction([m('alertname="A"'), m('alertname="B"')]), '= A and = B')
  t.ok(contradiction([m('x="v"'), m('x=~"w.*"')]), '= v and =~ w.*')
  t.ok(contradiction([m('x="v"'), m('x!="v"')]), '= v and != v')
  t.ok(contradiction([m('x=~"a.*"'), m('x!~"a.*"')]), '=~ re and !~ re')
  t.notOk(contradiction([m('x="v"'), m('x=~"v|w"'), m('y="v"')]), 'consistent')
  t.notOk(contradiction([m('x=~"a.*"'), m('x=~"b.*"')]), 'unprovable is not claimed')

  const cases: Array<[string[], string[], boolean, string]> = [
    [['alertname="A"', 'team="x"'], ['alertname="A"'], true, 'same matcher'],
    [['job="api"'], ['job=~"api|web"'], true, '=~ implied by ='],
    [['job="db"'], ['job=~"api|web"'], false, '=~ not implied by a value outside it'],
    [['job="db"'], ['job!="api"'], true, '!= implied by = of another value'],
    [['job="api"'], ['job!="api"'], false, '!= not implied by = of the same value'],
    [['job="db"'], ['job!~"api.*"'], true, '!~ implied by = of a non-matching value'],
    [['job=~"api|web"'], ['job=~"a.*|w.*"'], true, 'every alternative satisfies the earlier regex'],
    [['job=~"a.*"'], ['job=~"a.*|b.*"'], false, 'unprovable is not claimed'],
    [['alertname="A"'], ['alertname="A"', 'team="x"'], false, 'earlier is narrower']
  ]
  for (const [later, earlier, expected, why] of cases) t.equal(implies(later.map(m), earlier.map(m)), expected, why)
})
