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
 * Turns io-ts errors into one issue per bad field, named by its dotted path, with what was
 * expected. A union's or intersection's member index is not part of the path, and each path is reported once.
 */
export const toFieldIssues = (errors: t.Errors, prefix = ''): FieldIssue[] => {
  const byPath = new Map<string, FieldIssue>()
  for (const error of errors) {
    const keys: string[] = []
    error.context.forEach((entry, i) => {
      if (entry.key === '' || isComposite(error.context[i - 1]?.type)) return
      keys.push(entry.key)
    })
    const path = [prefix, ...keys].filter((k) => k !== '').join('.') || '(root)'
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
