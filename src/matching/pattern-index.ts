import { drain } from '../cooperative.ts'
import { isInheritedName, isObject } from './evaluate.ts'
import { type LeafTest, leafHolds, leafTest } from './leaf.ts'
import type { CompiledPattern, Matcher, PatternNode, Scalar } from './types.ts'
import { parseWildcard } from './wildcard.ts'

/**
 * Many compiled patterns in one decision structure, so that an event is compared with the
 * patterns that can still match it rather than with all of them.
 *
 * Each pattern is first put in disjunctive form (one conjunct per way through its `$or`s), a
 * conjunct being a flat list of leaf conditions, each on one field path. The conjuncts are
 * then arranged in a tree: an inner node splits on one field path, routing each conjunct by
 * the exact values, prefixes or suffixes its condition on that path accepts (a condition with
 * several alternatives goes down several branches), plus a `rest` branch for the conjuncts
 * without such a condition there. The path chosen at each node is the one that keeps the
 * most conjuncts away from a typical event (for Anchore selectors: account, then type). At
 * match time an inner node looks up the event's values at its path (one probe per value,
 * plus one per routed prefix or suffix the value actually has, found once per distinct value)
 * and descends; a leaf checks only the conditions its conjuncts did not already satisfy on the
 * way down. Each node is entered at most once per event, however many of the event's values
 * lead to it (repeats in an array, values with the same routed prefix). Conjuncts with no
 * routable condition (numeric, anything-but, cidr, exists, equals-ignore-case, wildcards
 * without literal ends) end up in the leaves of the rest branches: the small fallback list.
 *
 * Conditions are checked on the flat list of leaf values found at their path. That equals
 * the reference evaluation except where an array of two or more objects lets different
 * conditions be met by different elements, or lets one element lack a field the others
 * have; a conjunct with two or more conditions (or an absence condition) under such an array
 * is decided by the pattern's own `matches`.
 *
 * An index is immutable once built; matching keeps per-event scratch state inside it, which
 * is safe because `match` is synchronous and never re-entered.
 */
export interface PatternIndex<Id> {
  /** Ids of the entries whose pattern matches `event`, each once, in no particular order. */
  match(event: unknown): readonly Id[]
  /** Number of entries indexed. */
  readonly size: number
  /**
   * Nodes of the decision tree the latest `match` entered: a measure of its work, which grows
   * with the patterns an event can still meet, never with repeats among the event's values.
   */
  readonly visited: number
}

export interface PatternIndexEntry<Id> {
  readonly id: Id
  readonly pattern: CompiledPattern
}

// A pattern whose `$or`s multiply out to more conjuncts than this is indexed by the
// conditions outside its `$or`s and confirmed by its own evaluation instead.
const MAX_CONJUNCTS = 64
// A conjunct may be copied down at most this many branches in total; past it, a condition
// with many alternatives is checked in the leaf instead of routing.
const MAX_REPLICATION = 64
const LEAF_SIZE = 8
// Deeper than this, a node becomes a leaf: patterns spread over thousands of distinct paths
// would otherwise chain `rest` splits deep enough to exhaust the stack.
const MAX_DEPTH = 64
// Distinct string values per path whose prefix and suffix hits are remembered; event types
// and other low-cardinality fields fit, identifiers and timestamps stop being remembered,
// and long values are never kept alive by it.
const AFFIX_MEMO_LIMIT = 4_096
const AFFIX_MEMO_MAX_LENGTH = 256

/** How one alternative routes: by an exact value, a prefix or a suffix; `consumed` when the route decides it. */
interface Route {
  readonly by: 'exact' | 'prefix' | 'suffix'
  readonly key: Scalar
  readonly consumed: boolean
  /** Distinct across the three kinds, for the statistics that choose a split. */
  readonly bucket: unknown
}

const route = (by: Route['by'], key: Scalar, consumed: boolean): Route => ({
  by,
  key,
  consumed,
  bucket: by === 'exact' ? key : `${by}\u0000${key}`,
})

