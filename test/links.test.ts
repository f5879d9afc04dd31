import t from 'tap'
import { resolveRunbookUrl, silenceUrl, sourceUrl } from '../src/enrich/links.js'

t.test('resolveRunbookUrl', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['incident_response_playbook.md#critical-alerts-p0', 'http://localhost:9095/runbooks/', 'http://localhost:9095/runbooks/incident_response_playbook.md#critical-alerts-p0'],
    ['incident_response_playbook.md#critical-alerts-p0', 'http://localhost:9095/runbooks', 'http://localhost:9095/runbooks/incident_response_playbook.md#critical-alerts-p0'],
    ['ops.md#database-issues', 'https://github.com/acme/ops/blob/main/runbooks/', 'https://github.com/acme/ops/blob/main/runbooks/ops.md#database-issues'],
    ['./ops.md', 'https://git.example/runbooks', 'https://git.example/runbooks/ops.md'],
    ['sub/dir/ops.md#a', 'https://git.example/runbooks/', 'https://git.example/runbooks/sub/dir/ops.md#a'],
    ['ops.md', 'https://git.example', 'https://git.example/ops.md'],
    ['https://wiki.example/page#x', 'http://localhost:9095/runbooks/', 'https://wiki.example/page#x'],
    ['HTTP://Wiki.Example/Page?q=1#x', 'http://localhost:9095/runbooks/', 'HTTP://Wiki.Example/Page?q=1#x'],
    ['ops.md#a', '/runbooks', '/runbooks/ops.md#a'],
    ['./ops.md#a', 'runbooks/', 'runbooks/ops.md#a']
  ]
  for (const [ref, base, want] of cases) t.equal(resolveRunbookUrl(ref, base), want, `${ref} against ${base}`)
  // A reference no URL parser takes (found by the webhook property test) is joined, never thrown.
  t.equal(resolveRunbookUrl('/\\', 'http://localhost:9095/runbooks/'), 'http://localhost:9095/runbooks//\\')
  // Characters a URL cannot hold raw are percent-encoded by the URL resolver.
  t.equal(resolveRunbookUrl('my runbook.md#café', 'http://h/rb/'), 'http://h/rb/my%20runbook.md#caf%C3%A9')
})

t.test('silenceUrl builds the Alertmanager new-silence link', async (t) => {
  const url = silenceUrl('http://alertmanager.example:9093', { severity: 'warning', alertname: 'HighErrorRate', instance: 'api-1:8000' })
  t.equal(url, 'http://alertmanager.example:9093/#/silences/new?filter=' +
    encodeURIComponent('{alertname="HighErrorRate", instance="api-1:8000", severity="warning"}'))
  t.equal(url, 'http://alertmanager.example:9093/#/silences/new?filter=%7Balertname%3D%22HighErrorRate%22%2C%20instance%3D%22api-1%3A8000%22%2C%20severity%3D%22warning%22%7D')
})

t.test('silenceUrl tolerates a trailing slash and a path prefix', async (t) => {
  const labels = { alertname: 'A' }
  const want = 'http://am.example/alertmanager/#/silences/new?filter=%7Balertname%3D%22A%22%7D'
  t.equal(silenceUrl('http://am.example/alertmanager', labels), want)
  t.equal(silenceUrl('http://am.example/alertmanager/', labels), want)
  t.equal(silenceUrl('http://am.example/alertmanager//', labels), want)
})

t.test('silenceUrl escapes values as the Alertmanager UI prints them', async (t) => {
  const filterOf = (url: string): string => {
    const marker = '#/silences/new?filter='
    return decodeURIComponent(url.slice(url.indexOf(marker) + marker.length))
  }
  const cases: Array<[string, string]> = [
    ['say "hi"', String.raw`{v="say \"hi\""}`],
    [String.raw`C:\temp\new`, String.raw`{v="C:\\temp\\new"}`],
    ['two words', '{v="two words"}'],
    ['{a="b", c="d"}', String.raw`{v="{a=\"b\", c=\"d\"}"}`],
    ['Zürich ✓ 東京 🚨', '{v="Zürich ✓ 東京 🚨"}'],
    ['line1\nline2\ttab', String.raw`{v="line1\nline2\ttab"}`],
    ['a&b=c?d#e%f+g/h', '{v="a&b=c?d#e%f+g/h"}'],
    ['', '{v=""}']
  ]
  for (const [value, filter] of cases) {
    const url = silenceUrl('http://am', { v: value })
    t.equal(filterOf(url), filter, JSON.stringify(value))
    // Nothing that could end the fragment's query value or break the link survives unencoded.
    t.notMatch(url.slice('http://am/#/silences/new?filter='.length), /[ "{}&#?=\\\n]|[^\x20-\x7e]/u, `encoded: ${JSON.stringify(value)}`)
    t.equal(decodeURIComponent(url.split('?filter=')[1] ?? ''), filter, 'round-trips through percent-decoding')
  }
})

t.test('silenceUrl sorts labels by name and handles none', async (t) => {
  const url = silenceUrl('http://am', { b: '2', a: '1', _x: '0', B: '3' })
  t.equal(decodeURIComponent(url.split('?filter=')[1] ?? ''), '{B="3", _x="0", a="1", b="2"}')
  t.equal(silenceUrl('http://am', {}), 'http://am/#/silences/new')
})

t.test('sourceUrl', async (t) => {
  t.equal(sourceUrl(''), null)
  const g = 'http://prometheus.example:9090/graph?g0.expr=sum%28rate%28http_requests_total%7Bstatus%3D~%225..%22%7D%5B5m%5D%29%29&g0.tab=1'
  t.equal(sourceUrl(g), g)
})
