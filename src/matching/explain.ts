import { type AnchoreSelectorInput, compileAnchoreSelector } from './compile.ts'
import { isInheritedName, isObject } from './evaluate.ts'
import { leafHolds, leafTest } from './leaf.ts'
import { joinPath } from './parse.ts'
import type { CompiledPattern, Matcher, NegatableMatcher, PatternNode } from './types.ts'

/**
 * Why a pattern did not match an event, one condition at a time: a second reading of the
 * structural pattern that mirrors the reference evaluation (evaluate.ts) rule for rule, and
 * reports the first condition that failed instead of a boolean. It is for people asking "why
 * was I (not) notified", never for routing: the compiled evaluation stays the one hot path.
 * A differential property test holds `matched` to `CompiledPattern.matches`.
 */

/** The first condition that failed, in the order the evaluation checks them. */
export interface MatchFailure {
  /** Where the condition sits in the pattern: `pattern.data.severity`, `event.type`, `pattern.$or`. */
  readonly path: string
  /** What the condition accepts: `"user.image.*"`, `one of ["critical", "high"]`, `present`. */
  readonly expected: string
  /** What the event holds there: `"low"`, `[1, 2]`, `nothing`. */
  readonly actual: string
  /** One line for people: `pattern.data.severity: none of ["critical"] matched "low"`. */
  readonly message: string
}

export type Explanation =
  | { readonly matched: true }
  | { readonly matched: false; readonly failure: MatchFailure }

export interface ExplainOptions {
  /** Where the pattern sits in a request body, prefixed to every path (`pattern`). */
  readonly path?: string
}

const MAX_SHOWN = 80
const MAX_VALUES = 5

