import t from 'tap'
import fc from 'fast-check'
import { renderSlackMessage, type SlackMessage } from '../src/notify/slack/render.js'
import { formatRelative } from '../src/text.js'
import { escapeMrkdwn, escapeTruncate } from '../src/notify/text.js'
import { startFakeSlack, validateSlackMessage } from './helpers/fake-slack.js'
import { makeAlert, makeGroup, manyAlerts } from './helpers/groups.js'

const now = new Date('2026-11-26T20:12:00Z')
const dest = { name: 'slack-incident-response', channel: '#incident-response' }

// Every text Slack will show, with where it sits.
function texts (m: SlackMessage): string[] {
  const out = [m.text]
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk)
    else if (typeof v === 'object' && v !== null) {
      const o = v as Record<string, unknown>
      if ((o.type === 'mrkdwn' || o.type === 'plain_text') && typeof o.text === 'string') out.push(o.text)
      else Object.values(o).forEach(walk)
    }
  }
  walk(m.blocks)
  return out
}

// No raw `<`/`>` (mentions, links) and every `&` starts a whole entity.
function safelyEscaped (s: string): boolean {
  return !/[<>]/.test(s) && !/&(?!(amp|lt|gt);)/.test(s)
}

function fieldTexts (m: SlackMessage): string[] {
  return m.blocks.flatMap((b) => (b.type === 'section' && b.fields !== undefined ? b.fields.map((f) => f.text) : []))
}

t.test('firing group: header, summary, fields, buttons, fallback text', async (t) => {
  const g = makeGroup([makeAlert(), makeAlert({ fingerprint: '06cc6459ad559d0c' })])
  const m = renderSlackMessage(g, dest, { now })
  t.equal(validateSlackMessage(m), null)
  const header = m.blocks[0]
  t.equal(header?.type, 'header')
  t.match(header?.type === 'header' ? header.text.text : '', /^🔴 P0 FIRING: HighErrorRate \(2\)$/)
  t.match(m.text, /P0.*FIRING.*HighErrorRate.*Error rate above 5%.*respond by 2026-11-26 20:16 UTC \(in 4 min\)/)
  const fields = fieldTexts(m)
  t.ok(fields.includes('*Priority*\n🔴 P0'))
  t.ok(fields.includes('*Respond by*\n2026-11-26 20:16 UTC\nin 4 min'))
  t.ok(fields.includes('*Team*\nplatform'))
  t.ok(fields.includes('*Escalation*\nOn-call engineer → Engineering manager'))
  t.ok(fields.includes('*Severity*\ncritical'))
  t.ok(fields.includes('*Service / namespace*\npynomaly-api, ns production'))
  const actions = m.blocks.find((b) => b.type === 'actions')
  const buttons = actions?.type === 'actions' ? actions.elements.map((e) => e.text.text) : []
  t.same(buttons, ['📖 Runbook', '📊 API overview', '🔕 Silence', '🔎 Source'])
  const silence = actions?.type === 'actions' ? actions.elements.find((e) => e.action_id.startsWith('silence'))?.url : undefined
  t.equal(decodeURIComponent(silence?.split('filter=')[1] ?? ''), '{alertname="HighErrorRate", job="pynomaly-api", namespace="production", service="pynomaly-api", severity="critical"}')
  const list = JSON.stringify(m.blocks)
  t.match(list, /instance=10\.0\.\d+\.\d+:8000/, 'the per-alert list tells the alerts apart')
})

t.test('overdue deadline reads "overdue by"', async (t) => {
  const m = renderSlackMessage(makeGroup([makeAlert()]), dest, { now: new Date('2026-11-26T20:19:10Z') })
  t.ok(fieldTexts(m).includes('*Respond by*\n2026-11-26 20:16 UTC\noverdue by 3 min'))
})

t.test('relative deadline wording', async (t) => {
  const at = (iso: string): string => formatRelative(new Date('2026-11-26T20:16:00Z'), new Date(iso))
  t.equal(at('2026-11-26T20:12:00Z'), 'in 4 min')
  t.equal(at('2026-11-26T20:15:30Z'), 'in <1 min')
  t.equal(at('2026-11-26T20:16:00Z'), 'in <1 min')
  t.equal(at('2026-11-26T20:19:00Z'), 'overdue by 3 min')
  t.equal(at('2026-11-26T17:16:00Z'), 'in 3 h')
  t.equal(at('2026-11-26T17:01:00Z'), 'in 3 h 15 min')
  t.equal(at('2026-11-23T16:16:00Z'), 'in 3 d 4 h')
})

