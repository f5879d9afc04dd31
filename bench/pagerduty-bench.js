// Page latency as on-call feels it (issue 12), black box: the service as a process, the bundled
// catalog, a timing PagerDuty receiver.
//   alert-latency  a real Alertmanager routes each alert both to its own PagerDuty integration
//                  (pagerduty_configs, url: the receiver) and to webhook → alert-enricher →
//                  the receiver; paced under the rate limit. The row is the median per-alert
//                  difference (service path minus native path); goal ≤ 5 ms.
//   storm          60 P0 groups POSTed to /webhook at once → the 60th at PagerDuty; goal
//                  < 1 s; baseline: one P0 alone, each on a fresh service (full rate-limit
//                  bucket, cold process alike), median of three.
// Run alone: `npm run build && node bench/pagerduty-bench.js`.
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { startBenchPostgres } from './postgres.js'
import { alertmanagerInstalled, median, quantile, ROUTING_KEY, sleep, startAlertmanager, startService, startTimingPagerDuty } from './processes.js'

const SAMPLES = 30
const WARMUP = 2
const PACE_MS = 600 // under PagerDuty's default 2/s: the limiter never holds a page
const ARRIVAL_TIMEOUT_MS = 10_000
const STORM = 60
const STORM_TIMEOUT_MS = 60_000

// Both receivers get every alert: the first route continues to the second.
function alertmanagerConfig (serviceUrl, pagerdutyBase) {
  return JSON.stringify({
    route: {
      receiver: 'native-pagerduty',
      group_by: ['alertname', 'sample'],
      group_wait: '0s',
      group_interval: '5m',
      repeat_interval: '4h',
      routes: [{ receiver: 'alert-enricher', continue: true }, { receiver: 'native-pagerduty' }]
    },
    receivers: [
      { name: 'alert-enricher', webhook_configs: [{ url: `${serviceUrl}/webhook`, send_resolved: false, max_alerts: 0 }] },
      { name: 'native-pagerduty', pagerduty_configs: [{ routing_key: ROUTING_KEY, url: `${pagerdutyBase}/native/v2/enqueue`, send_resolved: false }] }
    ]
  }, null, 2)
}

// HighErrorRate + critical is P0 → PagerDuty in the bundled catalog; `sample` makes each alert its own group.
const sampleLabel = (n) => `ae-bench-${String(n).padStart(4, '0')}`
function alert (n) {
  return { labels: { alertname: 'HighErrorRate', severity: 'critical', service: 'bench-api', namespace: 'production', sample: sampleLabel(n) }, annotations: { summary: 'bench page' } }
}

async function withProcesses (starts, fn) {
  const running = []
  try {
    for (const start of starts) running.push(await start(running))
    return await fn(...running)
  } finally {
    for (const p of running.reverse()) {
      if (p.close !== undefined) await p.close()
      else await p.stop()
    }
  }
}

// `databaseUrl`: two replicas on that PostgreSQL (Alertmanager posts to the first; either sends).
export async function benchAlertLatency ({ samples = SAMPLES, databaseUrl, replicas = 2 } = {}) {
  const db = databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }
  const replica = ([pd]) => startService({ PAGERDUTY_ROUTING_KEY: ROUTING_KEY, PAGERDUTY_EVENTS_URL: `${pd.base}/service/v2/enqueue`, ...db })
  return await withProcesses([
    () => startTimingPagerDuty(),
    replica,
    ...(databaseUrl === undefined || replicas < 2 ? [] : [replica]),
    ([pd, service]) => startAlertmanager(alertmanagerConfig(service.url, pd.base))
  ], async (pd, service, ...rest) => {
    const am = rest[rest.length - 1]
    const native = []
    const viaService = []
    for (let n = 0; n < samples + WARMUP; n++) {
      const label = sampleLabel(n)
      const t0 = performance.now()
      await am.postAlerts([alert(n)])
      const [a, b] = await Promise.all([
        pd.waitFor((e) => e.path.startsWith('/native/') && e.body.includes(label), ARRIVAL_TIMEOUT_MS),
        pd.waitFor((e) => e.path.startsWith('/service/') && e.body.includes(label), ARRIVAL_TIMEOUT_MS)
      ]).catch((err) => { throw new Error(`sample ${n}: ${err.message}\nservice:\n${service.output()}\nalertmanager:\n${am.output()}`) })
      if (n >= WARMUP) {
        native.push(a.at - t0)
        viaService.push(b.at - t0)
      }
      await sleep(Math.max(0, t0 + PACE_MS - performance.now()))
    }
    const added = viaService.map((v, i) => v - native[i])
    return { addedMedian: median(added), addedP90: quantile(added, 0.9), nativeMedian: median(native), serviceMedian: median(viaService), samples }
  })
}

