import t from 'tap'
import fc from 'fast-check'
import { matchesAll, parseMatcher } from '../src/alertmanager/matchers.js'
import { createCatalog, loadCatalog, parseCatalog, type Catalog } from '../src/config/catalog.js'
import { formatProblem, type Problem } from '../src/config/problems.js'

// A small valid catalog header; tests append `entries:` text to it.
const HEADER = `runbookBaseUrl: https://git.example/runbooks/
defaults: { team: platform, runbook: ops.md#triage, priority: P2 }
calendar:
  timezone: Europe/Berlin
  businessDays: [mon, tue, wed, thu, fri]
  businessHours: { start: "09:00", end: "17:00" }
  holidays: ["2026-12-25"]
severityPriority: { critical: P0, warning: P2 }
priorities:
  P0: { responseTime: PT5M, clock: always, primary: On-call, escalation: Manager, destinations: [pager, chat] }
  P1: { responseTime: PT30M, clock: always, primary: On-call, escalation: Lead, destinations: [pager] }
  P2: { responseTime: PT2H, clock: business-hours, primary: Rota, escalation: Team, destinations: [chat] }
  P3: { responseTime: P1D, clock: next-business-day, primary: Queue, escalation: Product, destinations: [] }
destinations:
  pager: { type: pagerduty, routingKey: { env: PD_KEY } }
  chat: { type: slack, channel: "#alerts", webhookUrl: { env: SLACK_URL } }
`

function catalogOf (text: string): Catalog {
  const r = parseCatalog(text, 'c.yaml')
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'))
  return r.catalog
}

function problemsOf (text: string): Problem[] {
  const r = parseCatalog(text, 'c.yaml')
  return r.ok ? [] : r.problems
}

/** 1-based line (and column) of the first occurrence of `needle`. */
function posOf (text: string, needle: string): { line: number, col: number } {
  const i = text.indexOf(needle)
  if (i < 0) throw new Error(`fixture lacks ${needle}`)
  const before = text.slice(0, i).split('\n')
  return { line: before.length, col: (before.at(-1)?.length ?? 0) + 1 }
}

t.test('the bundled rules/catalog.yaml parses with no problems', async (t) => {
  const r = await loadCatalog('rules/catalog.yaml')
  t.same(r.ok ? [] : r.problems.map(formatProblem), [])
  if (r.ok) t.ok(r.catalog.entries.length > 0)
})

t.test('formatProblem is file:line:col message', async (t) => {
  t.equal(formatProblem({ file: 'rules/catalog.yaml', line: 3, col: 7, message: 'boom' }), 'rules/catalog.yaml:3:7 boom')
})

t.test('lookup: first matching entry in file order wins', async (t) => {
  const text = `${HEADER}entries:
  - id: api-critical
    matchers: ['alertname="ApiDown"', 'severity="critical"']
  - id: any-critical
    matchers: ['severity="critical"']
  - id: api-down
    matchers: ['alertname="ApiDown"']
  - id: disk
    matchers: ['alertname=~"DiskFull|DiskSlow"']
  - id: nameless
    matchers: ['alertname=""', 'team="db"']
  - id: team-db
    matchers: ['team="db"']
`
  const c = catalogOf(text)
  const find = (labels: Record<string, string>): string | undefined => c.findEntry(labels)?.entry.id
  t.equal(find({ alertname: 'ApiDown', severity: 'critical' }), 'api-critical')
  t.equal(find({ alertname: 'Other', severity: 'critical' }), 'any-critical', 'generic entry')
  t.equal(find({ alertname: 'ApiDown', severity: 'critical', x: 'y' }), 'api-critical')
  t.equal(find({ alertname: 'ApiDown', severity: 'warning' }), 'api-down')
  t.equal(find({ alertname: 'DiskSlow' }), 'disk', 'alternation of literals is indexed under each name')
  t.equal(find({ alertname: 'DiskSlowish' }), undefined, 'and stays anchored')
  t.equal(find({ team: 'db' }), 'nameless', 'an alert without alertname matches alertname=""')
  t.equal(find({ alertname: 'X', team: 'db' }), 'team-db')
  t.equal(find({ alertname: 'Nope' }), undefined, 'no entry → undefined (the caller applies defaults)')
  t.equal(c.entryLine('api-down'), posOf(text, '- id: api-down').line)
  t.equal(c.entryLine('missing'), 0)
  t.same(c.entries.map((e) => e.line), ['api-critical', 'any-critical', 'api-down', 'disk', 'nameless', 'team-db']
    .map((id) => posOf(text, `- id: ${id}`).line))
  t.equal(c.doc.calendar.timezone, 'Europe/Berlin')
})