t.test('resolved group looks resolved and has no deadline', async (t) => {
  const g = makeGroup([makeAlert({ status: 'resolved', endsAt: '2026-11-26T20:30:00Z' })])
  const m = renderSlackMessage(g, dest, { now })
  t.equal(validateSlackMessage(m), null)
  const header = m.blocks[0]
  t.match(header?.type === 'header' ? header.text.text : '', /^✅ P0 RESOLVED: HighErrorRate$/)
  t.match(m.text, /^✅ \[P0\] RESOLVED/)
  t.notMatch(m.text, /respond by/i)
  t.notOk(fieldTexts(m).some((f) => f.startsWith('*Respond by*')))
  t.match(JSON.stringify(m.blocks[1]), /RESOLVED/)
})

// The "*Alerts*" list as text, one line per alert.
function alertLines (m: SlackMessage): string[] {
  return m.blocks.flatMap((b) => (b.type === 'section' && b.text?.text.startsWith('*Alerts*') === true ? b.text.text.split('\n').slice(1) : []))
}

t.test('a single alert says which cluster, namespace, instance, pod and job it is', async (t) => {
  const labels = { alertname: 'KubeletDown', cluster: 'prod-eu-1', namespace: 'kube-system', instance: '10.1.2.3:10250', pod: 'kubelet-x', job: 'kubelet', node: 'n1', severity: 'critical' }
  const m = renderSlackMessage(makeGroup([makeAlert({ alertname: 'KubeletDown', labels })]), dest, { now })
  t.equal(validateSlackMessage(m), null)
  t.same(alertLines(m), ['🔥 *KubeletDown* · cluster=prod-eu-1 namespace=kube-system instance=10.1.2.3:10250 pod=kubelet-x job=kubelet'])
})

t.test('alert lines: location labels first, then what differs within the group (oldest first, then by fingerprint)', async (t) => {
  const base = { alertname: 'PodCrash', cluster: 'prod-eu-1', namespace: 'api', severity: 'warning' }
  const g = makeGroup([
    makeAlert({ alertname: 'PodCrash', labels: { ...base, pod: 'api-1', container: 'web' } }),
    makeAlert({ alertname: 'PodCrash', fingerprint: '06cc6459ad559d0c', labels: { ...base, pod: 'api-2', container: 'sidecar' } })
  ])
  t.same(alertLines(renderSlackMessage(g, dest, { now })), [
    '🔥 *PodCrash* · cluster=prod-eu-1 namespace=api pod=api-2 container=sidecar',
    '🔥 *PodCrash* · cluster=prod-eu-1 namespace=api pod=api-1 container=web'
  ])
})

t.test('header counts firing alerts only', async (t) => {
  const header = (m: SlackMessage): string => (m.blocks[0]?.type === 'header' ? m.blocks[0].text.text : '')
  const resolvedOne = (fp: string) => makeAlert({ fingerprint: fp, status: 'resolved', endsAt: '2026-11-26T20:30:00Z' })
  const mixed = makeGroup([makeAlert(), makeAlert({ fingerprint: '06cc6459ad559d0c' }), resolvedOne('0000000000000001'), resolvedOne('0000000000000002')])
  t.equal(header(renderSlackMessage(mixed, dest, { now })), '🔴 P0 FIRING: HighErrorRate (2)')
  const oneFiring = makeGroup([makeAlert(), resolvedOne('0000000000000001')])
  t.equal(header(renderSlackMessage(oneFiring, dest, { now })), '🔴 P0 FIRING: HighErrorRate')
  const allResolved = makeGroup([resolvedOne('0000000000000001'), resolvedOne('0000000000000002')])
  t.equal(header(renderSlackMessage(allResolved, dest, { now })), '✅ P0 RESOLVED: HighErrorRate (2)')
  const truncated = makeGroup([makeAlert(), resolvedOne('0000000000000001')], { truncatedAlerts: 5 })
  t.equal(header(renderSlackMessage(truncated, dest, { now })), '🔴 P0 FIRING: HighErrorRate (1+)', 'alerts Alertmanager left out may be firing')
})

