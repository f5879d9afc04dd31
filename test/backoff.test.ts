import t from 'tap'
import { backoffDelayMs, DEFAULT_BACKOFF } from '../src/outbox/backoff.js'

const cfg = { baseMs: 1_000, capMs: 60_000 }
const almostOne = () => 0.999999

t.test('the ceiling doubles per attempt and stops at the cap', async (t) => {
  const table: Array<[attempt: number, ceiling: number]> = [
    [1, 1_000], [2, 2_000], [3, 4_000], [4, 8_000], [6, 32_000], [7, 60_000], [30, 60_000], [10_000, 60_000]
  ]
  for (const [attempt, ceiling] of table) {
    t.equal(backoffDelayMs(cfg, attempt, almostOne), ceiling - 1, `attempt ${attempt}`)
  }
})

t.test('full jitter: uniform in [0, ceiling)', async (t) => {
  t.equal(backoffDelayMs(cfg, 3, () => 0), 0)
  t.equal(backoffDelayMs(cfg, 3, () => 0.5), 2_000)
  t.equal(backoffDelayMs(cfg, 3, () => 0.25), 1_000)
  // Many draws with a seeded generator stay in range.
  let seed = 42
  const lcg = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31)
  for (let i = 0; i < 1_000; i++) {
    const d = backoffDelayMs(cfg, 5, lcg)
    if (d < 0 || d >= 16_000) t.fail(`out of range: ${d}`)
  }
  t.pass('1000 draws within [0, 16000)')
})

t.test('Retry-After is a floor (notify/http.ts caps what a server may ask)', async (t) => {
  t.equal(backoffDelayMs(cfg, 1, () => 0, 30_000), 30_000, 'floor above the jittered delay')
  t.equal(backoffDelayMs(cfg, 7, almostOne, 5_000), 59_999, 'jittered delay above the floor wins')
  t.equal(backoffDelayMs(cfg, 1, () => 0, 0), 0)
})

t.test('defaults are sane', async (t) => {
  t.ok(DEFAULT_BACKOFF.baseMs > 0 && DEFAULT_BACKOFF.capMs >= DEFAULT_BACKOFF.baseMs)
  t.equal(backoffDelayMs(DEFAULT_BACKOFF, 0, almostOne), DEFAULT_BACKOFF.baseMs - 1, 'attempt 0 treated as 1')
})
