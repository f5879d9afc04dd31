import { watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Logger } from 'pino'
import type { Metrics } from '../metrics.js'
import { sha256Hex } from '../sha256.js'
import { catalogReadProblem, parseCatalog, type Catalog, type CatalogResult } from './catalog.js'
import { formatProblem, type Problem } from './problems.js'

// Holds the live catalog and swaps it atomically on reload: a request reads `current()` once
// and works with that object, so it sees one catalog, never a mix. A broken catalog is
// refused, the old one keeps serving, and the last-reload gauge says so (Alertmanager style).

export type ReloadResult = { ok: true, changed: boolean, entries: number } | { ok: false, problems: Problem[] }

export interface WatchOptions {
  /** Quiet time after the last event before the file is read (a ConfigMap swap is several events). */
  debounceMs?: number
  /** After each check: the reload's result, or undefined when the content had not changed. */
  onChecked?: (result: ReloadResult | undefined) => void
}

export interface CatalogHolder {
  current: () => Catalog
  /** Explicit reload (POST /-/reload, SIGHUP): always re-read, always counted. */
  reload: () => Promise<ReloadResult>
  /** The watcher's reload: undefined, and nothing counted or logged, if the content is what was last read. */
  reloadIfChanged: () => Promise<ReloadResult | undefined>
  /**
   * Re-read on changes in the catalog's directory. The directory, not the file: Kubernetes
   * updates a ConfigMap by renaming a new `..data` symlink into place, so the file's inode never
   * changes and a watch on it would go quiet after the first swap.
   */
  watch: (opts?: WatchOptions) => void
  close: () => void
}

export interface CatalogHolderDeps {
  metrics: Metrics
  logger: Pick<Logger, 'info' | 'warn' | 'error'>
  now: () => Date
  /**
   * Called with the catalog about to become current, after every successful reload (also an
   * unchanged one: an explicit reload is how a rotated secret file is picked up). If it throws,
   * the reload is refused and nothing changes.
   */
  onChange?: (catalog: Catalog) => void
  readText?: (path: string) => Promise<string>
  /** How a catalog text becomes a Catalog (default parseCatalog); main adds env overrides. */
  parse?: (text: string, file: string) => CatalogResult
}

type Read = { ok: true, text: string, digest: string } | { ok: false, problem: Problem, digest: string }

export function createCatalogHolder (path: string, initial: Catalog, initialText: string, deps: CatalogHolderDeps): CatalogHolder {
  const readText = deps.readText ?? ((p: string) => readFile(p, 'utf8'))
  let catalog = initial
  let loadedDigest = sha256Hex(initialText) // the text `catalog` was parsed from
  let seenDigest = loadedDigest        // the last text read, good or bad (or the read error)
  let pending: Promise<unknown> = Promise.resolve()
  let watcher: FSWatcher | undefined
  let timer: NodeJS.Timeout | undefined

  markLoaded(deps.metrics, catalog, deps.now())

  // Reloads are serialised: a SIGHUP during a /-/reload waits for it, then reads again.
  function serial<T> (run: () => Promise<T>): Promise<T> {
    const next = pending.then(run, run)
    pending = next.catch(() => undefined)
    return next
  }

  async function read (): Promise<Read> {
    try {
      const text = await readText(path)
      return { ok: true, text, digest: sha256Hex(text) }
    } catch (err) {
      const problem = catalogReadProblem(path, err)
      return { ok: false, problem, digest: `error:${problem.message}` }
    }
  }

  function apply (r: Read): ReloadResult {
    seenDigest = r.digest
    if (!r.ok) return fail([r.problem])
    const changed = r.digest !== loadedDigest
    let next = catalog
    if (changed) {
      const parsed = (deps.parse ?? parseCatalog)(r.text, path)
      if (!parsed.ok) return fail(parsed.problems)
      next = parsed.catalog
    }
    try {
      deps.onChange?.(next)
    } catch (err) {
      return fail([{ file: path, line: 1, col: 1, message: `cannot apply catalog: ${err instanceof Error ? err.message : String(err)}` }])
    }
    catalog = next
    loadedDigest = r.digest
    deps.metrics.catalogReloads.inc({ outcome: 'success' })
    markLoaded(deps.metrics, catalog, deps.now())
    deps.logger.info({ entries: catalog.entries.length, changed }, changed ? 'catalog reloaded' : 'catalog reload: no change')
    return { ok: true, changed, entries: catalog.entries.length }
  }

  function fail (problems: Problem[]): ReloadResult {
    deps.metrics.catalogReloads.inc({ outcome: 'failure' })
    deps.metrics.catalogLastReloadSuccessful.set(0)
    deps.logger.error({ problems: problems.map(formatProblem) }, 'catalog reload refused; the previous catalog keeps serving')
    return { ok: false, problems }
  }

  const reloadIfChanged = (): Promise<ReloadResult | undefined> => serial(async () => {
    const r = await read()
    return r.digest === seenDigest ? undefined : apply(r)
  })

  return {
    current: () => catalog,
    reload: () => serial(async () => apply(await read())),
    reloadIfChanged,
    watch ({ debounceMs = 500, onChecked } = {}) {
      if (watcher !== undefined) return
      const check = (): void => {
        timer = undefined
        void reloadIfChanged().then((r) => onChecked?.(r))
      }
      // Events also fire for unrelated files and for each step of a swap; the digest check in
      // reloadIfChanged makes those no-ops. Not persistent: the watch alone keeps no process alive.
      watcher = watch(dirname(path), { persistent: false }, () => {
        clearTimeout(timer)
        timer = setTimeout(check, debounceMs)
        timer.unref()
      })
      watcher.on('error', (err) => { deps.logger.warn({ err: err.message }, 'catalog watch failed; use SIGHUP or POST /-/reload') })
    },
    close () {
      clearTimeout(timer)
      timer = undefined
      watcher?.close()
      watcher = undefined
    }
  }
}

function markLoaded (metrics: Metrics, catalog: Catalog, now: Date): void {
  metrics.catalogEntries.set(catalog.entries.length)
  metrics.catalogLastReloadSuccessful.set(1)
  metrics.catalogLastReloadSuccessTimestamp.set(now.getTime() / 1000)
}
