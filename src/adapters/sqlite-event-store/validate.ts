import { type FieldIssue, ValidationError } from '../../errors/index.ts'
import type {
  AppendOptions,
  EventData,
  ExpectedRevision,
  ReadAllOptions,
  ReadStreamOptions,
  StreamAppend,
  StreamDelete,
  SubscribeOptions,
} from '../../ports/index.ts'

// Enough to show a caller what is wrong without flooding a log with a huge bad payload.
const MAX_ISSUES = 20

/** Metadata key where the KurrentDB adapter keeps a Herald event id it could not take as its own. */
export const HERALD_ID_KEY = '$herald.id'

/**
 * KurrentDB's system streams and event types start with `$`: it writes such an event apart
 * and never shows it to readAll or subscribeToAll, where the embedded store would. Neither
 * store takes one, so both behave alike.
 */
const SYSTEM_STREAM =
  'must not start with $ (KurrentDB keeps system streams apart: readAll and subscribeToAll never show them)'
const SYSTEM_TYPE =
  'must not start with $ (KurrentDB takes it for a system event: readAll and subscribeToAll never show it)'

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const isNonNegativeInteger = (value: unknown): value is number =>
  Number.isSafeInteger(value) && Number(value) >= 0

/**
 * Collects why a value would not survive a JSON round trip unchanged. JSON.stringify does not
 * throw on most of these, it silently drops or rewrites them (undefined, NaN, Date, Map), so a
 * stored event would differ from the appended one.
 */
const collectJsonIssues = (value: unknown, path: string, issues: FieldIssue[], ancestors: object[]): void => {
  if (issues.length >= MAX_ISSUES) return
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) issues.push({ path, message: `${value} is not a JSON number` })
    return
  }
  if (typeof value !== 'object') {
    issues.push({ path, message: `a ${typeof value} is not a JSON value` })
    return
  }
  if (ancestors.includes(value)) {
    issues.push({ path, message: 'circular reference' })
    return
  }
  if (Array.isArray(value)) {
    ancestors.push(value)
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) issues.push({ path: `${path}[${i}]`, message: 'sparse array hole' })
      else collectJsonIssues(value[i], `${path}[${i}]`, issues, ancestors)
    }
    ancestors.pop()
    return
  }
  if (!isPlainObject(value)) {
    issues.push({ path, message: `a ${value.constructor?.name ?? 'non-plain'} object is not a JSON object` })
    return
  }
  ancestors.push(value)
  for (const [key, child] of Object.entries(value))
    collectJsonIssues(child, `${path}.${key}`, issues, ancestors)
  ancestors.pop()
}

/**
 * Whether `value` survives a JSON round trip unchanged: `collectJsonIssues`'s walk without
 * building a path for every member (most of its cost, every append), for the common case of
 * nothing wrong. `depth` bounds the walk where a cycle would otherwise never end; past it the
 * collecting walk, which tracks ancestors, decides.
 */
const isJsonSafe = (value: unknown, depth: number): boolean => {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true
  if (typeof value === 'number') return Number.isFinite(value)
  if (typeof value !== 'object' || depth === 0) return false
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!(i in value) || !isJsonSafe(value[i], depth - 1)) return false
    return true
  }
  if (!isPlainObject(value)) return false
  for (const key in value) {
    if (Object.hasOwn(value, key) && !isJsonSafe(value[key], depth - 1)) return false
  }
  return true
}

// Deeper than any event Herald writes; a deeper one is checked by the collecting walk instead.
const FAST_CHECK_DEPTH = 64

const collectObjectIssues = (value: unknown, path: string, issues: FieldIssue[]): void => {
  if (!isPlainObject(value)) {
    issues.push({ path, message: 'must be a JSON object' })
    return
  }
  if (isJsonSafe(value, FAST_CHECK_DEPTH)) return
  collectJsonIssues(value, path, issues, [])
}

const LONE_SURROGATE =
  'holds a lone surrogate (\\ud800-\\udfff without its pair), which is not Unicode text: it would be stored as U+FFFD, the same as any other'

/**
 * Why `value` cannot name a stream, an event or its type, or undefined when it can. A lone
 * surrogate is written (UTF-8, in either store) as U+FFFD: two names differing only there
 * would be one, and an append of the second event taken for a retry of the first.
 */
