// `npm run bench`: every figure next to a baseline measured in the same run, as a ratio.
// These machines are shared and noisy; read ratios, not absolute numbers.
import { benchCatalog } from './catalog-bench.js'
import { benchEscalation } from './escalation-bench.js'
import { benchOutbox } from './outbox-bench.js'
import { benchPagerDuty } from './pagerduty-bench.js'
import { benchPostgres } from './postgres-bench.js'
import { benchWebhook } from './webhook-bench.js'

const only = process.argv[2]
const suites = {
  catalog: () => benchCatalog(),
  webhook: () => benchWebhook({ seconds: Number(process.env.BENCH_SECONDS ?? 5) }),
  outbox: () => benchOutbox(),
  pagerduty: () => benchPagerDuty(),
  escalation: () => benchEscalation(),
  postgres: () => benchPostgres()
}

const rows = []
for (const [name, run] of Object.entries(suites)) {
  if (only !== undefined && only !== name) continue
  console.log(`running ${name} …`)
  const result = await run()
  rows.push(...result)
  for (const r of result) console.log(`  ${r.name}: ${fmt(r.value)} ${r.unit} vs baseline ${fmt(r.baseline)} ${r.unit} → ${r.ratio.toFixed(2)}×${r.goal !== undefined ? ` (goal ${r.goal})` : ''}`)
}
console.log('\nsummary')
console.table(rows.map((r) => ({ benchmark: r.name, value: `${fmt(r.value)} ${r.unit}`, baseline: `${fmt(r.baseline)} ${r.unit}`, ratio: `${r.ratio.toFixed(2)}×`, goal: r.goal ?? '' })))

function fmt (n) { return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2) }