const routeOf = (matcher: Matcher): Route | undefined => {
  switch (matcher.kind) {
    case 'exact':
      return route('exact', matcher.value, true)
    case 'prefix':
    case 'suffix':
      return matcher.ignoreCase ? undefined : route(matcher.kind, matcher.value, true)
    case 'wildcard': {
      const parsed = parseWildcard(matcher.value)
      if (!parsed.ok) return undefined
      const segments = parsed.value.segments
      const first = segments[0] as string
      const last = segments[segments.length - 1] as string
      if (segments.length === 1) return route('exact', first, true)
      if (segments.length === 2 && last === '') return route('prefix', first, true)
      if (segments.length === 2 && first === '') return route('suffix', last, true)
      if (first !== '') return route('prefix', first, false)
      if (last !== '') return route('suffix', last, false)
      return undefined
    }
    default:
      return undefined
  }
}

/** Routes for every alternative of a condition, or undefined when one of them cannot route. */
const routesOf = (matchers: readonly Matcher[]): Route[] | undefined => {
  const routes: Route[] = []
  for (const matcher of matchers) {
    const r = routeOf(matcher)
    if (r === undefined) return undefined
    routes.push(r)
  }
  return routes
}

/**
 * A leaf condition on one path. Conditions are interned, so that the thousands of selectors
 * asking for `level: error` share one condition, one compiled test and one cached result
 * per event.
 */
interface Cond {
  readonly id: number
  readonly path: number
  readonly leaf: LeafTest
  readonly routes: readonly Route[] | undefined
}

class Registry {
  readonly parents: number[] = [-1]
  readonly keys: string[] = ['']
  readonly conds: Cond[] = []
  private readonly children: Map<string, number>[] = [new Map()]
  // Per path: single exact values (the common case) by value, anything else by its JSON.
  private readonly byValue: Map<unknown, Cond>[] = [new Map()]
  private readonly byJson: Map<string, Cond>[] = [new Map()]

  path(parent: number, key: string): number {
    const siblings = this.children[parent] as Map<string, number>
    let id = siblings.get(key)
    if (id === undefined) {
      id = this.keys.length
      siblings.set(key, id)
      this.parents.push(parent)
      this.keys.push(key)
      this.children.push(new Map())
      this.byValue.push(new Map())
      this.byJson.push(new Map())
    }
    return id
  }

  cond(path: number, matchers: readonly Matcher[]): Cond {
    const only = matchers[0]
    const single = matchers.length === 1 && only?.kind === 'exact'
    const map: Map<unknown, Cond> = single
      ? (this.byValue[path] as Map<unknown, Cond>)
      : (this.byJson[path] as Map<string, Cond>)
    const key = single ? only.value : JSON.stringify(matchers)
    let cond = map.get(key)
    if (cond === undefined) {
      cond = { id: this.conds.length, path, leaf: leafTest(matchers), routes: routesOf(matchers) }
      map.set(key, cond)
      this.conds.push(cond)
    }
    return cond
  }
}

interface Conjunct {
  readonly entry: number
  readonly conds: readonly Cond[]
  /** Paths of nested objects under which arrays would make flat checking unsound. */
  readonly sensitive: readonly number[]
  readonly alwaysVerify: boolean
}

class TooManyConjuncts extends Error {}

/**
 * A list that `$or` expansion builds by concatenation: a run of items, or two lists one after
 * the other. Concatenating is constant time, so a conjunct of F conditions costs O(F) to build
 * rather than one copy of the list so far per condition (O(F²)); `flatten` lays it out once.
 */
type Rope<T> = readonly T[] | { readonly left: Rope<T>; readonly right: Rope<T> }

const isEmpty = <T>(rope: Rope<T>): boolean => !('left' in rope) && rope.length === 0

const concat = <T>(left: Rope<T>, right: Rope<T>): Rope<T> =>
  isEmpty(left) ? right : isEmpty(right) ? left : { left, right }

/** The items of `rope` in order, one unit of work each. Iterative: a rope may be as deep as it is long. */
function* flatten<T>(rope: Rope<T>, work: Work): Generator<void, T[]> {
  const out: T[] = []
  const pending: Rope<T>[] = [rope]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if ('left' in next) {
      pending.push(next.right, next.left)
      continue
    }
    for (const item of next as readonly T[]) {
      if (++work.done % WORK_PER_STEP === 0) yield
      out.push(item)
    }
  }
  return out
}

