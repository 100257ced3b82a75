import { type FieldIssue, HeraldError } from '../errors/index.ts'

/**
 * A pattern (or Anchore selector) that cannot be compiled. Each issue names the JSON path of
 * the offending part, e.g. `data.severity[1].numeric`, so an API can point at it. Never
 * retriable: the same pattern fails again.
 *
 * @example
 * new InvalidPatternError([{ path: 'source[0].prefix', message: 'must be a string' }]).message
 * // 'source[0].prefix: must be a string'
 */
export class InvalidPatternError extends HeraldError {
  readonly issues: readonly FieldIssue[]

  constructor(issues: readonly FieldIssue[]) {
    super('invalid_pattern', issues.map((i) => `${i.path}: ${i.message}`).join('; '), {
      retriable: false,
      context: { issues },
    })
    this.issues = issues
  }
}

export const isInvalidPatternError = (error: unknown): error is InvalidPatternError =>
  error instanceof InvalidPatternError
