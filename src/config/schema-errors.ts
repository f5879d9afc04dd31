import type { TSchema } from '@sinclair/typebox'
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value'
import { SLACK_CHANNEL_ID_PATTERN } from './catalog-schema.js'
import type { YamlPath } from './yaml-source.js'

// TypeBox validation errors → one readable finding per offending field. Unions are explained
// by their most plausible branch (an object's `type` discriminator, or the branch with the
// fewest errors) rather than TypeBox's bare "Expected union value".

export interface SchemaIssue { path: YamlPath, message: string, atKey: boolean }

// Patterns of catalog-schema.ts, in words.
const PATTERN_WORDS: Record<string, string> = {
  '^[a-z0-9][a-z0-9-]*$': "an id (lower-case letters, digits and '-')",
  '^([01]\\d|2[0-3]):[0-5]\\d$': 'a time HH:MM between 00:00 and 23:59',
  '^\\d{4}-\\d{2}-\\d{2}$': 'a date YYYY-MM-DD',
  '^[A-Z_][A-Z0-9_]*$': 'an environment variable name (A-Z, 0-9, _)',
  '^P(?!$)(\\d+D)?(T(?=\\d)(\\d+H)?(\\d+M)?(\\d+S)?)?$': 'an ISO 8601 duration such as PT5M, PT2H or P1D'
}

export function schemaIssues (schema: TSchema, value: unknown, base: YamlPath = []): SchemaIssue[] {
  const issues: SchemaIssue[] = []
  for (const e of Value.Errors(schema, value)) {
    const path = [...base, ...pointerPath(e.path)]
    if (e.type === ValueErrorType.Union) issues.push(...unionIssues(e.schema, e.value, path))
    else issues.push({ path, message: describe(e), atKey: e.type === ValueErrorType.ObjectAdditionalProperties })
  }
  // A missing property also fails its type check; say only that it is missing.
  const missing = new Set(issues.filter((i) => i.message === 'required property missing').map((i) => key(i.path)))
  const seen = new Set<string>()
  return issues.filter((i) => {
    const k = `${key(i.path)} ${i.message}`
    if (seen.has(k) || (missing.has(key(i.path)) && i.message !== 'required property missing')) return false
    seen.add(k)
    return true
  })
}

function unionIssues (schema: TSchema, value: unknown, path: YamlPath): SchemaIssue[] {
  const variants: TSchema[] = Array.isArray(schema.anyOf) ? schema.anyOf : []
  const consts = variants.map((v) => v.const as unknown)
  if (variants.length > 0 && consts.every((c) => c !== undefined)) {
    return [{ path, message: `expected one of ${consts.map(String).join(', ')}${got(value)}`, atKey: false }]
  }
  if (variants.every((v) => v.type === 'object') && !isRecord(value)) {
    return [{ path, message: `expected an object${got(value)}`, atKey: false }]
  }
  const discriminator = isRecord(value) ? discriminatorOf(variants) : undefined
  if (discriminator !== undefined && isRecord(value)) {
    // Several forms may share a discriminator value (Slack: webhook or bot token): the one
    // that fits best explains.
    const chosen = variants.filter((v) => v.properties[discriminator].const === value[discriminator])
    if (chosen.length > 0) return fewest(chosen.map((v) => schemaIssues(v, value, path)))
    const options = [...new Set(variants.map((v) => String(v.properties[discriminator].const)))].join(', ')
    return value[discriminator] === undefined
      ? [{ path: [...path, discriminator], message: `required property missing (one of ${options})`, atKey: false }]
      : [{ path: [...path, discriminator], message: `expected one of ${options}${got(value[discriminator])}`, atKey: false }]
  }
  return fewest(variants.map((v) => schemaIssues(v, value, path)))
}

function fewest (explained: SchemaIssue[][]): SchemaIssue[] {
  return explained.reduce((best, next) => next.length < best.length ? next : best, explained[0] ?? [])
}

function discriminatorOf (variants: TSchema[]): string | undefined {
  const first = variants[0]?.properties as Record<string, TSchema> | undefined
  if (first === undefined) return undefined
  return Object.keys(first).find((k) => variants.every((v) => v.properties?.[k]?.const !== undefined))
}

function describe (e: ValueError): string {
  const s = e.schema
  switch (e.type) {
    case ValueErrorType.ObjectRequiredProperty: return 'required property missing'
    case ValueErrorType.ObjectAdditionalProperties: return 'unknown property'
    case ValueErrorType.String: return `expected a string${got(e.value)}`
    case ValueErrorType.Number: case ValueErrorType.Integer: return `expected a number${got(e.value)}`
    case ValueErrorType.Boolean: return `expected true or false${got(e.value)}`
    case ValueErrorType.Array: return `expected a list${got(e.value)}`
    case ValueErrorType.Object: return `expected a mapping${got(e.value)}`
    case ValueErrorType.Literal: return `expected ${String(s.const)}${got(e.value)}`
    case ValueErrorType.StringPattern: {
      if (s.pattern === SLACK_CHANNEL_ID_PATTERN && typeof e.value === 'string') {
        return `expected a Slack channel id such as C0123ABCD, got ${JSON.stringify(e.value)}${/^#|^[a-z0-9._-]+$/.test(e.value) ? ', which is a channel name' : ''}` +
          ' (the id is at the bottom of the channel\'s details in Slack; chat.update needs it, not the name)'
      }
      const words = PATTERN_WORDS[String(s.pattern)]
      return `expected ${words ?? `a string matching /${String(s.pattern)}/`}${got(e.value)}`
    }
    case ValueErrorType.StringMinLength: return s.minLength === 1 ? 'must not be empty' : `expected at least ${String(s.minLength)} characters`
    case ValueErrorType.StringMaxLength: return `expected at most ${String(s.maxLength)} characters`
    case ValueErrorType.ArrayMinItems: return `expected at least ${String(s.minItems)} item${s.minItems === 1 ? '' : 's'}`
    case ValueErrorType.ArrayUniqueItems: return 'items must be unique'
    default: return e.message.charAt(0).toLowerCase() + e.message.slice(1)
  }
}

function got (value: unknown): string {
  if (value === undefined) return ''
  const text = JSON.stringify(value) ?? String(value)
  return ` (got ${text.length > 40 ? `${text.slice(0, 37)}...` : text})`
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

// JSON pointer (`/entries/3/priority`) → path segments; array indices become numbers.
function pointerPath (pointer: string): Array<string | number> {
  if (pointer === '') return []
  return pointer.slice(1).split('/').map((seg) => {
    const s = seg.replace(/~1/g, '/').replace(/~0/g, '~')
    return /^(0|[1-9]\d*)$/.test(s) ? Number(s) : s
  })
}

function key (path: YamlPath): string {
  return JSON.stringify(path)
}