t.test('holidays may be omitted (defaults to [])', async (t) => {
  const c = catalogOf(`${HEADER.replace('  holidays: ["2026-12-25"]\n', '')}entries: []\n`)
  t.same(c.doc.calendar.holidays, [])
})

t.test('a 10,000-entry catalog finds the right entry', async (t) => {
  const lines = ['entries:']
  const N = 10_000
  for (let i = 0; i < N; i++) {
    if (i % 1000 === 500) lines.push(`  - id: generic-${i}`, `    matchers: ['team="t${i}"']`)
    else if (i % 10 === 3) lines.push(`  - id: e${i}`, `    matchers: ['alertname=~"Alt${i}A|Alt${i}B"']`)
    else lines.push(`  - id: e${i}`, `    matchers: ['alertname="Alert${i}"', 'env!="test"']`)
  }
  lines.push('  - id: catch-all', `    matchers: ['severity=~".+"']`)
  const c = catalogOf(`${HEADER}${lines.join('\n')}\n`)
  t.equal(c.entries.length, N + 1)
  t.equal(c.findEntry({ alertname: 'Alert0' })?.entry.id, 'e0')
  t.equal(c.findEntry({ alertname: 'Alert9999' })?.entry.id, 'e9999')
  t.equal(c.findEntry({ alertname: 'Alt4443B' })?.entry.id, 'e4443')
  t.equal(c.findEntry({ alertname: 'Alert9999', env: 'test' }), undefined)
  t.equal(c.findEntry({ alertname: 'Alert9999', env: 'test', severity: 'x' })?.entry.id, 'catch-all')
  t.equal(c.findEntry({ alertname: 'Alert7000', team: 't6500' })?.entry.id, 'generic-6500', 'earlier generic beats later indexed entry')
  t.equal(c.findEntry({ alertname: 'Alert6000', team: 't6500' })?.entry.id, 'e6000', 'earlier indexed beats later generic entry')
  t.equal(c.findEntry({ alertname: 'Unknown', team: 't9500' })?.entry.id, 'generic-9500')
})

t.test('indexed lookup agrees with a linear scan (property)', async (t) => {
  const names = ['A', 'B', 'C']
  const matcherText = fc.oneof(
    fc.constantFrom(...names).map((n) => `alertname="${n}"`),
    fc.constant('alertname=~"A|B"'),
    fc.constant('alertname=~"C|"'),
    fc.constant('alertname!="A"'),
    fc.constantFrom('severity="critical"', 'severity!="critical"', 'team=~"db|web"', 'team=""')
  )
  const entries = fc.array(fc.array(matcherText, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 12 })
  const labels = fc.record({
    alertname: fc.constantFrom('A', 'B', 'C', 'D'),
    severity: fc.constantFrom('critical', 'warning'),
    team: fc.constantFrom('db', 'web', '')
  }, { requiredKeys: [] })
  // Built with createCatalog directly: lint would reject many random lists (shadowed or
  // contradictory entries), and the index must be right for any list.
  const doc = catalogOf(`${HEADER}entries: []\n`).doc
  fc.assert(fc.property(entries, fc.array(labels, { minLength: 1, maxLength: 10 }), (lists, alerts) => {
    const compiled = lists.map((texts, index) => ({
      index,
      entry: { id: `e${index}`, matchers: texts },
      matchers: texts.map((text) => { const r = parseMatcher(text); if (!r.ok) throw new Error(r.error); return r.matcher }),
      line: index + 1
    }))
    const c = createCatalog('c.yaml', doc, compiled)
    return alerts.every((a) => c.findEntry(a) === compiled.find((e) => matchesAll(e.matchers, a)))
  }), { numRuns: 300 })
  t.pass('property held')
})

