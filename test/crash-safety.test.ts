import t from 'tap'
import { crashSafetyTrial } from './helpers/crash-trial.js'

// SQLite: SIGKILLs at random moments under a stream of pages, restarts on the same DATA_DIR
// (see helpers/crash-trial.ts); every page answered 2xx reaches PagerDuty.

t.test('every page answered 2xx reaches PagerDuty across SIGKILLs and restarts', async (t) => {
  await crashSafetyTrial(t, { env: {}, drainMs: 30_000 })
})