function webhook (n, tag) {
  const labels = { alertname: 'HighErrorRate', severity: 'critical', service: 'bench-api', namespace: 'production', group: `${tag}-${n}` }
  return JSON.stringify({
    version: '4',
    groupKey: `{}:{alertname="HighErrorRate", group="${tag}-${n}"}`,
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'alert-enricher',
    groupLabels: { alertname: 'HighErrorRate', group: `${tag}-${n}` },
    commonLabels: labels,
    commonAnnotations: { summary: 'bench storm' },
    externalURL: 'http://alertmanager.example:9093',
    alerts: [{ status: 'firing', labels, annotations: { summary: 'bench storm' }, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint: `${n}`.padStart(16, '0') }]
  })
}

// From the first POST to the arrival of the last of `count` pages, on a fresh service (full bucket).
async function pagesArrive (count, tag) {
  return await withProcesses([
    () => startTimingPagerDuty(),
    ([pd]) => startService({ PAGERDUTY_ROUTING_KEY: ROUTING_KEY, PAGERDUTY_EVENTS_URL: `${pd.base}/v2/enqueue` })
  ], async (pd, service) => {
    const t0 = performance.now()
    const answers = await Promise.all(Array.from({ length: count }, async (_, n) => {
      const res = await fetch(`${service.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: webhook(n, tag), signal: AbortSignal.timeout(10_000) })
      await res.arrayBuffer()
      return res.status
    }))
    const refused = answers.filter((s) => s !== 200)
    if (refused.length > 0) throw new Error(`${refused.length} webhooks not accepted: ${refused.slice(0, 5).join(', ')}`)
    const deadline = t0 + STORM_TIMEOUT_MS
    while (pd.arrivals.length < count && performance.now() < deadline) {
      await pd.waitFor(() => pd.arrivals.length >= count, Math.max(1, Math.min(1_000, deadline - performance.now()))).catch(() => undefined)
    }
    const last = pd.arrivals.length >= count ? pd.arrivals[count - 1].at - t0 : undefined
    return { ms: last, arrived: pd.arrivals.length }
  })
}

export async function benchStorm () {
  const singles = []
  for (let i = 0; i < 3; i++) {
    const one = await pagesArrive(1, `single${i}`)
    if (one.ms === undefined) throw new Error('a single P0 never reached PagerDuty')
    singles.push(one.ms)
  }
  const storm = await pagesArrive(STORM, 'storm')
  return { stormMs: storm.ms, arrived: storm.arrived, singleMs: median(singles) }
}

export async function benchPagerDuty () {
  const rows = []
  if (alertmanagerInstalled()) {
    const l = await benchAlertLatency()
    rows.push({
      name: `alert → PagerDuty added median via Alertmanager webhook → service, over Alertmanager's own PagerDuty (${l.samples} alerts, p90 added ${l.addedP90.toFixed(1)} ms; medians ${l.serviceMedian.toFixed(1)} vs ${l.nativeMedian.toFixed(1)} ms)`,
      value: l.addedMedian, unit: 'ms', baseline: l.nativeMedian, ratio: l.serviceMedian / l.nativeMedian, goal: `≤ 5 ms added: ${l.addedMedian <= 5 ? 'met' : 'MISSED'}`
    })
    const postgres = await startBenchPostgres()
    try {
      const h = await benchAlertLatency({ databaseUrl: await postgres.createDatabase() })
      rows.push({
        name: `  same, two replicas on PostgreSQL (${h.samples} alerts, p90 added ${h.addedP90.toFixed(1)} ms; medians ${h.serviceMedian.toFixed(1)} vs ${h.nativeMedian.toFixed(1)} ms)`,
        value: h.addedMedian, unit: 'ms', baseline: h.nativeMedian, ratio: h.serviceMedian / h.nativeMedian, goal: `≤ 10 ms added: ${h.addedMedian <= 10 ? 'met' : 'MISSED'}`
      })
    } finally {
      postgres.stop()
    }
  } else {
    console.log('  alert → PagerDuty latency: skipped, /usr/bin/prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)')
  }
  const s = await benchStorm()
  const value = s.stormMs ?? STORM_TIMEOUT_MS
  rows.push({
    name: s.stormMs === undefined
      ? `storm: ${STORM} P0 groups at once → only ${s.arrived} at PagerDuty within ${STORM_TIMEOUT_MS / 1000} s, vs 1 P0 alone`
      : `storm: ${STORM} P0 groups at once → the ${STORM}th at PagerDuty, vs 1 P0 alone`,
    value, unit: 'ms', baseline: s.singleMs, ratio: value / s.singleMs, goal: `< 1,000 ms: ${s.stormMs !== undefined && s.stormMs < 1_000 ? 'met' : 'MISSED'}`
  })
  return rows
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of await benchPagerDuty()) console.log(`${r.name}: ${r.value.toFixed(1)} ${r.unit} vs ${r.baseline.toFixed(1)} → ${r.ratio.toFixed(2)}× (goal ${r.goal})`)
}
