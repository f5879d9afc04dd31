import t from 'tap'
import { headingAnchors } from '../src/runbooks/anchors.js'
import { renderRunbookBody } from '../src/runbooks/render.js'

t.test('heading anchors follow GitHub slug rules', async (t) => {
  const md = '# Incident Response Playbook\n\ntext\n\n## Critical Alerts (P0)\n\n## Critical Alerts (P0)\n\n### `kubectl` & *Database* Issues\n'
  const a = headingAnchors(md)
  t.same(a.map((h) => h.slug), ['incident-response-playbook', 'critical-alerts-p0', 'critical-alerts-p0-1', 'kubectl--database-issues'])
  t.same(a.map((h) => h.line), [1, 5, 7, 9])
})

// Expected values are github-slugger 2's output for each heading's rendered text (what GitHub
// shows), written out so a change of library or of text extraction cannot pass unnoticed.
const CASES: Array<[heading: string, anchor: string]> = [
  ['### Check kube_pod_container_status_restarts_total', 'check-kube_pod_container_status_restarts_total'],
  ['### Check kube_pod_container_status_restarts_total', 'check-kube_pod_container_status_restarts_total-1'],
  ['### Check `kube_pod_container_status_restarts_total`', 'check-kube_pod_container_status_restarts_total-2'],
  ['## snake__case__x foo_bar_', 'snake__case__x-foo_bar_'],
  ['## _Emphasised_ and __strong__ words', 'emphasised-and-strong-words'],
  ['## a\\_b & c', 'a_b--c'],
  ['## Tom &amp; Jerry &#35;1', 'tom--jerry-1'],
  ['## Step 2: v1.2.3 rollback (P0) 🚀 now!', 'step-2-v123-rollback-p0--now'],
  ['## 🔥 Hot path', '-hot-path'],
  ['## Über-Größe café', 'über-größe-café'],
  ['## See [the guide](other.md#x) <b>now</b>', 'see-the-guide-now'],
  ['## 50% off — "quoted"', '50-off--quoted'],
  ['## Repeat', 'repeat'],
  ['## Repeat', 'repeat-1'],
  ['## Repeat 1', 'repeat-1-1']
]

t.test('underscores, digits, punctuation, emoji and repeats match GitHub', async (t) => {
  const md = CASES.map(([h]) => h).join('\n\ntext\n\n') + '\n'
  t.same(headingAnchors(md).map((a) => a.slug), CASES.map(([, anchor]) => anchor))
  // The served page carries the same ids.
  const ids = [...renderRunbookBody(md).matchAll(/<h[1-6] id="([^"]+)"/g)].map((m) => m[1])
  t.same(ids, CASES.map(([, anchor]) => anchor))
})
