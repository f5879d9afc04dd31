import t from 'tap'
import { headingAnchors } from '../src/runbooks/anchors.js'

t.test('heading anchors follow GitHub slug rules', async (t) => {
  const md = '# Incident Response Playbook\n\ntext\n\n## Critical Alerts (P0)\n\n## Critical Alerts (P0)\n\n### `kubectl` & *Database* Issues\n'
  const a = headingAnchors(md)
  t.same(a.map((h) => h.slug), ['incident-response-playbook', 'critical-alerts-p0', 'critical-alerts-p0-1', 'kubectl--database-issues'])
  t.same(a.map((h) => h.line), [1, 5, 7, 9])
})