/** One conjunct while `expand` builds it. */
interface Draft {
  readonly conds: Rope<Cond>
  /** How many conditions `conds` holds, and whether one of them holds on absence. */
  readonly count: number
  readonly absent: boolean
  readonly sensitive: Rope<number>
}

const NONE: readonly never[] = Object.freeze([])

const EMPTY_DRAFT: Draft = { conds: NONE, count: 0, absent: false, sensitive: NONE }

const cross = (a: readonly Draft[], b: readonly Draft[]): Draft[] => {
  if (a.length * b.length > MAX_CONJUNCTS) throw new TooManyConjuncts()
  const out: Draft[] = []
  for (const x of a)
    for (const y of b)
      out.push({
        conds: concat(x.conds, y.conds),
        count: x.count + y.count,
        absent: x.absent || y.absent,
        sensitive: concat(x.sensitive, y.sensitive),
      })
  return out
}

/**
 * Disjunctive form of `node` at `path`. `nested` is true when the node is not the event
 * itself: two conditions under it must then hold in the same array element. One unit of work
 * per field.
 */
function* expand(
  registry: Registry,
  node: PatternNode,
  path: number,
  nested: boolean,
  work: Work,
): Generator<void, Draft[]> {
  let acc: Draft[] = [EMPTY_DRAFT]
  // Consecutive leaf conditions, appended to every draft at once.
  let run: Cond[] = []
  let absent = false
  const flush = () => {
    if (run.length === 0) return
    const conds = run
    const runAbsent = absent
    acc = acc.map((p) => ({
      conds: concat(p.conds, conds),
      count: p.count + conds.length,
      absent: p.absent || runAbsent,
      sensitive: p.sensitive,
    }))
    run = []
    absent = false
  }
  for (const field of node.fields) {
    if (++work.done % WORK_PER_STEP === 0) yield
    const fieldPath = registry.path(path, field.key)
    if (field.kind === 'leaf') {
      const cond = registry.cond(fieldPath, field.matchers)
      run.push(cond)
      absent ||= cond.leaf.whenAbsent
    } else {
      flush()
      acc = cross(acc, yield* expand(registry, field.node, fieldPath, true, work))
    }
  }
  flush()
  for (const branches of node.anyOf) {
    const union: Draft[] = []
    for (const branch of branches) union.push(...(yield* expand(registry, branch, path, nested, work)))
    acc = cross(acc, union)
  }
  if (!nested) return acc
  const here: readonly number[] = [path]
  return acc.map((p) => (p.count >= 2 || p.absent ? { ...p, sensitive: concat(p.sensitive, here) } : p))
}

/** The conditions that hold in every conjunct, those outside any `$or`, into `conds`. */
function* hoist(
  registry: Registry,
  node: PatternNode,
  path: number,
  conds: Cond[],
  work: Work,
): Generator<void, void> {
  for (const field of node.fields) {
    if (++work.done % WORK_PER_STEP === 0) yield
    const fieldPath = registry.path(path, field.key)
    if (field.kind === 'leaf') conds.push(registry.cond(fieldPath, field.matchers))
    else yield* hoist(registry, field.node, fieldPath, conds, work)
  }
}

const hasOr = (node: PatternNode): boolean =>
  node.anyOf.length > 0 || node.fields.some((f) => f.kind === 'object' && hasOr(f.node))

/**
 * The one conjunct of a pattern without `$or`, gathered into `conds` without the drafts
 * `expand` builds; a nested node with two conditions under it, or one that holds on absence,
 * goes into `sensitive`. One unit of work per field.
 */
function* collect(
  registry: Registry,
  node: PatternNode,
  path: number,
  nested: boolean,
  conds: Cond[],
  sensitive: number[],
  work: Work,
): Generator<void, void> {
  const before = conds.length
  for (const field of node.fields) {
    if (++work.done % WORK_PER_STEP === 0) yield
    const fieldPath = registry.path(path, field.key)
    if (field.kind === 'leaf') conds.push(registry.cond(fieldPath, field.matchers))
    else yield* collect(registry, field.node, fieldPath, true, conds, sensitive, work)
  }
  if (!nested) return
  let absent = false
  for (let i = before; i < conds.length; i++) if ((conds[i] as Cond).leaf.whenAbsent) absent = true
  if (conds.length - before >= 2 || absent) sensitive.push(path)
}

