/**
 * The structural form every pattern compiles to, whether it came from EventBridge syntax or
 * from an Anchore selector. It is plain data, so an index can inspect it and a test can
 * compare it; the functions that evaluate it live beside it, not in it.
 */

/** A JSON leaf value: what a condition compares against. */
export type Scalar = string | number | boolean | null

/** One alternative of a field's condition; a field holds when any of its alternatives does. */
export type Matcher =
  | { readonly kind: 'exact'; readonly value: Scalar }
  | { readonly kind: 'prefix'; readonly value: string; readonly ignoreCase: boolean }
  | { readonly kind: 'suffix'; readonly value: string; readonly ignoreCase: boolean }
  | { readonly kind: 'equals-ignore-case'; readonly value: string }
  /** `value` keeps EventBridge's source text: `\*` is a literal star, `\\` a backslash. */
  | { readonly kind: 'wildcard'; readonly value: string }
  /** Holds for a present value that none of `not` accepts. */
  | { readonly kind: 'anything-but'; readonly not: readonly NegatableMatcher[] }
  | { readonly kind: 'numeric'; readonly lower?: NumericBound; readonly upper?: NumericBound }
  | { readonly kind: 'exists'; readonly value: boolean }
  /** `value` is the CIDR block as written, e.g. `10.0.0.0/24` or `2001:db8::/32`. */
  | { readonly kind: 'cidr'; readonly value: string }

/** The matchers `anything-but` may negate. */
export type NegatableMatcher = Extract<
  Matcher,
  { kind: 'exact' | 'prefix' | 'suffix' | 'equals-ignore-case' | 'wildcard' }
>

export interface NumericBound {
  readonly value: number
  readonly inclusive: boolean
}

/** A condition on the leaf values found at `key` of the enclosing object. */
export interface LeafField {
  readonly kind: 'leaf'
  readonly key: string
  readonly matchers: readonly Matcher[]
}

/** A nested object pattern at `key` of the enclosing object. */
export interface ObjectField {
  readonly kind: 'object'
  readonly key: string
  readonly node: PatternNode
}

export type Field = LeafField | ObjectField

/**
 * One object level of a pattern: every field must hold (AND), and for every `anyOf` group at
 * least one of its branches must hold against the same object (`$or`).
 */
export interface PatternNode {
  readonly fields: readonly Field[]
  readonly anyOf: readonly (readonly PatternNode[])[]
}

/**
 * A validated pattern. `matches` is the reference evaluation, one pattern at a time;
 * `buildPatternIndex` evaluates many at once from `root`.
 */
export interface CompiledPattern {
  readonly root: PatternNode
  matches(event: unknown): boolean
}