t.test('mentions and markup in labels and annotations are escaped, never pinging', async (t) => {
  const nasty = '<!channel> <@U123> <!here> <!subteam^S1> <https://evil.example|click> & co'
  const a = makeAlert({
    alertname: `Disk<!channel>`,
    summary: nasty,
    description: nasty,
    team: '<@U123>',
    severity: '<!here>',
    escalation: { primary: '<!channel>', escalation: '<@U123>' },
    dashboards: [{ title: '<!channel>', url: 'https://grafana.example/d/x' }],
    labels: { alertname: 'Disk<!channel>', instance: '<@U123>', service: '<!channel>', namespace: 'a&b', severity: '<!here>' },
    annotations: { summary: nasty }
  })
  const g = makeGroup([a, { ...a, fingerprint: 'ffffffffffffffff', labels: { ...a.labels, instance: '<!channel>' } }], { receiver: '<!channel>' })
  const m = renderSlackMessage(g, { name: 'x', channel: '<!channel>' }, { now })
  t.equal(validateSlackMessage(m), null)
  const json = JSON.stringify(m)
  for (const raw of ['<!channel>', '<@U123>', '<!here>', '<!subteam^S1>', '<https://evil.example|click>']) t.notOk(json.includes(raw), `no raw ${raw}`)
  t.ok(json.includes('&lt;!channel&gt;'))
  t.ok(json.includes('&lt;@U123&gt;'))
  t.ok(json.includes('a&amp;b'))
  t.notOk(json.includes('&amp;lt;'), 'escaped once, not twice')
  for (const s of texts(m)) t.ok(safelyEscaped(s), s)
})

t.test('300 alerts: one valid message with "+N more"', async (t) => {
  const g = makeGroup(manyAlerts(300, (i) => ({
    alertname: `Alert${i % 9}`,
    summary: `summary ${i} `.repeat(40),
    labels: { alertname: `Alert${i % 9}`, instance: `<@U${i}> ${'x'.repeat(500)}`, severity: 'critical' },
    dashboards: Array.from({ length: 8 }, (_, d) => ({ title: `Dashboard ${d} ${'y'.repeat(100)}`, url: `https://grafana.example/d/${i}-${d}` }))
  })), { truncatedAlerts: 12 })
  const m = renderSlackMessage(g, dest, { now })
  t.equal(validateSlackMessage(m), null)
  t.ok(m.blocks.length <= 50)
  t.match(JSON.stringify(m), /\+292 more: 280 firing, 0 resolved, 12 not sent by Alertmanager/)
  t.ok(JSON.stringify(m).length < 20_000, 'stays compact')
  for (const s of texts(m)) t.ok(safelyEscaped(s))
})

t.test('a button whose URL is too long is dropped, not sent', async (t) => {
  const long = `https://grafana.example/d/${'a'.repeat(3000)}`
  const g = makeGroup([makeAlert({ dashboards: [{ title: 'Too long', url: long }, { title: 'Fine', url: 'https://grafana.example/d/ok' }], sourceUrl: 'javascript:alert(1)' })])
  const m = renderSlackMessage(g, dest, { now })
  t.equal(validateSlackMessage(m), null)
  const actions = m.blocks.find((b) => b.type === 'actions')
  const urls = actions?.type === 'actions' ? actions.elements.map((e) => e.url) : []
  t.notOk(urls.includes(long))
  t.ok(urls.includes('https://grafana.example/d/ok'))
  t.notOk(urls.some((u) => u?.startsWith('javascript:') === true))
})

t.test('truncation keeps entities and characters whole', async (t) => {
  t.equal(escapeTruncate('a<b', 10), 'a&lt;b')
  t.equal(escapeTruncate('<<<<', 10), '&lt;&lt;…', 'never "&l…"')
  t.equal(escapeTruncate('👍🏽👍🏽👍🏽', 5), '👍🏽…', 'a skin-toned emoji stays whole')
  t.equal(escapeMrkdwn('&<>*_~`'), '&amp;&lt;&gt;*_~`', 'only the three characters')
  const g = makeGroup([makeAlert({ alertname: '<'.repeat(5000), labels: { alertname: '<'.repeat(5000) }, summary: '&'.repeat(9000), description: '>'.repeat(9000) })])
  const m = renderSlackMessage(g, dest, { now })
  t.equal(validateSlackMessage(m), null)
  for (const s of texts(m)) t.ok(safelyEscaped(s))
})