t.test('YAML syntax errors are reported with their position', async (t) => {
  const text = `${HEADER}entries:\n  - id: a\n    matchers: ['alertname="A"'\n  - id: b\n`
  const problems = problemsOf(text)
  t.ok(problems.length >= 1)
  t.match(problems[0]?.message, /^YAML syntax error: /)
  t.equal(problems[0]?.file, 'c.yaml')
  t.ok((problems[0]?.line ?? 0) >= posOf(text, "matchers: ['alertname").line, 'points at or after the unclosed flow sequence')
})

t.test('duplicate keys are YAML errors', async (t) => {
  const text = `${HEADER}entries:\n  - id: a\n    matchers: ['alertname="A"']\n    priority: P1\n    priority: P2\n`
  const [p] = problemsOf(text)
  t.match(p?.message, /YAML syntax error: .*unique/i)
  t.equal(p?.line, posOf(text, '    priority: P2\n').line)
})

t.test('every schema error is reported, naming the field path, at its node', async (t) => {
  const text = `${HEADER}entries:
  - id: good
    matchers: ['alertname="A"']
  - id: Bad_Id
    matchers: ['alertname="B"']
  - id: c
    matchers: ['alertname="C"']
    priority: P9
    colour: red
  - id: d
    matchers: []
`.replace('responseTime: PT30M', 'responseTime: 30m')
  const got = problemsOf(text).map((p) => `${p.line}:${p.col} ${p.message}`)
  const at = (needle: string, msg: string): string => { const p = posOf(text, needle); return `${p.line}:${p.col} ${msg}` }
  t.same(got, [
    at('30m', 'priorities.P1.responseTime: expected an ISO 8601 duration such as PT5M, PT2H or P1D (got "30m")'),
    at('Bad_Id', "entries[1].id: expected an id (lower-case letters, digits and '-') (got \"Bad_Id\")"),
    at('P9', 'entries[2].priority: expected one of P0, P1, P2, P3 (got "P9")'),
    at('colour', 'entries[2].colour: unknown property'),
    at('[]\n', 'entries[3].matchers: expected at least 1 item')
  ])
})

t.test('missing sections and wrong destination shapes', async (t) => {
  const text = HEADER
    .replace(/^calendar:[\s\S]*?(?=severityPriority)/m, '')
    .replace('{ type: pagerduty, routingKey: { env: PD_KEY } }', '{ type: pagerduty, routingKey: { env: pd_key } }')
    .replace('{ type: slack, channel', '{ type: email, channel') + 'entries: []\n'
  const got = problemsOf(text).map((p) => `${p.line} ${p.message}`)
  t.same(got, [
    '1 calendar: required property missing',
    `${posOf(text, 'pd_key').line} destinations.pager.routingKey.env: expected an environment variable name (A-Z, 0-9, _) (got "pd_key")`,
    `${posOf(text, 'email').line} destinations.chat.type: expected one of slack, pagerduty (got "email")`
  ])
})

