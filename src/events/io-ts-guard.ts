import type * as t from 'io-ts'

/** A type guard compiled from a codec: the codec's `is`, as straight-line code. */
export type Guard = (u: unknown) => boolean

// The io-ts node shapes the compiler reads; anything else is called through its own `is`.
type Node =
  | { readonly _tag: 'StringType' | 'NumberType' | 'BooleanType' | 'NullType' | 'UnknownType' | 'AnyType' }
  | { readonly _tag: 'LiteralType'; readonly value: string | number | boolean }
  | { readonly _tag: 'KeyofType'; readonly keys: Readonly<Record<string, unknown>> }
  | { readonly _tag: 'RefinementType'; readonly type: t.Any; readonly predicate: (u: unknown) => boolean }
  | { readonly _tag: 'MessageType'; readonly inner: t.Any }
  | { readonly _tag: 'UnionType' | 'IntersectionType'; readonly types: readonly t.Any[] }
  | { readonly _tag: 'InterfaceType' | 'PartialType'; readonly props: Readonly<Record<string, t.Any>> }
  | { readonly _tag: 'ArrayType'; readonly type: t.Any }
  | { readonly _tag: 'DictionaryType'; readonly domain: t.Any; readonly codomain: t.Any }

const OBJECT = (v: string) => `(typeof ${v} === "object" && ${v} !== null && !Array.isArray(${v}))`

/**
 * Compiles `codec`'s `is` into one function of plain checks, the way ajv compiles a JSON
 * Schema: io-ts's own `is` walks a tree of closures whose call sites see every kind of node,
 * so V8 can inline none of them; the compiled guard has one call site per node and inlines.
 *
 * The guard answers as `codec.is` does on every value JSON or Avro can produce, and never says
 * yes where `is` says no (on an array with holes it says no). Refinement predicates are called
 * as they are; a node it does not know is asked through its own `is`. Callers use it as a fast
 * path and still decode to explain a failure.
 *
 * @example
 * const isFinding = compileGuard(Finding)
 * if (!isFinding(value)) return toFieldIssues(Finding.decode(value).left)
 */
export const compileGuard = (codec: t.Any): Guard => {
  const refs: unknown[] = []
  const functions: string[] = []
  const named = new Map<t.Any, string>()
  const ref = (value: unknown): string => {
    refs.push(value)
    return `r${refs.length - 1}`
  }

  // A parenthesised boolean expression over the identifier `v`; objects and arrays become
  // functions.
  const expr = (codec: t.Any, v: string): string => {
    const node = codec as unknown as Node
    switch (node._tag) {
      case 'StringType':
        return `(typeof ${v} === "string")`
      case 'NumberType':
        return `(typeof ${v} === "number")`
      case 'BooleanType':
        return `(typeof ${v} === "boolean")`
      case 'NullType':
        return `(${v} === null)`
      case 'UnknownType':
      case 'AnyType':
        return 'true'
      case 'LiteralType':
        return `(${v} === ${JSON.stringify(node.value)})`
      case 'KeyofType': {
        const keys = Object.keys(node.keys)
        return keys.length === 0
          ? 'false'
          : `(${keys.map((k) => `${v} === ${JSON.stringify(k)}`).join(' || ')})`
      }
      case 'RefinementType':
        return `(${expr(node.type, v)} && ${ref(node.predicate)}(${v}))`
      case 'MessageType':
        return expr(node.inner, v)
      case 'UnionType':
        return node.types.length === 0 ? 'false' : `(${node.types.map((m) => expr(m, v)).join(' || ')})`
      case 'IntersectionType':
      case 'InterfaceType':
      case 'PartialType':
      case 'ArrayType':
        return `${functionOf(codec)}(${v})`
      case 'DictionaryType':
        // Only string-keyed records are walked here; io-ts treats literal-keyed ones as exact.
        return (node.domain as unknown as Node)._tag === 'StringType' &&
          (node.codomain as unknown as Node)._tag !== 'AnyType' &&
          (node.codomain as unknown as Node)._tag !== 'UnknownType'
          ? `${functionOf(codec)}(${v})`
          : fallback(codec, v)
      default:
        return fallback(codec, v)
    }
  }

  const fallback = (codec: t.Any, v: string): string => `${ref((u: unknown) => codec.is(u))}(${v})`

  // One function per composite codec, shared by every place that uses it.
  const functionOf = (codec: t.Any): string => {
    const existing = named.get(codec)
    if (existing !== undefined) return existing
    const name = `f${named.size}`
    named.set(codec, name)
    const node = codec as unknown as Node
    const body: string[] = []
    switch (node._tag) {
      case 'IntersectionType':
        body.push(`return ${node.types.map((m) => expr(m, 'x')).join(' && ') || 'true'}`)
        break
      case 'InterfaceType':
      case 'PartialType': {
        body.push(`if (!${OBJECT('x')}) return false`)
        Object.entries(node.props).forEach(([key, type], i) => {
          const k = JSON.stringify(key)
          body.push(`const a${i} = x[${k}]`)
          // io-ts's interface tells a missing key from one that holds undefined.
          body.push(
            node._tag === 'InterfaceType'
              ? `if ((a${i} === undefined && !Object.hasOwn(x, ${k})) || !${expr(type, `a${i}`)}) return false`
              : `if (a${i} !== undefined && !${expr(type, `a${i}`)}) return false`,
          )
        })
        body.push('return true')
        break
      }
      case 'ArrayType':
        body.push('if (!Array.isArray(x)) return false')
        body.push('for (let i = 0; i < x.length; i++) {')
        body.push('  const e = x[i]')
        body.push(`  if (!${expr(node.type, 'e')}) return false`)
        body.push('}')
        body.push('return true')
        break
      case 'DictionaryType':
        body.push(`if (!${OBJECT('x')}) return false`)
        body.push('const keys = Object.keys(x)')
        body.push('for (let i = 0; i < keys.length; i++) {')
        body.push('  const e = x[keys[i]]')
        body.push(`  if (!${expr(node.codomain, 'e')}) return false`)
        body.push('}')
        body.push('return true')
        break
      default:
        throw new TypeError(`compileGuard: ${String(node._tag)} is not a composite codec`)
    }
    functions.push(`function ${name}(x) {\n  ${body.join('\n  ')}\n}`)
    return name
  }

  const root = expr(codec, 'u')
  const source = [
    ...refs.map((_, i) => `const r${i} = refs[${i}]`),
    ...functions,
    `return function guard(u) { return ${root} }`,
  ].join('\n')
  // Generated from codec structure only (property names are JSON-quoted), never from input.
  return new Function('refs', source)(refs) as Guard
}
