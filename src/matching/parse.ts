import type { FieldIssue } from '../errors/index.ts'
import { parseCidr } from './cidr.ts'
import { InvalidPatternError } from './errors.ts'
import type { Field, Matcher, NegatableMatcher, NumericBound, PatternNode, Scalar } from './types.ts'
import { parseWildcard } from './wildcard.ts'

/**
 * EventBridge event-pattern syntax → PatternNode. Validation goes on past the first problem so
 * one error lists every bad part, each by its JSON path.
 */

const PLAIN_KEY = /^[A-Za-z0-9_$@:-]+$/

/** `data.severity`, `$or[1].source`, `data["a.b"]`: a path that reads back unambiguously. */
export const joinPath = (path: string, key: string): string => {
  if (PLAIN_KEY.test(key)) return path === '' ? key : `${path}.${key}`
  return `${path}[${JSON.stringify(key)}]`
}

const at = (path: string): string => (path === '' ? '(root)' : path)

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const OPERATORS = [
  'prefix',
  'suffix',
  'equals-ignore-case',
  'wildcard',
  'anything-but',
  'numeric',
  'exists',
  'cidr',
]
const NEGATABLE = ['prefix', 'suffix', 'wildcard', 'equals-ignore-case']

const describe = (value: unknown): string =>
  value === null
    ? 'null'
    : Array.isArray(value)
      ? 'an array'
      : typeof value === 'object'
        ? 'an object'
        : typeof value

export const EMPTY_NODE: PatternNode = Object.freeze({ fields: Object.freeze([]), anyOf: Object.freeze([]) })

class Parser {
  readonly issues: FieldIssue[] = []

  issue(path: string, message: string): void {
    this.issues.push({ path: at(path), message })
  }

  object(value: unknown, path: string, isRoot: boolean): PatternNode {
    if (!isPlainObject(value)) {
      this.issue(path, `must be a JSON object, not ${describe(value)}`)
      return EMPTY_NODE
    }
    const keys = Object.keys(value)
    // An empty pattern is a selector with no content restriction; an empty nested object
    // restricts nothing either and is almost certainly a mistake.
    if (keys.length === 0 && !isRoot) this.issue(path, 'must name at least one field')
    const fields: Field[] = []
    const anyOf: PatternNode[][] = []
    for (const key of keys) {
      const child = value[key]
      const childPath = joinPath(path, key)
      if (key === '$or') anyOf.push(this.or(child, childPath))
      else if (Array.isArray(child)) fields.push({ kind: 'leaf', key, matchers: this.leaf(child, childPath) })
      else if (isPlainObject(child))
        fields.push({ kind: 'object', key, node: this.object(child, childPath, false) })
      else this.issue(childPath, `must be an array of values or a nested object, not ${describe(child)}`)
    }
    return { fields, anyOf }
  }

  or(value: unknown, path: string): PatternNode[] {
    if (!Array.isArray(value) || value.length < 2) {
      this.issue(path, 'must be an array of at least two pattern objects')
      return []
    }
    return value.map((branch, i) => this.object(branch, `${path}[${i}]`, false))
  }

  leaf(values: readonly unknown[], path: string): Matcher[] {
    if (values.length === 0) this.issue(path, 'must list at least one value or operator')
    const matchers: Matcher[] = []
    values.forEach((value, i) => {
      const matcher = this.alternative(value, `${path}[${i}]`)
      if (matcher !== undefined) matchers.push(matcher)
    })
    return matchers
  }

  scalar(value: unknown, path: string): Scalar | undefined {
    if (typeof value === 'string' || typeof value === 'boolean' || value === null) return value
    if (typeof value === 'number') {
      if (Number.isFinite(value)) return value
      this.issue(path, 'must be a finite number')
      return undefined
    }
    this.issue(path, `must be a string, number, boolean, null or operator object, not ${describe(value)}`)
    return undefined
  }