t.test('semantic problems', async (t) => {
  const cases: Array<{ name: string, edit: (h: string) => string, entries: string, needle: string, message: string | RegExp, col?: number }> = [
    {
      name: 'unknown destination in a priority',
      edit: (h) => h.replace('destinations: [pager] }', 'destinations: [pagr] }'),
      entries: '[]',
      needle: 'pagr',
      message: "priorities.P1.destinations[0]: unknown destination 'pagr' (defined: pager, chat)"
    },
    {
      name: 'unknown destination in an entry',
      edit: (h) => h,
      entries: `\n  - id: a\n    matchers: ['alertname="A"']\n    destinations: [chat, sms]`,
      needle: 'sms',
      message: "entries[0].destinations[1]: unknown destination 'sms' (defined: pager, chat)"
    },
    {
      name: 'destination id that is not an id',
      edit: (h) => h.replace('  chat: {', '  Chat_Room: {').replace(/\[pager, chat\]/, '[pager]').replace('destinations: [chat] }', 'destinations: [] }'),
      entries: '[]',
      needle: 'Chat_Room',
      message: "destinations.Chat_Room: destination id must be lower-case letters, digits and '-'"
    },
    {
      name: 'duplicate entry id',
      edit: (h) => h,
      entries: `\n  - id: a\n    matchers: ['alertname="A"']\n  - id: a\n    matchers: ['alertname="B"']`,
      needle: '- id: a\n    matchers: [\'alertname="B"',
      message: /^entries\[1\]\.id: duplicate entry id 'a' \(first at line \d+\)$/
    },
    {
      name: 'matcher syntax error, column inside the string',
      edit: (h) => h,
      entries: `\n  - id: a\n    matchers: ['alertname="A"', 'team=a b']`,
      needle: ' b\']',
      message: `entries[0].matchers[1]: invalid matcher 'team=a b': a value containing spaces or any of {}!=~,"' must be double-quoted`
    },
    {
      name: 'invalid regex',
      edit: (h) => h,
      entries: `\n  - id: a\n    matchers: ['job=~"(api"']`,
      needle: '"(api"',
      message: /^entries\[0\]\.matchers\[0\]: invalid matcher 'job=~"\(api"': invalid regular expression: /
    },
    {
      name: 'invalid time zone',
      edit: (h) => h.replace('Europe/Berlin', 'Europe/Atlantis'),
      entries: '[]',
      needle: 'Europe/Atlantis',
      message: 'calendar.timezone: unknown IANA time zone "Europe/Atlantis"'
    },
    {
      name: 'business hours end before start',
      edit: (h) => h.replace('end: "17:00"', 'end: "08:00"'),
      entries: '[]',
      needle: '"08:00"',
      message: 'calendar.businessHours: end 08:00 must be after start 09:00'
    },
    {
      name: 'holiday that is not a date',
      edit: (h) => h.replace('2026-12-25', '2026-02-30'),
      entries: '[]',
      needle: '"2026-02-30"',
      message: 'calendar.holidays: "2026-02-30" is not a valid date (YYYY-MM-DD)'
    },
    {
      name: 'contradictory equality matchers',
      edit: (h) => h,
      entries: `\n  - id: a\n    matchers: ['alertname="A"', 'alertname="B"']`,
      needle: "['alertname=\"A\"', 'alertname=\"B\"']",
      message: `entries[0].matchers: entry 'a' can never match: no value of label 'alertname' satisfies alertname="A", alertname="B"`
    },
    {
      name: 'equality contradicting a regex',
      edit: (h) => h,
      entries: `\n  - id: a\n    matchers: ['alertname="A"', 'job="v"', 'job=~"w.*"']`,
      needle: "['alertname=\"A\"', 'job",
      message: `entries[0].matchers: entry 'a' can never match: no value of label 'job' satisfies job="v", job=~"w.*"`
    }
  ]
  for (const c of cases) {
    const text = `${c.edit(HEADER)}entries: ${c.entries}\n`
    const problems = problemsOf(text)
    t.equal(problems.length, 1, `${c.name}: one problem (${problems.map(formatProblem).join('; ')})`)
    const p = problems[0]
    t.match(p?.message, c.message, c.name)
    const pos = posOf(text, c.needle)
    t.equal(p?.line, pos.line, `${c.name}: line`)
    if (c.name.includes('column')) t.equal(p?.col, pos.col, `${c.name}: column`)
  }
})

t.test('an entry shadowed by an earlier one can never match', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['same matchers', `['alertname="A"']`, `['alertname="A"', 'severity="critical"']`],
    ['regex implied by equality', `['alertname=~"A|B"']`, `['alertname="B"']`],
    ['!= implied by = of another value', `['alertname="A"', 'env!="test"']`, `['alertname="A"', 'env="prod"']`],
    ['!~ implied by = of a non-matching value', `['alertname="A"', 'env!~"test|dev"']`, `['alertname="A"', 'env="prod"']`],
    ['generic entry shadows an indexed one', `['severity="critical"']`, `['alertname="A"', 'severity="critical"']`]
  ]
  for (const [why, earlier, later] of cases) {
    const text = `${HEADER}entries:\n  - id: first\n    matchers: ${earlier}\n  - id: other\n    matchers: ['alertname="Z"']\n  - id: second\n    matchers: ${later}\n`
    const problems = problemsOf(text)
    t.same(problems.map((p) => `${p.line} ${p.message}`), [
      `${posOf(text, 'matchers: ' + later).line} entries[2].matchers: entry 'second' can never match: entry 'first' (line ${posOf(text, '- id: first').line}) matches every alert it matches`
    ], why)
  }
  const fine = `${HEADER}entries:\n  - id: narrow\n    matchers: ['alertname="A"', 'severity="critical"']\n  - id: broad\n    matchers: ['alertname="A"']\n  - id: other-env\n    matchers: ['alertname="B"', 'env="prod"']\n  - id: b\n    matchers: ['alertname="B"', 'env!="prod"']\n`
  t.same(problemsOf(fine), [], 'narrow before broad, and disjoint entries, are fine')
})