t.test('any label and annotation content renders a valid, escaped message', async (t) => {
  // Biased towards what breaks escaping and limits: markup, entities, emoji, newlines.
  const piece = fc.oneof(fc.constantFrom('<', '>', '&', '<!channel>', '<@U123>', '&amp;', '👍🏽', 'é', '\n', '*'), fc.string({ unit: 'grapheme', maxLength: 20 }))
  const text = fc.array(piece, { maxLength: 40 }).map((p) => p.join(''))
  const big = fc.oneof(text, text.map((s) => s.repeat(40)))
  fc.assert(fc.property(
    fc.array(fc.record({ name: text, instance: big, summary: big, team: text, title: text, status: fc.constantFrom('firing' as const, 'resolved' as const) }), { minLength: 1, maxLength: 60 }),
    (rows) => {
      const alerts = rows.map((r, i) => makeAlert({
        fingerprint: i.toString(16).padStart(16, '0'),
        status: r.status,
        alertname: r.name,
        summary: r.summary,
        description: r.summary,
        team: r.team,
        labels: { alertname: r.name, instance: r.instance },
        dashboards: [{ title: r.title === '' ? 'd' : r.title, url: `https://grafana.example/d/${i}` }]
      }))
      const m = renderSlackMessage(makeGroup(alerts), dest, { now })
      return validateSlackMessage(m) === null && texts(m).every(safelyEscaped)
    }
  ), { numRuns: 150, seed: 20261126 })
  t.pass('fast-check found no counterexample')
})

t.test('rendered messages are accepted by the fake Slack', async (t) => {
  const slack = await startFakeSlack()
  t.teardown(() => slack.close())
  const groups = [
    makeGroup([makeAlert()]),
    makeGroup([makeAlert({ status: 'resolved', endsAt: '2026-11-26T20:30:00Z' })]),
    makeGroup(manyAlerts(300, (i) => ({ labels: { alertname: 'Many', instance: `<!channel> ${i}` } }))),
    makeGroup([makeAlert({ labels: { alertname: 'Ping', instance: '<!channel>', pod: '<@U123>' }, summary: '<!channel> <@U123>' })])
  ]
  for (const g of groups) {
    const res = await fetch(slack.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(renderSlackMessage(g, dest, { now })) })
    t.equal(res.status, 200)
    t.equal(await res.text(), 'ok')
  }
  t.equal(slack.accepted.length, 4)
  const ping = JSON.stringify(slack.accepted[3])
  t.ok(ping.includes('&lt;!channel&gt;') && ping.includes('&lt;@U123&gt;'))
  t.notOk(ping.includes('<!channel>') || ping.includes('<@U123>'))
})

t.test('Acknowledge button: only with an incident id, while firing and unacknowledged', async (t) => {
  const firing = makeGroup([makeAlert()])
  const actions = (m: SlackMessage): Array<{ action_id: string, value?: string, url?: string, style?: string }> => {
    const block = m.blocks.find((b) => b.type === 'actions')
    return block?.type === 'actions' ? block.elements : []
  }
  const withId = renderSlackMessage(firing, dest, { now, incidentId: 42 })
  t.equal(validateSlackMessage(withId), null)
  const ack = actions(withId)[0]
  t.match(ack, { action_id: 'acknowledge', value: '42', style: 'primary' }, 'first, carrying the incident id')
  t.notOk('url' in (ack ?? {}), 'an interactive button, not a link')
  t.same(actions(withId).filter((b) => b.style === 'primary').length, 1, 'one primary action')
  t.ok(actions(withId).some((b) => b.action_id.startsWith('runbook')) && actions(withId).some((b) => b.action_id.startsWith('silence')), 'runbook and silence links stay')

  t.notOk(actions(renderSlackMessage(firing, dest, { now })).some((b) => b.action_id === 'acknowledge'), 'no incident id: no button')
  const resolved = makeGroup([makeAlert({ status: 'resolved' })])
  t.notOk(actions(renderSlackMessage(resolved, dest, { now, incidentId: 42 })).some((b) => b.action_id === 'acknowledge'), 'resolved: no button')

  const acked = renderSlackMessage(firing, dest, { now, incidentId: 42, acknowledgedBy: 'jane <!channel>' })
  t.equal(validateSlackMessage(acked), null)
  t.notOk(actions(acked).some((b) => b.action_id === 'acknowledge'), 'acknowledged: the button gives way to who did it')
  t.ok(texts(acked).includes('👤 Acknowledged by @jane &lt;!channel&gt;'), 'shown, escaped: a name cannot ping the channel')
})

t.test('Acknowledge button within the actions limit whatever the links', async (t) => {
  const dashboards = Array.from({ length: 40 }, (_, i) => ({ title: `D${i}`, url: `https://grafana.example/d/${i}` }))
  const m = renderSlackMessage(makeGroup([makeAlert({ dashboards })]), dest, { now, incidentId: 1 })
  t.equal(validateSlackMessage(m), null)
  const block = m.blocks.find((b) => b.type === 'actions')
  t.ok(block?.type === 'actions' && block.elements.length <= 25 && block.elements[0]?.action_id === 'acknowledge')
})
