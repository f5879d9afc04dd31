import { renderSlackMessage } from '../src/notify/slack/render.js'
import { renderPagerDutyEvent } from '../src/notify/pagerduty/render.js'
import { makeAlert, makeGroup } from './helpers/groups.js'
const now = new Date('2026-11-26T20:12:00Z')
const g = makeGroup([makeAlert()])
const bench = (name: string, f: () => unknown): void => {
  for (let i = 0; i < 500; i++) f()
  const n = 5000; const t0 = performance.now()
  for (let i = 0; i < n; i++) f()
  console.log(`${name}: ${((performance.now() - t0) / n * 1000).toFixed(1)} µs`)
}
bench('slack', () => renderSlackMessage(g, { name: 'x', channel: '#x' }, { now }))
bench('pd', () => renderPagerDutyEvent(g, { name: 'x' }, { now }))
