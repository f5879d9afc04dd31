import t from 'tap'
import fc from 'fast-check'
import { silenceUrl } from '../src/enrich/links.js'
import { formatExplanation } from '../src/notify/explain-text.js'
import type { PreviewResult } from '../src/enrich/types.js'
import { groupSilenceUrl } from '../src/notify/group-view.js'
import { renderSlackMessage } from '../src/notify/slack/render.js'
import { formatRelative, nonEmpty } from '../src/text.js'
import { makeAlert, makeGroup } from './helpers/groups.js'

// Rules that used to have two copies which disagreed: each is now computed in one place, and
// these tests pin the places that used to differ to the same answer.

t.test('a group silence link escapes shared label values exactly as a single alert\'s link does', async (t) => {
  fc.assert(fc.property(fc.dictionary(fc.stringMatching(/^[a-z_][a-z0-9_]{0,8}$/), fc.string({ unit: 'binary', maxLength: 12 }), { minKeys: 1, maxKeys: 4 }), (shared) => {
    const alerts = [makeAlert({ fingerprint: '0000000000000001', labels: { ...shared, pod: 'a' } }), makeAlert({ fingerprint: '0000000000000002', labels: { ...shared, pod: 'b' } })]
    const group = makeGroup(alerts)
    return groupSilenceUrl(group) === silenceUrl(group.externalURL, shared)
  }))
  // The old group copy left control characters other than \n raw inside the quoted value.
  const group = makeGroup([makeAlert({ fingerprint: '0000000000000001', labels: { msg: 'a\tb', pod: 'a' } }), makeAlert({ fingerprint: '0000000000000002', labels: { msg: 'a\tb', pod: 'b' } })])
  t.equal(decodeURIComponent(groupSilenceUrl(group)?.split('filter=')[1] ?? ''), '{msg="a\\tb"}')
})

t.test('explain and the renderers state the same time left, rounded down', async (t) => {
  const now = new Date('2026-11-26T20:11:10Z') // 4 min 50 s before the deadline
  const alert = makeAlert()
  t.equal(formatRelative(new Date(alert.sla.respondBy), now), 'in 4 min')
  const preview: PreviewResult = { alerts: [alert], notifications: [] }
  t.match(formatExplanation(preview, now), /\(PT5M, always; in 4 min\)/)
  const slack = JSON.stringify(renderSlackMessage(makeGroup([alert]), { name: 'slack', channel: '#ops' }, { now }))
  t.match(slack, /in 4 min/)
  t.notMatch(slack, /in 5 min/)
  t.equal(formatRelative(new Date('2026-11-26T20:16:00Z'), new Date('2026-11-26T22:15:59Z')), 'overdue by 119 min')
})

t.test('nonEmpty treats whitespace-only as missing and keeps other text as is', async (t) => {
  t.equal(nonEmpty(undefined), undefined)
  t.equal(nonEmpty(''), undefined)
  t.equal(nonEmpty(' \t\n'), undefined)
  t.equal(nonEmpty(' a '), ' a ')
})
