import { type LeafTest, leafTest } from './leaf.ts'
import type { LeafField, ObjectField, PatternNode } from './types.ts'

/**
 * The reference evaluation of one pattern against one event, compiled to closures.
 *
 * Arrays in the event: a leaf field sees every scalar in the array (nested arrays flattened),
 * so it holds when any element does. A nested object pattern over an array of objects must
 * hold within one element: `{"vulns": {"severity": ["Critical"], "fixed": [true]}}` needs one
 * vulnerability that is both critical and fixed, as event-ruler's array-consistent matching.
 * An empty array, or one without objects, is matched as if the field were absent.
 */

type ObjectTest = (o: Record<string, unknown> | undefined) => boolean

/** Keys that every object inherits (`constructor`, `__proto__`) must be own properties to count. */
export const isInheritedName = (key: string): boolean => key in Object.prototype

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const NONE = 0
const SEEN = 1
const MATCHED = 2

/** NONE when `values` holds no scalar, MATCHED when one passes `test`, SEEN otherwise. */
const scanScalars = (values: readonly unknown[], test: (v: unknown) => boolean): number => {
  let state = NONE
  for (const v of values) {
    if (Array.isArray(v)) {
      const inner = scanScalars(v, test)
      if (inner === MATCHED) return MATCHED
      if (inner === SEEN) state = SEEN
    } else if (typeof v !== 'object' || v === null) {
      if (test(v)) return MATCHED
      state = SEEN
    }
  }
  return state
}

const holdsOn = (leaf: LeafTest, value: unknown): boolean => {
  if (value === undefined) return leaf.whenAbsent
  if (typeof value !== 'object' || value === null) return leaf.whenPresent || leaf.test(value)
  if (!Array.isArray(value)) return leaf.whenAbsent
  const state = scanScalars(value, leaf.whenPresent ? () => true : leaf.test)
  return state === NONE ? leaf.whenAbsent : state === MATCHED
}

/** NONE when `values` holds no object, MATCHED when one passes `test`, SEEN otherwise. */
const scanObjects = (values: readonly unknown[], test: ObjectTest): number => {
  let state = NONE
  for (const v of values) {
    if (Array.isArray(v)) {
      const inner = scanObjects(v, test)
      if (inner === MATCHED) return MATCHED
      if (inner === SEEN) state = SEEN
    } else if (isObject(v)) {
      if (test(v)) return MATCHED
      state = SEEN
    }
  }
  return state
}

const read = (o: Record<string, unknown>, key: string, inherited: boolean): unknown =>
  inherited && !Object.hasOwn(o, key) ? undefined : o[key]

const compileLeaf = (field: LeafField): ObjectTest => {
  const leaf = leafTest(field.matchers)
  const key = field.key
  const inherited = isInheritedName(key)
  return (o) => holdsOn(leaf, o === undefined ? undefined : read(o, key, inherited))
}

const compileObject = (field: ObjectField): ObjectTest => {
  const child = compileNode(field.node)
  const key = field.key
  const inherited = isInheritedName(key)
  return (o) => {
    const value = o === undefined ? undefined : read(o, key, inherited)
    if (isObject(value)) return child(value)
    if (Array.isArray(value)) {
      const state = scanObjects(value, child)
      return state === NONE ? child(undefined) : state === MATCHED
    }
    return child(undefined)
  }
}

export const compileNode = (node: PatternNode): ObjectTest => {
  const tests = node.fields.map((f) => (f.kind === 'leaf' ? compileLeaf(f) : compileObject(f)))
  const groups = node.anyOf.map((branches) => branches.map(compileNode))
  return (o) => {
    for (const test of tests) if (!test(o)) return false
    for (const branches of groups) {
      let any = false
      for (const branch of branches)
        if (branch(o)) {
          any = true
          break
        }
      if (!any) return false
    }
    return true
  }
}

/** An event that is not a JSON object has no fields: only absence conditions can hold. */
export const compileEvaluator = (root: PatternNode): ((event: unknown) => boolean) => {
  const test = compileNode(root)
  return (event) => test(isObject(event) ? event : undefined)
}
