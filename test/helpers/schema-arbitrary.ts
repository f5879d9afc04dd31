import fc from 'fast-check'

// Values shaped by a JSON Schema (the subset the OpenAPI document uses: type, properties,
// required, patternProperties, items/minItems, const, anyOf, pattern). Optional properties come
// and go; about one value in eight at each level is replaced by arbitrary JSON, so most cases get
// past the top of the validator and fail (or pass) deeper inside.

interface Schema {
  type?: string | string[]
  properties?: Record<string, Schema>
  required?: string[]
  patternProperties?: Record<string, Schema>
  items?: Schema
  minItems?: number
  const?: unknown
  anyOf?: Schema[]
  pattern?: string
  minLength?: number
  maxLength?: number
  minimum?: number
}

const anyJson = fc.jsonValue({ maxDepth: 2 })
const RFC3339 = fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString())

export function arbitraryFromSchema (schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  const exact = shaped(schema, depth)
  return depth > 4 ? exact : fc.oneof({ arbitrary: exact, weight: 7 }, { arbitrary: anyJson, weight: 1 })
}

function shaped (s: Schema, depth: number): fc.Arbitrary<unknown> {
  if (s.const !== undefined) return fc.constant(s.const)
  if (s.anyOf !== undefined) return fc.oneof(...s.anyOf.map((b) => arbitraryFromSchema(b, depth + 1)))
  const type = Array.isArray(s.type) ? s.type[0] : s.type
  switch (type) {
    case 'object': {
      if (s.patternProperties !== undefined) {
        const value = Object.values(s.patternProperties)[0] ?? {}
        return fc.dictionary(fc.string({ maxLength: 12 }), arbitraryFromSchema(value, depth + 1), { maxKeys: 4 })
      }
      const props = s.properties ?? {}
      const required = new Set(s.required ?? [])
      const entries = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, arbitraryFromSchema(v, depth + 1)]))
      return fc.record(entries, { requiredKeys: Object.keys(props).filter((k) => required.has(k)) })
    }
    case 'array':
      return fc.array(arbitraryFromSchema(s.items ?? {}, depth + 1), { minLength: s.minItems ?? 0, maxLength: 3 })
    case 'string':
      if (s.pattern !== undefined && s.pattern.includes('\\d{4}-')) return fc.oneof(RFC3339, fc.string())
      return fc.string({ minLength: s.minLength ?? 0, maxLength: s.maxLength ?? 24, unit: 'grapheme' })
    case 'integer':
      return fc.integer({ min: s.minimum ?? -1000, max: 1_000_000 })
    case 'number':
      return fc.double()
    case 'boolean':
      return fc.boolean()
    case 'null':
      return fc.constant(null)
    default:
      return anyJson
  }
}