/**
 * The conjuncts of one entry's pattern, in steps of `WORK_PER_STEP` fields or conditions laid
 * out, so that one very large pattern does not hold the event loop for its whole expansion.
 */
function* conjunctsOf(
  registry: Registry,
  entry: number,
  pattern: CompiledPattern,
  work: Work,
): Generator<void, Conjunct[]> {
  if (!hasOr(pattern.root)) {
    const conds: Cond[] = []
    const sensitive: number[] = []
    yield* collect(registry, pattern.root, 0, false, conds, sensitive, work)
    return [{ entry, conds, sensitive: sensitive.length === 0 ? NONE : sensitive, alwaysVerify: false }]
  }
  let drafts: Draft[]
  try {
    drafts = yield* expand(registry, pattern.root, 0, false, work)
  } catch (error) {
    if (!(error instanceof TooManyConjuncts)) throw error
    const conds: Cond[] = []
    yield* hoist(registry, pattern.root, 0, conds, work)
    return [{ entry, conds, sensitive: NONE, alwaysVerify: true }]
  }
  const conjuncts: Conjunct[] = []
  for (const p of drafts) {
    const sensitive = isEmpty(p.sensitive) ? NONE : [...new Set(yield* flatten(p.sensitive, work))]
    conjuncts.push({ entry, conds: yield* flatten(p.conds, work), sensitive, alwaysVerify: false })
  }
  return conjuncts
}

/** A conjunct on its way down the tree. */
interface Placement {
  readonly conjunct: Conjunct
  /** Bit i: `conjunct.conds[i]` is still to check in the leaf. */
  readonly checks: number
  /** Bit i: `conjunct.conds[i]` is still available to route on. */
  readonly routable: number
  readonly replication: number
}

// Placements track their conditions as bits; conditions past the 31st are never routed and
// always checked, which only costs speed on patterns no one writes.
const MASKED = 31

const placementOf = (conjunct: Conjunct): Placement => {
  let checks = 0
  let routable = 0
  const n = Math.min(conjunct.conds.length, MASKED)
  for (let i = 0; i < n; i++) {
    checks |= 1 << i
    if ((conjunct.conds[i] as Cond).routes !== undefined) routable |= 1 << i
  }
  return { conjunct, checks, routable, replication: 1 }
}

/**
 * A conjunct in a leaf, with what is left to check. Matching touches these more than anything
 * else, so each carries the per-event stamp that stops its entry being evaluated twice;
 * when an entry sits in several leaves, they all use the stamp of one `owner`.
 */
class Candidate<Id> {
  stamp = -1
  owner: Candidate<Id> = this
  readonly entry: number
  readonly id: Id
  readonly checks: readonly Cond[]
  readonly sensitive: readonly number[]
  readonly alwaysVerify: boolean

  constructor(entry: number, id: Id, checks: readonly Cond[], conjunct: Conjunct) {
    this.entry = entry
    this.id = id
    this.checks = checks
    this.sensitive = conjunct.sensitive
    this.alwaysVerify = conjunct.alwaysVerify
  }
}

/** A leaf is its candidates; an array rather than a wrapper saves a memory load per leaf. */
type Leaf = readonly Candidate<unknown>[]

/**
 * A split's children are numbered across the whole tree (their place in `Builder.nodes`), so
 * that matching can stamp each one it enters and enter it once per event.
 */
interface Split {
  readonly path: number
  /**
   * Exact string values in a prototype-less object, whose lookups V8 serves faster than a
   * Map's; numbers, booleans and null in a Map, so that `5` and `"5"` stay apart.
   */
  readonly strings: Readonly<Record<string, number>>
  readonly others: ReadonlyMap<unknown, number> | undefined
  /** Keyed by route bucket (`prefix\u0000…`, `suffix\u0000…`), as `Affixes.of` reports a value's affixes. */
  readonly affix: ReadonlyMap<string, number> | undefined
  /** Entered once whenever the split is, so not numbered. */
  readonly rest: TreeNode | undefined
}

type TreeNode = Leaf | Split

/** Index of the first condition on `path` that can route and may still be copied, or -1. */
const routingCond = (placement: Placement, path: number): number => {
  const conds = placement.conjunct.conds
  for (let bits = placement.routable, i = 0; bits !== 0; bits >>>= 1, i++) {
    if ((bits & 1) === 0) continue
    const cond = conds[i] as Cond
    if (cond.path === path && placement.replication * (cond.routes as Route[]).length <= MAX_REPLICATION)
      return i
  }
  return -1
}

