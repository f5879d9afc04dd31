import { TypeCompiler } from '@sinclair/typebox/compiler'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import { hasNul, NUL_FREE, NUL_PROBLEM } from '../text.js'
import { WebhookPayload } from './webhook.js'

// One compiled validator for the webhook route, the preview route and the CLI, so they
// accept and refuse exactly the same bodies.
const compiled = TypeCompiler.Compile(WebhookPayload)

export type WebhookValidation = { ok: true, payload: WebhookPayload } | { ok: false, message: string }

const MAX_REPORTED = 5

export function validateWebhook (body: unknown): WebhookValidation {
  if (compiled.Check(body)) return { ok: true, payload: body }
  const seen = new Set<string>()
  const parts: string[] = []
  for (const error of compiled.Errors(body)) {
    const path = fieldPath(error)
    if (seen.has(path)) continue // a union reports every branch; the first says enough
    seen.add(path)
    parts.push(`${path}: ${describe(error)}`)
    if (parts.length === MAX_REPORTED) break
  }
  return { ok: false, message: parts.join('; ') }
}

// JSON pointer /alerts/0/labels/severity → alerts[0].labels.severity (how users read it).
function fieldPath (error: ValueError): string {
  if (error.path === '') return 'body'
  return error.path.slice(1).split('/').map((seg, i) => {
    const key = seg.replace(/~1/g, '/').replace(/~0/g, '~')
    if (/^\d+$/.test(key)) return `[${key}]`
    return /^[A-Za-z_$][\w$]*$/.test(key) ? (i === 0 ? key : `.${key}`) : `[${JSON.stringify(key)}]`
  }).join('')
}

function describe (error: ValueError): string {
  const schema = error.schema as { minItems?: number, pattern?: string, const?: unknown, anyOf?: Array<{ const?: unknown }> }
  if (error.value === undefined) return 'is required'
  if (schema.minItems === 1 && Array.isArray(error.value)) return 'must not be empty'
  if (schema.anyOf !== undefined && schema.anyOf.every((s) => s.const !== undefined)) {
    return `expected one of ${schema.anyOf.map((s) => JSON.stringify(s.const)).join(', ')}, got ${JSON.stringify(error.value)}`
  }
  if (schema.const !== undefined) return `expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(error.value)}`
  if (error.type === ValueErrorType.StringPattern && schema.pattern === NUL_FREE) return NUL_PROBLEM
  if (error.type === ValueErrorType.StringPattern && typeof error.value === 'string') return `${JSON.stringify(error.value.slice(0, 64))} is not an RFC 3339 timestamp`
  // A label name with a NUL matches no key pattern of the label set.
  if (error.type === ValueErrorType.ObjectAdditionalProperties && hasNul(error.path)) return `the name ${NUL_PROBLEM}`
  return error.message.toLowerCase()
}
