import { finiteValues } from '../alertmanager/matcher-sets.js'
import type { CompiledMatcher } from '../alertmanager/matchers.js'

// Lookup that does not slow down as the catalog grows: an entry that pins `alertname` to a
// finite set of values (alertname="X", or alertname=~"A|B|C") is filed under each value;
// every other entry goes to a generic list. An alert is tried only against its alertname's
// bucket and the generic list, merged back into file order so the first match still wins.

export interface Indexable { readonly index: number, readonly matchers: readonly CompiledMatcher[] }

export interface EntryIndex<E extends Indexable> {
  /** Entries must be added in file order. */
  add: (entry: E) => void
  /** The first entry, in file order, among this alertname's bucket and the generic list that
   *  satisfies `test`. Allocation-free: it runs once per alert on the webhook path. */
  first: (alertname: string, test: (entry: E) => boolean) => E | undefined
  /** Entries not filed under any alertname, in file order. */
  generic: () => readonly E[]
  /** The alertname values this entry is filed under; undefined for a generic entry. */
  alertnames: (entry: E) => ReadonlySet<string> | undefined
}

export function createEntryIndex<E extends Indexable> (): EntryIndex<E> {
  const byAlertname = new Map<string, E[]>()
  const generic: E[] = []
  const NONE: readonly E[] = []

  return {
    add (entry) {
      const names = finiteValues(entry.matchers, 'alertname')
      if (names === undefined) { generic.push(entry); return }
      for (const name of names) { // an empty set (can never match) files the entry nowhere
        const bucket = byAlertname.get(name)
        if (bucket === undefined) byAlertname.set(name, [entry])
        else bucket.push(entry)
      }
    },
    first (alertname, test) {
      const bucket = byAlertname.get(alertname) ?? NONE
      let i = 0
      let j = 0
      while (i < bucket.length || j < generic.length) {
        const a = bucket[i]
        const b = generic[j]
        let next: E
        if (a !== undefined && (b === undefined || a.index < b.index)) { next = a; i++ } else { next = b as E; j++ }
        if (test(next)) return next
      }
      return undefined
    },
    generic: () => generic,
    alertnames: (entry) => finiteValues(entry.matchers, 'alertname')
  }
}