  alternative(value: unknown, path: string): Matcher | undefined {
    if (Array.isArray(value)) {
      this.issue(path, 'nested arrays are not allowed')
      return undefined
    }
    if (!isPlainObject(value)) {
      const scalar = this.scalar(value, path)
      return scalar === undefined ? undefined : { kind: 'exact', value: scalar }
    }
    const keys = Object.keys(value)
    if (keys.length !== 1) {
      this.issue(path, `an operator object must have exactly one key, one of ${OPERATORS.join(', ')}`)
      return undefined
    }
    const operator = keys[0] as string
    const operand = value[operator]
    const operandPath = joinPath(path, operator)
    switch (operator) {
      case 'prefix':
      case 'suffix':
        return this.affix(operator, operand, operandPath)
      case 'equals-ignore-case':
        return this.text(operand, operandPath, (text) => ({ kind: 'equals-ignore-case', value: text }))
      case 'wildcard':
        return this.wildcard(operand, operandPath)
      case 'anything-but':
        return this.anythingBut(operand, operandPath)
      case 'numeric':
        return this.numeric(operand, operandPath)
      case 'exists':
        if (typeof operand === 'boolean') return { kind: 'exists', value: operand }
        this.issue(operandPath, 'must be true or false')
        return undefined
      case 'cidr': {
        if (typeof operand !== 'string') {
          this.issue(operandPath, 'must be a string such as 10.0.0.0/24')
          return undefined
        }
        const parsed = parseCidr(operand)
        if (parsed.ok) return { kind: 'cidr', value: operand }
        this.issue(operandPath, parsed.message)
        return undefined
      }
      default:
        this.issue(operandPath, `unknown operator; expected one of ${OPERATORS.join(', ')}`)
        return undefined
    }
  }

  text<M>(operand: unknown, path: string, make: (text: string) => M): M | undefined {
    if (typeof operand === 'string') return make(operand)
    this.issue(path, 'must be a string')
    return undefined
  }

  affix(operator: 'prefix' | 'suffix', operand: unknown, path: string): Matcher | undefined {
    if (typeof operand === 'string') return { kind: operator, value: operand, ignoreCase: false }
    if (isPlainObject(operand)) {
      const keys = Object.keys(operand)
      const inner = operand['equals-ignore-case']
      if (keys.length === 1 && keys[0] === 'equals-ignore-case' && typeof inner === 'string')
        return { kind: operator, value: inner, ignoreCase: true }
    }
    this.issue(path, 'must be a string or {"equals-ignore-case": string}')
    return undefined
  }

  wildcard(operand: unknown, path: string): NegatableMatcher | undefined {
    if (typeof operand !== 'string') {
      this.issue(path, 'must be a string')
      return undefined
    }
    const parsed = parseWildcard(operand)
    if (parsed.ok) return { kind: 'wildcard', value: operand }
    this.issue(path, parsed.message)
    return undefined
  }

  anythingBut(operand: unknown, path: string): Matcher | undefined {
    if (typeof operand === 'string' || typeof operand === 'number') {
      const scalar = this.scalar(operand, path)
      return scalar === undefined
        ? undefined
        : { kind: 'anything-but', not: [{ kind: 'exact', value: scalar }] }
    }
    if (Array.isArray(operand)) {
      if (operand.length === 0) {
        this.issue(path, 'must list at least one value')
        return undefined
      }
      const strings = operand.every((v) => typeof v === 'string')
      const numbers = operand.every((v) => typeof v === 'number')
      if (!strings && !numbers) {
        this.issue(path, 'must list only strings or only numbers')
        return undefined
      }
      const not: NegatableMatcher[] = []
      operand.forEach((v, i) => {
        const scalar = this.scalar(v, `${path}[${i}]`)
        if (scalar !== undefined) not.push({ kind: 'exact', value: scalar })
      })
      return { kind: 'anything-but', not }
    }
    if (isPlainObject(operand)) {
      const keys = Object.keys(operand)
      const operator = keys[0] as string
      if (keys.length !== 1 || !NEGATABLE.includes(operator)) {
        this.issue(path, `an anything-but object must have exactly one key, one of ${NEGATABLE.join(', ')}`)
        return undefined
      }
      const innerPath = joinPath(path, operator)
      const inner = operand[operator]
      const texts = typeof inner === 'string' ? [inner] : inner
      if (!Array.isArray(texts) || texts.length === 0 || !texts.every((t) => typeof t === 'string')) {
        this.issue(innerPath, 'must be a string or a non-empty list of strings')
        return undefined
      }
      const not: NegatableMatcher[] = []
      texts.forEach((text: string, i) => {
        const textPath = typeof inner === 'string' ? innerPath : `${innerPath}[${i}]`
        if (operator === 'wildcard') {
          const w = this.wildcard(text, textPath)
          if (w !== undefined) not.push(w)
        } else if (operator === 'equals-ignore-case') not.push({ kind: 'equals-ignore-case', value: text })
        else not.push({ kind: operator as 'prefix' | 'suffix', value: text, ignoreCase: false })
      })
      return { kind: 'anything-but', not }
    }
    this.issue(
      path,
      'must be a string, a number, a list of strings or of numbers, or an object with prefix, suffix, wildcard or equals-ignore-case',
    )
    return undefined
  }