const nameIssue = (value: unknown): string | undefined => {
  if (typeof value !== 'string' || value.length === 0) return 'must be a non-empty string'
  if (!value.isWellFormed()) return LONE_SURROGATE
  return undefined
}

const streamIssues = (stream: unknown): FieldIssue[] => {
  const message = nameIssue(stream)
  return message === undefined ? [] : [{ path: 'stream', message }]
}

const isExpectedRevision = (value: unknown): value is ExpectedRevision =>
  value === 'no_stream' || value === 'stream_exists' || value === 'any' || isNonNegativeInteger(value)

const fail = (what: string, issues: readonly FieldIssue[]): never => {
  throw ValidationError.of(what, issues)
}

const collectEventIssues = (
  event: unknown,
  path: string,
  seenIds: Map<string, string>,
  issues: FieldIssue[],
): void => {
  if (!isPlainObject(event)) {
    issues.push({ path, message: 'must be an object' })
    return
  }
  const { id, type, data, metadata } = event as Partial<Record<keyof EventData, unknown>>
  const idIssue = nameIssue(id)
  if (idIssue !== undefined) {
    issues.push({ path: `${path}.id`, message: idIssue })
  } else if (seenIds.has(id as string)) {
    issues.push({ path: `${path}.id`, message: `repeats ${seenIds.get(id as string)}.id` })
  } else {
    seenIds.set(id as string, path)
  }
  const typeIssue = nameIssue(type) ?? ((type as string).startsWith('$') ? SYSTEM_TYPE : undefined)
  if (typeIssue !== undefined) issues.push({ path: `${path}.type`, message: typeIssue })
  collectObjectIssues(data, `${path}.data`, issues)
  if (metadata === undefined) return
  collectObjectIssues(metadata, `${path}.metadata`, issues)
  if (isPlainObject(metadata) && Object.hasOwn(metadata, HERALD_ID_KEY))
    issues.push({ path: `${path}.metadata.${HERALD_ID_KEY}`, message: 'is reserved for the event store' })
}

/** `streamIssues`, and no system stream: one Herald writes (or deletes) is its own. */
const writtenStreamIssues = (stream: unknown, path: string): FieldIssue[] => {
  const issues = streamIssues(stream).map((i) => ({ ...i, path }))
  if (issues.length === 0 && (stream as string).startsWith('$')) issues.push({ path, message: SYSTEM_STREAM })
  return issues
}

const appendIssues = (stream: unknown, events: unknown, expected: unknown, prefix: string): FieldIssue[] => {
  const issues = writtenStreamIssues(stream, `${prefix}stream`)
  if (expected !== undefined && !isExpectedRevision(expected)) {
    issues.push({
      path: `${prefix}expectedRevision`,
      message: "must be 'no_stream', 'stream_exists', 'any' or a non-negative integer",
    })
  }
  if (!Array.isArray(events) || events.length === 0) {
    issues.push({ path: `${prefix}events`, message: 'must be a non-empty array' })
  } else {
    const seen = new Map<string, string>()
    events.forEach((event: unknown, i) => {
      collectEventIssues(event, `${prefix}events[${i}]`, seen, issues)
    })
  }
  return issues
}

/** Checks an append's arguments as they arrive at runtime, where the static types may have been bypassed. */
export const validateAppend = (
  stream: unknown,
  events: unknown,
  options: AppendOptions | undefined,
): void => {
  const issues = appendIssues(stream, events, options?.expectedRevision, '')
  if (issues.length > 0) fail('append', issues.slice(0, MAX_ISSUES))
}

/**
 * Entry `i` of `list` names a stream an earlier entry named (`seen` holds the first entry of
 * each stream, and gains this one's when it is the first).
 */
const repeatIssues = (seen: Map<string, number>, stream: unknown, i: number, list: string): FieldIssue[] => {
  if (typeof stream !== 'string') return []
  const first = seen.get(stream)
  if (first === undefined) {
    seen.set(stream, i)
    return []
  }
  return [{ path: `${list}[${i}].stream`, message: `repeats ${list}[${first}].stream` }]
}