t.test('loadCatalog turns a read error into one problem at 1:1', async (t) => {
  const r = await loadCatalog('test/fixtures/catalogs/does-not-exist.yaml')
  t.same(r.ok ? [] : r.problems, [{ file: 'test/fixtures/catalogs/does-not-exist.yaml', line: 1, col: 1, message: 'cannot read catalog: ENOENT' }])
})

t.test('an empty document reports the missing sections at 1:1', async (t) => {
  const problems = problemsOf('')
  t.ok(problems.length > 0)
  t.ok(problems.every((p) => p.line === 1 && p.col === 1))
  t.match(problems.map((p) => p.message), ['runbookBaseUrl: required property missing'])
})

t.test('Slack bot-token destinations: the id form is accepted, a channel name is named in the error', async (t) => {
  const bot = HEADER.replace('{ type: slack, channel: "#alerts", webhookUrl: { env: SLACK_URL } }',
    '{ type: slack, channel: "#alerts", channelId: C0123ABCD, botToken: { env: SLACK_BOT_TOKEN } }') + 'entries: []\n'
  const chat = catalogOf(bot).doc.destinations.chat
  t.match(chat, { type: 'slack', channelId: 'C0123ABCD', botToken: { env: 'SLACK_BOT_TOKEN' } })
  t.same(problemsOf(HEADER + 'entries: []\n'), [], 'the webhook form still parses')

  const named = bot.replace('channelId: C0123ABCD', 'channelId: "#alerts"')
  t.same(problemsOf(named).map((p) => `${p.line} ${p.message}`), [
    `${posOf(named, 'channelId').line} destinations.chat.channelId: expected a Slack channel id such as C0123ABCD, got "#alerts", which is a channel name (the id is at the bottom of the channel's details in Slack; chat.update needs it, not the name)`
  ])
  const bare = bot.replace('channelId: C0123ABCD', 'channelId: alerts')
  t.match(problemsOf(bare).map((p) => p.message), [/got "alerts", which is a channel name/])
  const noId = bot.replace('channelId: C0123ABCD, ', '')
  t.same(problemsOf(noId).map((p) => p.message), ['destinations.chat.channelId: required property missing'], 'a bot token without channelId')
  const mixed = bot.replace('botToken: { env: SLACK_BOT_TOKEN }', 'botToken: { env: SLACK_BOT_TOKEN }, webhookUrl: { env: SLACK_URL }')
  t.same(problemsOf(mixed).map((p) => p.message), ['destinations.chat.webhookUrl: unknown property'], 'both forms at once')
})

t.test('a NUL character anywhere in the catalog is a problem at its node (PostgreSQL could never store it)', async (t) => {
  const entry = (field: string): string => `${HEADER}entries:\n  - id: a\n    matchers: ['alertname="A"']\n    ${field}\n`
  const cases = [
    { field: 'description: "disk \\0 full"', message: 'entries[0].description: contains a NUL character (U+0000)' },
    { field: 'team: "plat\\0form"', message: 'entries[0].team: contains a NUL character (U+0000)' },
    { field: 'links: { "we\\0ird": "https://x.example/" }', message: /entries\[0\]\.links.*the name contains a NUL character \(U\+0000\)/ }
  ]
  for (const c of cases) {
    const problems = problemsOf(entry(c.field))
    t.ok(problems.some((p) => typeof c.message === 'string' ? p.message === c.message : c.message.test(p.message)), `${c.field}: ${problems.map(formatProblem).join('; ')}`)
    t.ok(problems.every((p) => p.line > 1), 'positioned at its node, not at 1:1')
  }
  t.same(problemsOf(entry('team: "plat form"')), [], 'the same catalog without the NUL is fine')
})
