import { createHash } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Logger } from 'pino'
import type { Metrics } from '../metrics.js'
import { parseCatalog, type Catalog } from './catalog.js'
import { formatProblem, type Problem } from './problems.js'

// Holds the live catalog and swaps it atomically on reload: a request reads `current()` once
// and works with that object, so it sees one catalog, never a mix. A broken catalog is
// refused, the old one keeps serving, and the last-reload gauge says so (Alertmanager style).

export type ReloadResult = { ok: true, changed: boolean, entries: number } | { ok: false, problems: Problem[] }

export interface CatalogHolder {
  current: () => Catalog
  reload: () => Promise<ReloadResult>
  /** Re-read on changes to the catalog's directory (covers Kubernetes' ConfigMap symlink swap). */
  watch: (debounceMs?: number) => void
  close: () => void
}

export interface CatalogHolderDeps {
  metrics: Metrics
  logger: Pick<Logger, 'info' | 'warn' | 'error'>
  now: () => Date
  onChange?: (catalog: Catalog) => void
  readText?: (path: string) => Promise<string>
}

export function createCatalogHolder (path: string, initial: Catalog, initialText: string, deps: CatalogHolderDeps): CatalogHolder {
  const readText = deps.readText ?? ((p: string) => readFile(p, 'utf8'))
  let catalog = initial
  let digest = hash(initialText)
  let pending: Promise<ReloadResult> | undefined
  let watcher: FSWatcher | undefined
  let timer: NodeJS.Timeout | undefined

  markLoaded(deps.metrics, catalog, deps.now())

  async function doReload (): Promise<ReloadResult> {
    let text: string
    try {
      text = await readText(path)
    } catch (err) {
      return fail([{ file: path, line: 1, col: 1, message: `cannot read catalog: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }])
    }
    const nextDigest = hash(text)
    const parsed = parseCatalog(text, path)
    if (!parsed.ok) return fail(parsed.problems)
    const changed = nextDigest !== digest
    catalog = parsed.catalog
    digest = nextDigest
    deps.metrics.catalogReloads.inc({ outcome: 'success' })
    markLoaded(deps.metrics, catalog, deps.now())
    if (changed) deps.logger.info({ entries: catalog.entries.length }, 'catalog reloaded')
    deps.onChange?.(catalog)
    return { ok: true, changed, entries: catalog.entries.length }
  }

  function fail (problems: Problem[]): ReloadResult {
    deps.metrics.catalogReloads.inc({ outcome: 'failure' })
    deps.metrics.catalogLastReloadSuccessful.set(0)
    deps.logger.error({ problems: problems.map(formatProblem) }, 'catalog reload refused; the previous catalog keeps serving')
    return { ok: false, problems }
  }

  return {
    current: () => catalog,
    // Reloads are serialised: a SIGHUP during a /-/reload waits for it, then reads again.
    reload: () => {
      const run = (pending ?? Promise.resolve()).then(doReload, doReload)
      pending = run
      return run
    },
    watch (debounceMs = 500) {
      if (watcher !== undefined) return
      watcher = watch(dirname(path), () => {
        clearTimeout(timer)
        timer = setTimeout(() => {
          void this.reload()
        }, debounceMs)
      })
      watcher.on('error', (err) => { deps.logger.warn({ err: err.message }, 'catalog watch failed; use SIGHUP or POST /-/reload') })
    },
    close () {
      clearTimeout(timer)
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

function hash (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}