interface PathStats {
  count: number
  readonly buckets: Map<unknown, number>
}

function* choosePath(placements: readonly Placement[], work: Work): Generator<void, number | undefined> {
  const stats = new Map<number, PathStats>()
  for (const placement of placements) {
    if (++work.done % WORK_PER_STEP === 0) yield
    const conds = placement.conjunct.conds
    let seen = 0
    for (let bits = placement.routable, i = 0; bits !== 0; bits >>>= 1, i++) {
      if ((bits & 1) === 0 || (seen & (1 << i)) !== 0) continue
      const path = (conds[i] as Cond).path
      // Later conditions on the same path count with this one.
      const last = Math.min(conds.length, MASKED)
      for (let j = i + 1; j < last; j++) if ((conds[j] as Cond).path === path) seen |= 1 << j
      const chosen = routingCond(placement, path)
      if (chosen === -1) continue
      let s = stats.get(path)
      if (s === undefined) {
        s = { count: 0, buckets: new Map() }
        stats.set(path, s)
      }
      s.count++
      for (const r of (conds[chosen] as Cond).routes as Route[])
        s.buckets.set(r.bucket, (s.buckets.get(r.bucket) ?? 0) + 1)
    }
  }
  // Worth most: the path that keeps the most conjuncts away from an event whichever value it
  // carries (count minus the largest bucket), with a bonus for coverage, because an event
  // whose value is in no bucket skips them all.
  let best: number | undefined
  let bestScore = 0
  for (const [path, s] of stats) {
    let largest = 0
    for (const n of s.buckets.values()) if (n > largest) largest = n
    const score = s.count - largest + s.count / 8
    if (s.count >= 2 && score > bestScore) {
      best = path
      bestScore = score
    }
  }
  return best
}

const append = <K>(map: Map<K, Placement[]>, key: K, placement: Placement): void => {
  const list = map.get(key)
  if (list === undefined) map.set(key, [placement])
  else list.push(placement)
}

/** Every prefix and suffix routed on at one path, whichever node routes on it. */
class Affixes {
  readonly prefixes = new Map<string, string>()
  readonly suffixes = new Map<string, string>()
  prefixLengths: number[] = []
  suffixLengths: number[] = []
  readonly memo = new Map<string, readonly string[]>()

  seal(): void {
    const lengths = (keys: Iterable<string>) =>
      [...new Set([...keys].map((k) => k.length))].sort((a, b) => a - b)
    this.prefixLengths = lengths(this.prefixes.keys())
    this.suffixLengths = lengths(this.suffixes.keys())
  }

  /**
   * The routed prefixes and suffixes of `value`, as the bucket keys of their routes, remembered
   * per value: the maps of a split are keyed the same way, so a node probes only the affixes
   * the value actually has instead of slicing it once per registered length.
   */
  of(value: string): readonly string[] {
    const known = this.memo.get(value)
    if (known !== undefined) return known
    const found: string[] = []
    for (const length of this.prefixLengths) {
      if (length > value.length) break
      const key = this.prefixes.get(value.slice(0, length))
      if (key !== undefined) found.push(key)
    }
    for (const length of this.suffixLengths) {
      if (length > value.length) break
      const key = this.suffixes.get(value.slice(value.length - length))
      if (key !== undefined) found.push(key)
    }
    const result = found.length === 0 ? NONE : found
    if (this.memo.size < AFFIX_MEMO_LIMIT && value.length <= AFFIX_MEMO_MAX_LENGTH)
      this.memo.set(value, result)
    return result
  }
}

/**
 * Units of work (entries, their fields and the conditions of their conjuncts taken apart,
 * placements looked at) between two steps of a build.
 */
const WORK_PER_STEP = 1_024

/** Work done so far in one build, counted by every step of it. */
interface Work {
  done: number
}

interface Builder {
  readonly work: Work
  readonly affixes: Map<number, Affixes>
  readonly ids: readonly unknown[]
  readonly candidates: Candidate<unknown>[]
  /** Check lists by their conditions' ids: candidates mostly share a handful of them. */
  readonly checkLists: Map<string, readonly Cond[]>
  /** The children of splits, by their number. */
  readonly nodes: TreeNode[]
}