  numeric(operand: unknown, path: string): Matcher | undefined {
    if (!Array.isArray(operand) || operand.length === 0 || operand.length % 2 !== 0) {
      this.issue(path, 'must be a list of comparisons such as [">", 0, "<=", 5] or ["=", 3]')
      return undefined
    }
    let lower: NumericBound | undefined
    let upper: NumericBound | undefined
    let ok = true
    for (let i = 0; i < operand.length; i += 2) {
      const op = operand[i]
      const value = operand[i + 1]
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        this.issue(`${path}[${i + 1}]`, 'must be a finite number')
        ok = false
        continue
      }
      if (op === '=') {
        if (operand.length !== 2) {
          // Not taken as bounds: the comparisons beside it are wrong only for being there,
          // which this says, not for being a second bound (`["=", 3, "<", 5]`).
          this.issue(`${path}[${i}]`, '"=" cannot be combined with other comparisons')
          ok = false
          continue
        }
        // One shared bound, so the lower < upper check below lets equality through.
        lower = { value, inclusive: true }
        upper = lower
      } else if (op === '>' || op === '>=') {
        if (lower !== undefined) {
          this.issue(`${path}[${i}]`, 'only one lower bound (> or >=) is allowed')
          ok = false
        }
        lower = { value, inclusive: op === '>=' }
      } else if (op === '<' || op === '<=') {
        if (upper !== undefined) {
          this.issue(`${path}[${i}]`, 'only one upper bound (< or <=) is allowed')
          ok = false
        }
        upper = { value, inclusive: op === '<=' }
      } else {
        this.issue(`${path}[${i}]`, 'must be one of "=", "<", "<=", ">", ">="')
        ok = false
      }
    }
    if (!ok) return undefined
    if (lower !== undefined && upper !== undefined && lower !== upper && !(lower.value < upper.value)) {
      this.issue(path, 'the lower bound must be less than the upper bound')
      return undefined
    }
    return {
      kind: 'numeric',
      ...(lower === undefined ? {} : { lower }),
      ...(upper === undefined ? {} : { upper }),
    }
  }
}

/**
 * How many levels of objects and arrays a pattern may nest, the pattern itself being the
 * first. Parsing, evaluating, explaining and indexing a pattern (`$or` expansion included)
 * recurse once per level, so without a bound the stack decides, differently from call to call,
 * which deep patterns work. Ingest has no explicit bound of its own: an event is stored while
 * `JSON.stringify` can write it, some 4,000 levels on Node 24's default stack, and no bound
 * that high is safe for the recursive passes here. A thousand levels is far beyond any real
 * event's shape and leaves those passes at least half their stack.
 */
export const MAX_PATTERN_DEPTH = 1_000

/**
 * Whether `value` nests more than `max` levels of objects and arrays. Iterative, so that a
 * pattern too deep for the recursive parser is refused before it runs.
 */