const quote = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN - 1)}…` : text
}

const bound = (op: string, b: { value: number; inclusive: boolean }) =>
  `${op}${b.inclusive ? '=' : ''} ${b.value}`

const describeMatcher = (m: Matcher | NegatableMatcher): string => {
  switch (m.kind) {
    case 'exact':
      return quote(m.value)
    case 'prefix':
    case 'suffix':
      return `${m.kind} ${quote(m.value)}${m.ignoreCase ? ' (ignoring case)' : ''}`
    case 'equals-ignore-case':
      return `${quote(m.value)} (ignoring case)`
    case 'wildcard':
      return `wildcard ${quote(m.value)}`
    case 'anything-but':
      return `anything but ${m.not.map(describeMatcher).join(' or ')}`
    case 'numeric': {
      const { lower, upper } = m
      if (lower !== undefined && lower === upper) return `a number = ${lower.value}`
      const parts = [
        ...(lower === undefined ? [] : [bound('>', lower)]),
        ...(upper === undefined ? [] : [bound('<', upper)]),
      ]
      return `a number ${parts.join(' and ')}`
    }
    case 'exists':
      return m.value ? 'present' : 'absent'
    case 'cidr':
      return `an address in ${m.value}`
  }
}

const describeExpected = (matchers: readonly Matcher[]): string => {
  if (matchers.length === 1) return describeMatcher(matchers[0] as Matcher)
  if (matchers.every((m) => m.kind === 'exact')) return `one of [${matchers.map(describeMatcher).join(', ')}]`
  return matchers.map(describeMatcher).join(' or ')
}

/** Every scalar of an array, nested arrays flattened, objects skipped: what a leaf condition sees. */
const scalarsOf = (values: readonly unknown[], out: unknown[] = []): unknown[] => {
  for (const v of values) {
    if (Array.isArray(v)) scalarsOf(v, out)
    else if (typeof v !== 'object' || v === null) out.push(v)
  }
  return out
}

/** Every object of an array, nested arrays flattened: what a nested pattern is tried against. */
const objectsOf = (values: readonly unknown[], out: Record<string, unknown>[] = []) => {
  for (const v of values) {
    if (Array.isArray(v)) objectsOf(v, out)
    else if (isObject(v)) out.push(v)
  }
  return out
}

/** The leaf values a condition sees at a field: none for a missing field, an object or an empty array. */
const leafValues = (value: unknown): unknown[] => {
  if (value === undefined) return []
  if (Array.isArray(value)) return scalarsOf(value)
  return isObject(value) ? [] : [value]
}

const describeActual = (value: unknown, values: readonly unknown[]): string => {
  if (value === undefined) return 'nothing'
  if (isObject(value)) return 'an object'
  if (Array.isArray(value)) {
    if (values.length === 0) return value.length === 0 ? 'an empty array' : 'an array without values'
    const shown = values.slice(0, MAX_VALUES).map(quote)
    return `[${shown.join(', ')}${values.length > MAX_VALUES ? ', …' : ''}]`
  }
  return quote(value)
}

const read = (o: Record<string, unknown> | undefined, key: string): unknown =>
  o === undefined || (isInheritedName(key) && !Object.hasOwn(o, key)) ? undefined : o[key]

/**
 * A failed condition, described on demand: only the one reported is ever described, though
 * every element of an array may fail (and describing lists every alternative).
 */
type Failure = () => MatchFailure

const leafFailure = (matchers: readonly Matcher[], value: unknown, path: string): Failure | undefined => {
  const values = leafValues(value)
  if (leafHolds(leafTest(matchers), values, values.length)) return undefined
  return () => {
    const expected = describeExpected(matchers)
    const actual = describeActual(value, values)
    const message =
      values.length > 0 && matchers.every((m) => m.kind === 'exact')
        ? `${path}: none of [${matchers.map(describeMatcher).join(', ')}] matched ${actual}`
        : `${path}: expected ${expected}, got ${actual}`
    return { path, expected, actual, message }
  }
}

const objectFailure = (node: PatternNode, value: unknown, path: string): Failure | undefined => {
  if (isObject(value)) return nodeFailure(node, value, path)
  if (!Array.isArray(value)) return nodeFailure(node, undefined, path)
  const elements = objectsOf(value)
  if (elements.length === 0) return nodeFailure(node, undefined, path)
  // The conditions must all hold within one element; the first element's failure stands for all.
  let first: Failure | undefined
  for (const element of elements) {
    const failure = nodeFailure(node, element, path)
    if (failure === undefined) return undefined
    first ??= failure
  }
  const firstFailure = first as Failure
  if (elements.length === 1) return firstFailure
  return () => {
    const failure = firstFailure()
    return {
      ...failure,
      message: `${path}: no element of the array matched; in the first, ${failure.message} (and ${elements.length - 1} more failed)`,
    }
  }
}

const nodeFailure = (
  node: PatternNode,
  o: Record<string, unknown> | undefined,
  path: string,
): Failure | undefined => {
  for (const field of node.fields) {
    const at = joinPath(path, field.key)
    const value = read(o, field.key)
    const failure =
      field.kind === 'leaf' ? leafFailure(field.matchers, value, at) : objectFailure(field.node, value, at)
    if (failure !== undefined) return failure
  }
  for (const branches of node.anyOf) {
    const at = joinPath(path, '$or')
    const failures: Failure[] = []
    for (const [i, branch] of branches.entries()) {
      const failure = nodeFailure(branch, o, `${at}[${i}]`)
      if (failure === undefined) break
      failures.push(failure)
    }
    if (failures.length === branches.length)
      return () => ({
        path: at,
        expected: `one of ${branches.length} branches`,
        actual: 'none of them',
        message: `${at}: no branch matched: ${failures.map((f) => f().message).join('; ')}`,
      })
  }
  return undefined
}

const rootOf = (pattern: CompiledPattern | PatternNode): PatternNode =>
  'root' in pattern ? pattern.root : pattern

/**
 * Whether `pattern` matches `event` and, when not, the first condition that failed.
 *
 * @example
 * explainPattern(compilePattern({ data: { severity: ['critical'] } }), { data: { severity: 'low' } }, { path: 'pattern' })
 * // { matched: false, failure: { path: 'pattern.data.severity', expected: '"critical"', actual: '"low"',
 * //   message: 'pattern.data.severity: none of ["critical"] matched "low"' } }
 */
export const explainPattern = (
  pattern: CompiledPattern | PatternNode,
  event: unknown,
  options: ExplainOptions = {},
): Explanation => {
  const failure = nodeFailure(rootOf(pattern), isObject(event) ? event : undefined, options.path ?? '')
  return failure === undefined ? { matched: true } : { matched: false, failure: failure() }
}

/** The fields an Anchore selector compiles to, by the name a user wrote them under. */
const SELECTOR_FIELDS: Readonly<
  Record<string, (s: AnchoreSelectorInput) => { path: string; expected: string }>
> = {
  account: (s) => ({ path: 'account', expected: `${quote(s.account)} (account scope)` }),
  type: (s) => ({ path: 'event.type', expected: quote(s.event.type) }),
  level: (s) => ({ path: 'event.level', expected: quote(s.event.level) }),
  resourcetype: (s) => ({ path: 'event.resource_type', expected: quote(s.event.resource_type) }),
}

export interface ExplainSelectorOptions {
  /** Prefix of the content pattern's paths (default `pattern`, its name in a selector body). */
  readonly contentPath?: string
}

/**
 * Like `explainPattern` for an Anchore selector and its optional content pattern, the pair
 * `compileAnchoreSelector(selector, content)` compiles. The selector's own conditions are
 * reported as the user wrote them (`event.type: expected "user.image.*", got "system.feeds.sync.failed"`),
 * the content pattern's by their paths under `pattern`. Throws `InvalidPatternError` for an
 * invalid selector, as compiling it does.
 *
 * @example
 * explainSelector({ scope: 'account', account: 'acme', event: { level: '*', type: 'user.image.*', resource_type: '*' } },
 *   undefined, { account: 'acme', type: 'system.feeds.sync.failed' })
 * // { matched: false, failure: { path: 'event.type', message: 'event.type: expected "user.image.*", got "system.feeds.sync.failed"', … } }
 */
export const explainSelector = (
  selector: AnchoreSelectorInput,
  content: CompiledPattern | PatternNode | undefined,
  event: unknown,
  options: ExplainSelectorOptions = {},
): Explanation => {
  const own = explainPattern(compileAnchoreSelector(selector), event)
  if (!own.matched) {
    const { failure } = own
    const named = SELECTOR_FIELDS[failure.path]?.(selector) ?? failure
    return {
      matched: false,
      failure: {
        path: named.path,
        expected: named.expected,
        actual: failure.actual,
        message: `${named.path}: expected ${named.expected}, got ${failure.actual}`,
      },
    }
  }
  return content === undefined
    ? own
    : explainPattern(content, event, { path: options.contentPath ?? 'pattern' })
}