const numbered = (builder: Builder, node: TreeNode): number => builder.nodes.push(node) - 1

const checksOf = (builder: Builder, placement: Placement): readonly Cond[] => {
  const conds = placement.conjunct.conds
  const checks: Cond[] = []
  for (let bits = placement.checks, i = 0; bits !== 0; bits >>>= 1, i++)
    if ((bits & 1) !== 0) checks.push(conds[i] as Cond)
  for (let i = MASKED; i < conds.length; i++) checks.push(conds[i] as Cond)
  if (checks.length === 0) return NONE
  const key = checks.map((c) => c.id).join(',')
  const known = builder.checkLists.get(key)
  if (known !== undefined) return known
  builder.checkLists.set(key, checks)
  return checks
}

/** The decision tree of `placements`; one step per `WORK_PER_STEP` placements it looks at. */
function* buildTree(
  placements: readonly Placement[],
  builder: Builder,
  depth: number,
): Generator<void, TreeNode | undefined> {
  if (placements.length === 0) return undefined
  const work = builder.work
  const path =
    placements.length > LEAF_SIZE && depth < MAX_DEPTH ? yield* choosePath(placements, work) : undefined
  if (path === undefined) {
    const leaf: Candidate<unknown>[] = []
    for (const p of placements) {
      if (++work.done % WORK_PER_STEP === 0) yield
      const entry = p.conjunct.entry
      const candidate = new Candidate(entry, builder.ids[entry], checksOf(builder, p), p.conjunct)
      builder.candidates.push(candidate)
      leaf.push(candidate)
    }
    return leaf
  }
  const affixes = builder.affixes
  const exact = new Map<unknown, Placement[]>()
  // One map for both affix kinds, keyed by the routes' buckets as `Affixes.of` reports them.
  const affixed = new Map<string, Placement[]>()
  const rest: Placement[] = []
  let registry = affixes.get(path)
  for (const placement of placements) {
    if (++work.done % WORK_PER_STEP === 0) yield
    const chosen = routingCond(placement, path)
    if (chosen === -1) {
      rest.push(placement)
      continue
    }
    const routes = (placement.conjunct.conds[chosen] as Cond).routes as Route[]
    const bit = 1 << chosen
    const routable = placement.routable & ~bit
    const replication = placement.replication * routes.length
    for (const r of routes) {
      const child: Placement = {
        conjunct: placement.conjunct,
        checks: r.consumed ? placement.checks & ~bit : placement.checks,
        routable,
        replication,
      }
      if (r.by === 'exact') append(exact, r.key, child)
      else {
        if (registry === undefined) {
          registry = new Affixes()
          affixes.set(path, registry)
        }
        const key = r.bucket as string
        ;(r.by === 'prefix' ? registry.prefixes : registry.suffixes).set(r.key as string, key)
        append(affixed, key, child)
      }
    }
  }
  const strings: Record<string, number> = Object.create(null)
  const others = new Map<unknown, number>()
  for (const [key, list] of exact) {
    const child = numbered(builder, (yield* buildTree(list, builder, depth + 1)) as TreeNode)
    if (typeof key === 'string') strings[key] = child
    else others.set(key, child)
  }
  const affix = new Map<string, number>()
  for (const [key, list] of affixed)
    affix.set(key, numbered(builder, (yield* buildTree(list, builder, depth + 1)) as TreeNode))
  return {
    path,
    strings,
    others: others.size === 0 ? undefined : others,
    affix: affix.size === 0 ? undefined : affix,
    rest: yield* buildTree(rest, builder, depth + 1),
  }
}

/**
 * The leaf values and objects found at one path of the current event, computed on first use
 * and reused across events (arrays overwritten in place) so matching allocates almost nothing.
 */
class Slot {
  epoch = -1
  count = 0
  objectCount = 0
  branched = false
  readonly values: unknown[] = []
  readonly objects: Record<string, unknown>[] = []
  /** The routed affixes of `values[i]`, found by the first split on this path that needs them. */
  affixEpoch = -1
  readonly affixes: (readonly string[])[] = []