const nestsDeeperThan = (value: unknown, max: number): boolean => {
  const pending: unknown[] = [value]
  const depths: number[] = [1]
  while (pending.length > 0) {
    const next = pending.pop()
    const depth = depths.pop() as number
    if (typeof next !== 'object' || next === null) continue
    if (depth > max) return true
    for (const child of Array.isArray(next) ? next : Object.values(next))
      if (typeof child === 'object' && child !== null) {
        pending.push(child)
        depths.push(depth + 1)
      }
  }
  return false
}

/**
 * Refuses a pattern nested more than `MAX_PATTERN_DEPTH` levels with an `InvalidPatternError`
 * at `path`, the same way every time.
 */
export const checkPatternDepth = (pattern: unknown, path = ''): void => {
  if (nestsDeeperThan(pattern, MAX_PATTERN_DEPTH))
    throw new InvalidPatternError([
      {
        path: at(path),
        message: `is nested more than ${MAX_PATTERN_DEPTH} levels deep (objects and arrays); at most ${MAX_PATTERN_DEPTH} are allowed`,
      },
    ])
}

/**
 * The most leaf conditions a pattern written through the configuration API may have: fields
 * with a list of values, at any depth, every `$or` branch's counted. Real patterns have a
 * handful; the bound keeps one selector from costing the router's index (built again whenever
 * selectors change) and every event it meets as much as thousands of selectors would.
 * `compilePattern` does not apply it, so patterns stored before it keep compiling.
 */
export const MAX_PATTERN_CONDITIONS = 1_000

/**
 * The most values a pattern written through the configuration API may list across all its
 * conditions, each alternative of a list one (an `anything-but` one per value it excludes):
 * room for a long allow-list of exact values, which cost one set lookup however many there
 * are, while bounding the case-insensitive, wildcard, numeric and CIDR ones, each tested on
 * its own.
 */
export const MAX_PATTERN_VALUES = 10_000

/**
 * Refuses a pattern with more than `MAX_PATTERN_CONDITIONS` conditions or `MAX_PATTERN_VALUES`
 * values with an `InvalidPatternError` at `path` naming the limit.
 *
 * @example
 * checkPatternSize(compilePattern(body.pattern, { path: 'pattern' }).root, 'pattern')
 * // throws 'pattern: has 1500 conditions (fields with a list of values, $or branches included); at most 1000 are allowed'
 */
export const checkPatternSize = (root: PatternNode, path = ''): void => {
  let conditions = 0
  let values = 0
  const pending: PatternNode[] = [root]
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    for (const field of node.fields) {
      if (field.kind === 'object') {
        pending.push(field.node)
        continue
      }
      conditions++
      for (const m of field.matchers) values += m.kind === 'anything-but' ? m.not.length : 1
    }
    for (const branches of node.anyOf) pending.push(...branches)
  }
  const issues: FieldIssue[] = []
  if (conditions > MAX_PATTERN_CONDITIONS)
    issues.push({
      path: at(path),
      message: `has ${conditions} conditions (fields with a list of values, $or branches included); at most ${MAX_PATTERN_CONDITIONS} are allowed`,
    })
  if (values > MAX_PATTERN_VALUES)
    issues.push({
      path: at(path),
      message: `has ${values} values in the lists of its conditions; at most ${MAX_PATTERN_VALUES} are allowed`,
    })
  if (issues.length > 0) throw new InvalidPatternError(issues)
}

/**
 * Throws `InvalidPatternError` listing every problem, or one naming the nesting limit for a
 * pattern deeper than `MAX_PATTERN_DEPTH`.
 *
 * @example
 * parsePattern({ data: { severity: ['Critical', { prefix: 'High' }] } })
 * // { fields: [{ kind: 'object', key: 'data', node: { fields: [{ kind: 'leaf', … }] } }], anyOf: [] }
 */
export const parsePattern = (pattern: unknown, path = ''): PatternNode => {
  checkPatternDepth(pattern, path)
  const parser = new Parser()
  const root = parser.object(pattern, path, true)
  if (parser.issues.length > 0) throw new InvalidPatternError(parser.issues)
  return root
}
