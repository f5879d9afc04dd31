import { Type, type Static } from '@sinclair/typebox'

// One finding of `alert-enricher check`, positioned like a compiler error so editors and CI
// annotations can jump to it. line and col are 1-based.

export const Problem = Type.Object({
  file: Type.String(),
  line: Type.Integer({ minimum: 1 }),
  col: Type.Integer({ minimum: 1 }),
  message: Type.String()
}, { additionalProperties: false })
export type Problem = Static<typeof Problem>

export function formatProblem (p: Problem): string {
  return `${p.file}:${p.line}:${p.col} ${p.message}`
}

/** Orders one file's problems by position; stable for problems at the same spot. */
export function sortByPosition (problems: readonly Problem[]): Problem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.col - b.col)
}