  addArray(items: readonly unknown[]): void {
    for (const item of items) {
      if (typeof item !== 'object' || item === null) this.values[this.count++] = item
      else if (Array.isArray(item)) this.addArray(item)
      else this.objects[this.objectCount++] = item as Record<string, unknown>
    }
  }
}

/**
 * The index of `entries`, built at once.
 *
 * @example
 * const index = buildPatternIndex([
 *   { id: 'critical', pattern: compilePattern({ data: { severity: ['Critical'] } }) },
 *   { id: 'acme', pattern: compileAnchoreSelector({ scope: 'account', account: 'acme', event: { type: '*' } }) },
 * ])
 * index.match({ account: 'acme', type: 'x', data: { severity: 'Critical' } }) // ['critical', 'acme'] in some order
 */
export const buildPatternIndex = <Id>(entries: readonly PatternIndexEntry<Id>[]): PatternIndex<Id> =>
  drain(patternIndexSteps(entries))

/**
 * `buildPatternIndex` step by step: the generator yields between steps of about
 * `WORK_PER_STEP` entries, pattern fields or placements, one large pattern taking several (a
 * large index takes a second or more to build, a step a few milliseconds at most) and returns
 * the index, so a caller can build in slices between which the event loop runs
 * (`drainSliced`). `entries` must not change meanwhile.
 *
 * @example
 * const index = await drainSliced(patternIndexSteps(entries))
 */
