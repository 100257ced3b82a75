import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import type { FieldIssue } from '../errors/index.ts'

const describe = (value: unknown): string => {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (typeof value === 'string')
    return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value)
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : String(value)
}

// Union and intersection members are addressed by index in io-ts's context; that index is
// not a field of the input.
const isComposite = (type: t.Decoder<unknown, unknown> | undefined): boolean => {
  const tag = (type as { _tag?: string } | undefined)?._tag
  return tag === 'UnionType' || tag === 'IntersectionType'
}

/**
 * The path of the value a context reaches, after `prefix`: properties dotted, array elements by
 * index in brackets (`to[2]`, `data.findings[0].severity`). A union's or intersection's member
 * index is not part of it.
 */
export const contextPath = (context: t.Context, prefix = ''): string => {
  let path = prefix
  context.forEach((entry, i) => {
    const parent = context[i - 1]
    if (entry.key === '' || isComposite(parent?.type)) return
    if (Array.isArray(parent?.actual)) path += `[${entry.key}]`
    else path += path === '' ? entry.key : `.${entry.key}`
  })
  return path
}

/**
 * Turns io-ts errors into one issue per bad field, named by its path (`contextPath`), with what
 * was expected. Each path is reported once.
 */
export const toFieldIssues = (errors: t.Errors, prefix = ''): FieldIssue[] => {
  const byPath = new Map<string, FieldIssue>()
  for (const error of errors) {
    const path = contextPath(error.context, prefix) || '(root)'
    if (byPath.has(path)) continue
    const expected = error.context.at(-1)?.type.name ?? 'a valid value'
    byPath.set(path, { path, message: error.message ?? `expected ${expected}, got ${describe(error.value)}` })
  }
  return [...byPath.values()]
}

/**
 * A codec that fails with its own message instead of io-ts's generic "expected type" text.
 * It keeps the codec it wraps (`inner`), so `compileGuard` can see through it.
 */
export class MessageType<C extends t.Any> extends t.Type<t.TypeOf<C>, t.OutputOf<C>, unknown> {
  readonly _tag = 'MessageType' as const
  readonly inner: C
  constructor(name: string, inner: C, message: (u: unknown) => string) {
    super(
      name,
      inner.is,
      (u, c) => {
        const result = inner.validate(u, c)
        return isLeft(result) ? t.failure(u, c, message(u)) : result
      },
      inner.encode,
    )
    this.inner = inner
  }
}

/** The same codec, failing with `message` instead of io-ts's generic "expected type" text. */
export const withMessage = <C extends t.Any>(codec: C, message: (u: unknown) => string, name = codec.name) =>
  new MessageType(name, codec, message)