/** `validateAppend` for every entry of an `appendMany`, plus: each stream at most once. */
export const validateAppendMany = (appends: unknown): void => {
  if (!Array.isArray(appends)) fail('appendMany', [{ path: 'appends', message: 'must be an array' }])
  const issues: FieldIssue[] = []
  const streams = new Map<string, number>()
  ;(appends as unknown[]).forEach((entry: unknown, i) => {
    if (issues.length >= MAX_ISSUES) return
    if (!isPlainObject(entry)) {
      issues.push({ path: `appends[${i}]`, message: 'must be an object' })
      return
    }
    const { stream, events, expectedRevision } = entry as Partial<Record<keyof StreamAppend, unknown>>
    issues.push(...appendIssues(stream, events, expectedRevision, `appends[${i}].`))
    // One entry per stream keeps each entry's expected revision and retry check meaningful.
    issues.push(...repeatIssues(streams, stream, i, 'appends'))
  })
  if (issues.length > 0) fail('appendMany', issues.slice(0, MAX_ISSUES))
}

/** `deleteStreams`' entries: a stream name and a revision each, each stream at most once. */
export const validateDeleteStreams = (deletes: unknown): void => {
  if (!Array.isArray(deletes)) fail('deleteStreams', [{ path: 'deletes', message: 'must be an array' }])
  const issues: FieldIssue[] = []
  const streams = new Map<string, number>()
  ;(deletes as unknown[]).forEach((entry: unknown, i) => {
    if (!isPlainObject(entry)) {
      issues.push({ path: `deletes[${i}]`, message: 'must be an object' })
      return
    }
    const { stream, expectedRevision } = entry as Partial<Record<keyof StreamDelete, unknown>>
    issues.push(...writtenStreamIssues(stream, `deletes[${i}].stream`))
    if (!isNonNegativeInteger(expectedRevision))
      issues.push({ path: `deletes[${i}].expectedRevision`, message: 'must be a non-negative integer' })
    issues.push(...repeatIssues(streams, stream, i, 'deletes'))
  })
  if (issues.length > 0) fail('deleteStreams', issues.slice(0, MAX_ISSUES))
}

export const validateReadStream = (stream: unknown, options: ReadStreamOptions | undefined): void => {
  const issues = streamIssues(stream)
  if (options?.fromRevision !== undefined && !isNonNegativeInteger(options.fromRevision)) {
    issues.push({ path: 'fromRevision', message: 'must be a non-negative integer' })
  }
  if (options?.maxCount !== undefined && !isNonNegativeInteger(options.maxCount)) {
    issues.push({ path: 'maxCount', message: 'must be a non-negative integer' })
  }
  if (issues.length > 0) fail('readStream', issues)
}

const MAX_STREAM_PREFIXES = 16

const prefixIssues = (prefixes: unknown): FieldIssue[] => {
  if (prefixes === undefined) return []
  if (!Array.isArray(prefixes) || prefixes.length === 0 || prefixes.length > MAX_STREAM_PREFIXES)
    return [
      {
        path: 'streamPrefixes',
        message: `must be a list of 1 to ${MAX_STREAM_PREFIXES} stream name prefixes`,
      },
    ]
  return prefixes.flatMap((prefix, i) => {
    const message =
      nameIssue(prefix) ??
      ((prefix as string).startsWith('$') ? 'must not select system streams ($…)' : undefined)
    return message === undefined ? [] : [{ path: `streamPrefixes[${i}]`, message }]
  })
}

export const validateSubscribe = (options: SubscribeOptions | undefined): void => {
  const issues = prefixIssues(options?.streamPrefixes)
  if (options?.after !== undefined && !isNonNegativeInteger(options.after)) {
    issues.push({ path: 'after', message: 'must be a non-negative integer' })
  }
  if (issues.length > 0) fail('subscribeToAll', issues)
}

export const validateReadAll = (options: ReadAllOptions | undefined): void => {
  const issues = prefixIssues(options?.streamPrefixes)
  if (options?.after !== undefined && !isNonNegativeInteger(options.after)) {
    issues.push({ path: 'after', message: 'must be a non-negative integer' })
  }
  if (options?.maxCount !== undefined && !isNonNegativeInteger(options.maxCount)) {
    issues.push({ path: 'maxCount', message: 'must be a non-negative integer' })
  }
  if (issues.length > 0) fail('readAll', issues)
}