export function* patternIndexSteps<Id>(
  entries: readonly PatternIndexEntry<Id>[],
): Generator<void, PatternIndex<Id>> {
  const work: Work = { done: 0 }
  const registry = new Registry()
  const placements: Placement[] = []
  for (let i = 0; i < entries.length; i++) {
    if (++work.done % WORK_PER_STEP === 0) yield
    const entry = entries[i] as PatternIndexEntry<Id>
    for (const conjunct of yield* conjunctsOf(registry, i, entry.pattern, work))
      placements.push(placementOf(conjunct))
  }
  const ids = entries.map((e) => e.id)
  const affixes = new Map<number, Affixes>()
  const candidates: Candidate<unknown>[] = []
  const nodes: TreeNode[] = []
  const tree = yield* buildTree(
    placements,
    { work, affixes, ids, candidates, checkLists: new Map(), nodes },
    0,
  )
  // The match in which each numbered node was last entered.
  const entered = new Float64Array(nodes.length).fill(-1)
  for (const a of affixes.values()) a.seal()
  const owners = new Map<number, Candidate<unknown>>()
  for (const candidate of candidates) {
    if (++work.done % WORK_PER_STEP === 0) yield
    const owner = owners.get(candidate.entry)
    if (owner === undefined) owners.set(candidate.entry, candidate)
    else candidate.owner = owner
  }
  const affixesAt: (Affixes | undefined)[] = registry.keys.map((_, path) => affixes.get(path))

  const parents = registry.parents
  const keys = registry.keys
  const inherited = keys.map(isInheritedName)
  const slots = keys.map(() => new Slot())
  const root = slots[0] as Slot
  const conds = registry.conds
  const condEpoch = new Float64Array(conds.length).fill(-1)
  const condHolds = new Uint8Array(conds.length)

  const patterns = entries.map((e) => e.pattern)
  const idNumbers = new Map<Id, number>()
  const idNumberOf: number[] = []
  for (const id of ids) {
    if (++work.done % WORK_PER_STEP === 0) yield
    let n = idNumbers.get(id)
    if (n === undefined) {
      n = idNumbers.size
      idNumbers.set(id, n)
    }
    idNumberOf.push(n)
  }
  const emitted = new Float64Array(idNumbers.size).fill(-1)
  // With one entry per id, an entry evaluated once is also reported once.
  const idsAreUnique = idNumbers.size === entries.length

  let epoch = 0
  let event: unknown
  let found: Id[] | undefined
  let visited = 0

  const fill = (slot: Slot, path: number): void => {
    const parent = slots[parents[path] as number] as Slot
    if (parent.epoch !== epoch) fill(parent, parents[path] as number)
    slot.epoch = epoch
    slot.count = 0
    slot.objectCount = 0
    const key = keys[path] as string
    const guard = inherited[path] as boolean
    const objects = parent.objects
    for (let i = 0; i < parent.objectCount; i++) {
      const o = objects[i] as Record<string, unknown>
      const v = o[key]
      if (v === undefined || (guard && !Object.hasOwn(o, key))) continue
      if (typeof v !== 'object' || v === null) slot.values[slot.count++] = v
      else if (Array.isArray(v)) slot.addArray(v)
      else slot.objects[slot.objectCount++] = v as Record<string, unknown>
    }
    slot.branched = parent.branched || slot.objectCount > 1
  }

  const slotOf = (path: number): Slot => {
    const slot = slots[path] as Slot
    if (slot.epoch !== epoch) fill(slot, path)
    return slot
  }

  const holds = (cond: Cond): boolean => {
    const id = cond.id
    if (condEpoch[id] === epoch) return condHolds[id] === 1
    const slot = slotOf(cond.path)
    const result = leafHolds(cond.leaf, slot.values, slot.count)
    condEpoch[id] = epoch
    condHolds[id] = result ? 1 : 0
    return result
  }

  const emit = (candidate: Candidate<unknown>): void => {
    if (!idsAreUnique) {
      const n = idNumberOf[candidate.entry] as number
      if (emitted[n] === epoch) return
      emitted[n] = epoch
    }
    if (found === undefined) found = [candidate.id as Id]
    else found.push(candidate.id as Id)
  }

  const check = (candidate: Candidate<unknown>): void => {
    const owner = candidate.owner
    if (owner.stamp === epoch) return
    const checks = candidate.checks
    // A condition that holds on absence (`exists: false`) and fails on the flat values may
    // still hold in one element of an array of objects; the flat answer is only final when
    // no such array is in the way.
    let unsure = false
    for (let i = 0; i < checks.length; i++) {
      const cond = checks[i] as Cond
      if (holds(cond)) continue
      if (!cond.leaf.whenAbsent || (candidate.sensitive.length === 0 && !candidate.alwaysVerify)) return
      unsure = true
    }
    let verify = candidate.alwaysVerify
    const sensitive = candidate.sensitive
    for (let i = 0; !verify && i < sensitive.length; i++) verify = slotOf(sensitive[i] as number).branched
    if (unsure && !verify) return
    owner.stamp = epoch
    if (!verify || (patterns[candidate.entry] as CompiledPattern).matches(event)) emit(candidate)
  }

  /** Enters child `n` of a split unless this match already has. */
  const enter = (n: number): void => {
    if (entered[n] === epoch) return
    entered[n] = epoch
    visit(nodes[n] as TreeNode)
  }

  const visit = (node: TreeNode): void => {
    visited++
    if (Array.isArray(node)) {
      const leaf = node as Leaf
      for (let i = 0; i < leaf.length; i++) check(leaf[i] as Candidate<unknown>)
      return
    }
    const split = node as Split
    const slot = slotOf(split.path)
    const values = slot.values
    const affix = split.affix
    if (affix !== undefined && slot.affixEpoch !== epoch) {
      const known = affixesAt[split.path] as Affixes
      for (let i = 0; i < slot.count; i++) {
        const v = values[i]
        slot.affixes[i] = typeof v === 'string' ? known.of(v) : NONE
      }
      slot.affixEpoch = epoch
    }
    for (let i = 0; i < slot.count; i++) {
      const v = values[i]
      if (typeof v !== 'string') {
        const hit = split.others?.get(v)
        if (hit !== undefined) enter(hit)
        continue
      }
      const hit = split.strings[v]
      if (hit !== undefined) enter(hit)
      if (affix === undefined) continue
      const keys = slot.affixes[i] as readonly string[]
      for (let k = 0; k < keys.length; k++) {
        const child = affix.get(keys[k] as string)
        if (child !== undefined) enter(child)
      }
    }
    if (split.rest !== undefined) visit(split.rest)
  }

  const match = (input: unknown): readonly Id[] => {
    visited = 0
    if (tree === undefined) return NONE
    epoch++
    event = input
    root.epoch = epoch
    root.count = 0
    root.branched = false
    if (isObject(input)) {
      root.objects[0] = input
      root.objectCount = 1
    } else root.objectCount = 0
    found = undefined
    visit(tree)
    const result = found ?? NONE
    event = undefined
    found = undefined
    return result
  }

  return {
    size: entries.length,
    match,
    get visited() {
      return visited
    },
  }
}
