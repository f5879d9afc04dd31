import type { SecretRef } from './catalog-schema.js'

// Secrets are referenced, never written, in the catalog: `{ env: NAME }` reads NAME, or the
// file named by NAME_FILE (Docker/Kubernetes secrets); `{ file: path }` reads the file.
// Unset or empty → undefined: the destination is skipped, not an error.
//
// A file that is named but unreadable throws, with the variable and path in the message and
// never the content: a mounted secret that is missing is a deployment error to surface.

export function resolveSecret (
  ref: SecretRef,
  env: Record<string, string | undefined>,
  readFile: (path: string) => string
): string | undefined {
  if ('env' in ref) {
    const direct = normalize(env[ref.env])
    if (direct !== undefined) return direct
    const path = normalize(env[`${ref.env}_FILE`])
    return path === undefined ? undefined : normalize(readSecretFile(path, readFile, `${ref.env}_FILE`))
  }
  return normalize(readSecretFile(ref.file, readFile, 'file'))
}

function readSecretFile (path: string, readFile: (path: string) => string, via: string): string {
  try {
    return readFile(path)
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code
    throw new Error(`cannot read secret file ${path} (${via}): ${typeof code === 'string' ? code : 'read failed'}`)
  }
}

// Files written with `echo` end in a newline; no secret legitimately does.
function normalize (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const v = value.replace(/[\r\n]+$/, '')
  return v === '' ? undefined : v
}
