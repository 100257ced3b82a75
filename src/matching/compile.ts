import type { FieldIssue } from '../errors/index.ts'
import { InvalidPatternError } from './errors.ts'
import { compileEvaluator, isObject } from './evaluate.ts'
import { parsePattern } from './parse.ts'
import type { CompiledPattern, Field, LeafField, Matcher, PatternNode } from './types.ts'
import { escapeWildcardLiteral } from './wildcard.ts'

/**
 * Wraps a structural pattern with its reference evaluation, compiled on its first use: an index
 * of many patterns rarely evaluates one on its own, and compiling every one up front was most of
 * the cost of compiling a large account's selectors.
 */
export const fromNode = (root: PatternNode): CompiledPattern => {
  let evaluate: ((event: unknown) => boolean) | undefined
  return {
    root,
    matches: (event) => {
      evaluate ??= compileEvaluator(root)
      return evaluate(event)
    },
  }
}

/** Where the input sits in a larger document, so that error paths name it: `content.data.x`. */
export interface CompileOptions {
  readonly path?: string
}

const within = (prefix: string | undefined, path: string): string =>
  prefix === undefined || prefix === '' ? path : path === '(root)' ? prefix : `${prefix}.${path}`

/**
 * Compiles an Amazon EventBridge event pattern over the whole CloudEvent (envelope fields at
 * the top, `data` nested).
 *
 * @example
 * const p = compilePattern({ type: [{ prefix: 'user.checks.' }], data: { severity: ['Critical'] } })
 * p.matches({ type: 'user.checks.tag.vulnerabilities.update', data: { severity: 'Critical' } }) // true
 * compilePattern({ data: { severity: [{ numeric: ['>'] }] } })
 * // throws InvalidPatternError 'data.severity[0].numeric: must be a list of comparisons …'
 */
export const compilePattern = (pattern: unknown, options: CompileOptions = {}): CompiledPattern =>
  fromNode(parsePattern(pattern, options.path))

/**
 * AND of two nodes. Object fields with the same key merge, so their conditions keep applying
 * to one and the same array element; leaf fields on the same key all have to hold.
 */
export const mergeNodes = (a: PatternNode, b: PatternNode): PatternNode => {
  const fields: Field[] = [...a.fields]
  for (const field of b.fields) {
    const index =
      field.kind === 'object' ? fields.findIndex((f) => f.kind === 'object' && f.key === field.key) : -1
    const existing = fields[index]
    if (field.kind === 'object' && existing?.kind === 'object')
      fields[index] = { kind: 'object', key: field.key, node: mergeNodes(existing.node, field.node) }
    else fields.push(field)
  }
  return { fields, anyOf: [...a.anyOf, ...b.anyOf] }
}

/** What `compileAnchoreSelector` reads: Anchore's selector shape. */
export interface AnchoreSelectorInput {
  readonly scope: 'account' | 'global'
  readonly account?: string
  readonly event: {
    readonly level?: string
    readonly type: string
    readonly resource_type?: string
  }
}

const LEVELS = ['*', 'info', 'warning', 'error']

/**
 * Anchore's wildcard has no escapes and treats a run of stars as one; any other character is
 * literal. A lone `*` is no condition at all, which is what lets `resource_type: '*'` match
 * events without a `resourcetype`; any other pattern needs the field to be there.
 */
const anchoreMatcher = (text: string): Matcher | undefined => {
  if (text === '*') return undefined
  if (!text.includes('*')) return { kind: 'exact', value: text }
  const parts = text.split(/\*+/)
  const first = parts[0] as string
  const last = parts[parts.length - 1] as string
  if (parts.length === 2 && last === '') return { kind: 'prefix', value: first, ignoreCase: false }
  if (parts.length === 2 && first === '') return { kind: 'suffix', value: last, ignoreCase: false }
  return { kind: 'wildcard', value: parts.map(escapeWildcardLiteral).join('*') }
}

/**
 * An Anchore selector (`scope`, `account`, `event.{level, type, resource_type}`) in the same
 * representation as content patterns, optionally AND-ed with a content pattern. `account`
 * scope matches the event's `account`; `global` any account. `type` and `resource_type`
 * take `*` wildcards; `level` is exact or `*`.
 *
 * @example
 * compileAnchoreSelector({ scope: 'account', account: 'acme', event: { level: 'error', type: 'system.*', resource_type: '*' } })
 *   .matches({ account: 'acme', type: 'system.feeds.sync.failed', level: 'error' }) // true
 */
export const compileAnchoreSelector = (
  selector: unknown,
  content?: CompiledPattern,
  options: CompileOptions = {},
): CompiledPattern => {
  const issues: FieldIssue[] = []
  const fields: LeafField[] = []
  const leaf = (key: string, matcher: Matcher | undefined) => {
    if (matcher !== undefined) fields.push({ kind: 'leaf', key, matchers: [matcher] })
  }
  const fail = (found: readonly FieldIssue[]) =>
    new InvalidPatternError(found.map((i) => ({ path: within(options.path, i.path), message: i.message })))
  if (!isObject(selector)) throw fail([{ path: '(root)', message: 'must be a JSON object' }])
  const { scope, account, event } = selector
  if (scope === 'account') {
    if (typeof account !== 'string' || account === '')
      issues.push({ path: 'account', message: 'must be a non-empty string for account scope' })
    else leaf('account', { kind: 'exact', value: account })
  } else if (scope !== 'global') issues.push({ path: 'scope', message: 'must be "account" or "global"' })
  if (!isObject(event)) issues.push({ path: 'event', message: 'must be a JSON object' })
  else {
    const { level = '*', type, resource_type = '*' } = event
    if (typeof type !== 'string' || type === '')
      issues.push({ path: 'event.type', message: 'must be a non-empty string' })
    else leaf('type', anchoreMatcher(type))
    if (typeof level !== 'string' || !LEVELS.includes(level))
      issues.push({ path: 'event.level', message: `must be one of ${LEVELS.join(', ')}` })
    else if (level !== '*') leaf('level', { kind: 'exact', value: level })
    if (typeof resource_type !== 'string' || resource_type === '')
      issues.push({ path: 'event.resource_type', message: 'must be a non-empty string' })
    else leaf('resourcetype', anchoreMatcher(resource_type))
  }
  if (issues.length > 0) throw fail(issues)
  const root: PatternNode = { fields, anyOf: [] }
  return fromNode(content === undefined ? root : mergeNodes(root, content.root))
}
