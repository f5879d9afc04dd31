import t from 'tap'
import { createMetrics } from '../src/metrics.js'

t.test('metrics registry pre-initialises webhook outcomes', async (t) => {
  const m = createMetrics({ defaultMetrics: false })
  const text = await m.registry.metrics()
  t.match(text, /alert_enricher_webhooks_received_total\{outcome="bad_request"\} 0/)
})
