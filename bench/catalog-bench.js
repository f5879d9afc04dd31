// Catalog lookup cost must not grow with the catalog: 10 vs 10,000 entries, same lookups.
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { parseCatalog } from '../dist/config/catalog.js'

const header = readFileSync(new URL('../rules/catalog.yaml', import.meta.url), 'utf8').split('\nentries:')[0]

function catalogWith (n) {
  const entries = []
  for (let i = 0; i < n; i++) {
    entries.push(`  - id: e${i}\n    matchers: ['alertname="Alert${i}"', 'severity=~"critical|high"']\n    priority: P1`)
  }
  // A few generic entries (no alertname) that every lookup must also consider.
  entries.push('  - id: generic-team\n    matchers: [\'team="nobody"\']')
  const parsed = parseCatalog(`${header}\nentries:\n${entries.join('\n')}\n`, `bench-${n}.yaml`)
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems.slice(0, 3)))
  return parsed.catalog
}

// Both catalogs are asked about the same number of distinct alerts (10, spread over the whole
// catalog), so the figure is the lookup's scaling, not the CPU cache holding 10 vs 1,000 hot
// entries (that working-set effect alone costs ~0.6× on these machines, whatever the index).
function timeLookups (catalog, n, lookups) {
  const labels = Array.from({ length: 1024 }, (_, i) => ({ alertname: `Alert${(i % 10) * (n / 10)}`, severity: 'critical', service: 'api', instance: `i${i}` }))
  let found = 0
  const start = performance.now()
  for (let i = 0; i < lookups; i++) if (catalog.findEntry(labels[i & 1023]) !== undefined) found++
  const ms = performance.now() - start
  if (found !== lookups) throw new Error(`expected every lookup to match, got ${found}/${lookups}`)
  return ms
}

export function benchCatalog ({ lookups = 500_000 } = {}) {
  const small = catalogWith(10)
  const large = catalogWith(10_000)
  timeLookups(small, 10, lookups / 5) // warm-up (JIT)
  timeLookups(large, 10_000, lookups / 5)
  let smallMs = Infinity
  let largeMs = Infinity
  for (let round = 0; round < 5; round++) {
    smallMs = Math.min(smallMs, timeLookups(small, 10, lookups))
    largeMs = Math.min(largeMs, timeLookups(large, 10_000, lookups))
  }
  return [{ name: 'catalog lookup 10,000 vs 10 entries', baseline: lookups / smallMs * 1000, value: lookups / largeMs * 1000, unit: 'lookups/s', ratio: smallMs / largeMs, goal: `≤ 1.2× slower (ratio ≥ 0.83): ${smallMs / largeMs >= 1 / 1.2 ? 'met' : 'MISSED'}` }]
}
