/**
 * The vocabulary the configuration schema is written in. One tree of `Leaf`s and `Group`s is
 * the single source for the io-ts codec, the defaults, the environment variable names, env
 * coercion, secret handling and REFERENCE.md, so adding a key is one edit that cannot leave
 * any of them behind.
 */
import { isIP } from 'node:net'
import * as t from 'io-ts'

/** How an environment string becomes a value of the key's type. */
export type EnvKind = 'string' | 'int' | 'number' | 'bool' | 'list'

/**
 * `value`: the whole value is a secret (tokens, passwords, keys).
 * `credentials`: a connection string whose user-info is secret; the rest (host, options) is
 * worth keeping in logs. Neither kind is ever echoed in an error.
 */
export type Secrecy = false | 'value' | 'credentials'

type Check<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly reason?: string }

const ok = <A>(value: A): Check<A> => ({ ok: true, value })
const fail = (reason?: string): Check<never> => (reason === undefined ? { ok: false } : { ok: false, reason })

/** A validated value type plus what the loader needs to coerce env strings into it and to describe it. */
export interface LeafType<A> {
  /** A `t.Type` at run time; typed as a decoder so that `LeafType` is covariant in `A`. */
  readonly codec: t.Decoder<unknown, A>
  readonly env: EnvKind
  readonly nullable: boolean
  /** Completes "expected …" in messages and fills the type column of REFERENCE.md. */
  readonly expected: string
  /** A list's element type: how each comma-separated item of an env string is coerced. */
  readonly element?: LeafType<unknown>
}

/**
 * Failure reasons never include the value itself: echoing is decided in one place
 * (the loader), which knows whether the key is a secret.
 */
const leafType = <A>(
  name: string,
  expected: string,
  env: EnvKind,
  check: (u: unknown) => Check<A>,
): LeafType<A> => ({
  codec: new t.Type<A, A, unknown>(
    name,
    (u): u is A => check(u).ok,
    (u, c) => {
      const result = check(u)
      return result.ok ? t.success(result.value) : t.failure(u, c, result.reason ?? `expected ${expected}`)
    },
    t.identity,
  ),
  env,
  nullable: false,
  expected,
})

const asType = <A>(decoder: t.Decoder<unknown, A>): t.Type<A, A, unknown> => decoder as t.Type<A, A, unknown>

export const nullable = <A>(type: LeafType<A>): LeafType<A | null> => ({
  codec: new t.Type<A | null, A | null, unknown>(
    `${type.codec.name} | null`,
    (u): u is A | null => u === null || asType(type.codec).is(u),
    (u, c) => (u === null ? t.success(null) : type.codec.validate(u, c)),
    t.identity,
  ),
  env: type.env,
  nullable: true,
  expected: `${type.expected}, or null`,
})

/**
 * A list of `element`s. In the file each element is taken as typed, as any key's value is; in
 * the environment each comma-separated item is coerced as a key of the element's type would be.
 */
export const listOf = <A>(element: LeafType<A>, expected: string): LeafType<readonly A[]> => ({
  codec: t.readonlyArray(asType(element.codec)),
  env: 'list',
  nullable: false,
  expected,
  element,
})

export const integer = (min: number, max = Number.MAX_SAFE_INTEGER): LeafType<number> => {
  const expected =
    max === Number.MAX_SAFE_INTEGER
      ? min === 1
        ? 'a positive integer'
        : `an integer >= ${min}`
      : `an integer ${min}-${max}`
  return leafType(`Integer(${min}, ${max})`, expected, 'int', (u) =>
    typeof u === 'number' && Number.isInteger(u) && u >= min && u <= max ? ok(u) : fail(),
  )
}

/**
 * Milliseconds to wait: a whole number from 0 to `max`, as a list's element (`retry_schedule_ms`);
 * `maxText` says `max` the way a reader counts it (`7 days`).
 */
export const milliseconds = (max: number, maxText: string): LeafType<number> =>
  leafType(`Milliseconds(${max})`, `a whole number of milliseconds 0-${max} (${maxText})`, 'int', (u) =>
    typeof u === 'number' && Number.isSafeInteger(u) && u >= 0 && u <= max ? ok(u) : fail(),
  )

/**
 * The longest delay a Node.js timer takes: 2^31 - 1 ms (about 24.8 days). A longer one fires
 * after 1 ms instead (with a TimeoutOverflowWarning), so no key that sets a timer may exceed it.
 */
export const MAX_TIMER_MS = 2_147_483_647

const TIMER_LIMIT_TEXT = 'about 24.8 days, the longest timer Node.js can set'

/** Milliseconds a timer waits: a whole number from 1 to `MAX_TIMER_MS`. */
export const timerMilliseconds: LeafType<number> = leafType(
  'TimerMilliseconds',
  `a whole number of milliseconds 1-${MAX_TIMER_MS} (${TIMER_LIMIT_TEXT})`,
  'int',
  (u) => (typeof u === 'number' && Number.isInteger(u) && u >= 1 && u <= MAX_TIMER_MS ? ok(u) : fail()),
)

/** Seconds a timer waits: a whole number from 1 to `MAX_TIMER_MS` in whole seconds (2,147,483). */
export const timerSeconds: LeafType<number> = leafType(
  'TimerSeconds',
  `a whole number of seconds 1-${Math.floor(MAX_TIMER_MS / 1000)} (${TIMER_LIMIT_TEXT})`,
  'int',
  (u) =>
    typeof u === 'number' && Number.isInteger(u) && u >= 1 && u <= Math.floor(MAX_TIMER_MS / 1000)
      ? ok(u)
      : fail(),
)

/** A finite number from `min` to `max`, fractions allowed (seconds that may be less than one). */
export const decimal = (min: number, max: number): LeafType<number> =>
  leafType(`Decimal(${min}, ${max})`, `a number ${min}-${max}`, 'number', (u) =>
    typeof u === 'number' && Number.isFinite(u) && u >= min && u <= max ? ok(u) : fail(),
  )

export const boolean: LeafType<boolean> = leafType(
  'Boolean',
  'a boolean (true/false; in the environment also 1/0/yes/no)',
  'bool',
  (u) => (typeof u === 'boolean' ? ok(u) : fail()),
)

export const oneOf = <const V extends string>(values: readonly V[]): LeafType<V> =>
  leafType(`OneOf(${values.join('|')})`, `one of ${values.join('|')}`, 'string', (u) =>
    typeof u === 'string' && (values as readonly string[]).includes(u) ? ok(u as V) : fail(),
  )

const stringType = (name: string, expected: string, accept: (s: string) => boolean): LeafType<string> =>
  leafType(name, expected, 'string', (u) => (typeof u === 'string' && accept(u) ? ok(u) : fail()))

export const nonEmptyString = stringType('NonEmptyString', 'a non-empty string', (s) => s.length > 0)

export const databaseName = stringType(
  'DatabaseName',
  'a database name (letters, digits and _; not starting with a digit)',
  (s) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(s),
)

/** Kafka's own rule for topic names. */
export const topicName = stringType(
  'TopicName',
  'a Kafka topic name (letters, digits, . _ -; at most 249 characters)',
  (s) => /^[A-Za-z0-9._-]{1,249}$/.test(s) && s !== '.' && s !== '..',
)

const isIPv4 = (s: string): boolean => isIP(s) === 4
const isIPv6 = (s: string): boolean => isIP(s) === 6

const isHostName = (s: string): boolean =>
  s.length <= 253 &&
  s
    .replace(/\.$/, '')
    .split('.')
    .every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label)) &&
  !/^[\d.]+$/.test(s)

const isAddress = (s: string): boolean => isIPv4(s) || isIPv6(s) || isHostName(s)

export const hostAddress = stringType('HostAddress', 'an IP address or host name', isAddress)

/** `host:port`, with IPv6 addresses in brackets, as kafkajs expects brokers. */
export const isHostPort = (s: string): boolean => {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s)
  if (match === null) return false
  const [, ipv6, host, port] = match
  const hostOk = ipv6 === undefined ? isIPv4(host ?? '') || isHostName(host ?? '') : isIPv6(ipv6)
  return hostOk && Number(port) >= 1 && Number(port) <= 65535
}

export const hostPort = stringType('HostPort', 'host:port (IPv6 in brackets)', isHostPort)

/** The SSRF guard's exemptions: exact hosts, `*.` domain wildcards, addresses and CIDR ranges. */
export const allowlistEntry = stringType(
  'AllowlistEntry',
  'a host name (optionally *.domain), IP address or CIDR range',
  (s) => {
    const cidr = /^([^/]+)\/(\d{1,3})$/.exec(s)
    if (cidr !== null) {
      const [, address = '', bits] = cidr
      const prefix = Number(bits)
      return (isIPv4(address) && prefix <= 32) || (isIPv6(address) && prefix <= 128)
    }
    return isAddress(s.startsWith('*.') ? s.slice(2) : s)
  },
)

/**
 * Refused, though a WHATWG parser reads it: anything but `http://` or `https://` followed by
 * the authority, with no space, control character or backslash inside. Parsers also read
 * `http:/h`, `http:\\h`, `http:h`, `//h` (against a base) and `http:///h` as `http://h/`, so
 * such a spelling hides what it holds: `http:/bob:pw@h` carries credentials that neither a
 * reader nor a pattern looking for `scheme://` would see.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are what a parser would drop
const NON_CANONICAL_URL = /^(?!https?:\/\/[^/\\])|[\u0000-\u0020\\]/i

const HTTP_URL = 'an http(s) URL'

/** Surrounding spaces (a stray newline from a secrets file) are trimmed away, nothing else. */
const checkHttpUrl = (u: unknown): Check<{ readonly text: string; readonly url: URL }> => {
  if (typeof u !== 'string') return fail()
  const s = u.trim()
  let url: URL
  try {
    url = new URL(s)
  } catch {
    return fail()
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return fail()
  return NON_CANONICAL_URL.test(s)
    ? fail(
        `expected ${HTTP_URL} written as http://host… or https://host… (two slashes; no spaces or backslashes)`,
      )
    : ok({ text: s, url })
}

export const httpUrl = leafType('HttpUrl', HTTP_URL, 'string', (u) => {
  const checked = checkHttpUrl(u)
  return checked.ok ? ok(checked.value.text) : checked
})

const HTTP_URL_WITHOUT_USERINFO = `${HTTP_URL} without user-info`

/**
 * An http(s) URL with no `user:password@` before its host, for a URL Herald calls itself with
 * `fetch`, which refuses one that holds credentials: the key could never work, and the password
 * would sit in plain sight wherever the URL is shown.
 */
export const httpUrlWithoutUserinfo = leafType(
  'HttpUrlWithoutUserinfo',
  HTTP_URL_WITHOUT_USERINFO,
  'string',
  (u) => {
    const checked = checkHttpUrl(u)
    if (!checked.ok) return checked
    const { url, text } = checked.value
    return url.username === '' && url.password === ''
      ? ok(text)
      : fail(
          `expected ${HTTP_URL_WITHOUT_USERINFO}: Herald cannot call a URL holding credentials (user:password@ before the host)`,
        )
  },
)

export const secretString = (minLength: number): LeafType<string> =>
  leafType(`Secret(${minLength})`, `a string of at least ${minLength} characters`, 'string', (u) => {
    if (typeof u !== 'string') return fail()
    return u.length >= minLength
      ? ok(u)
      : fail(minLength === 1 ? 'must not be empty' : `too short: must be at least ${minLength} characters`)
  })

/**
 * A bearer token of at least `minLength` characters. One read from a file or a secret store
 * often ends in a line break, which no `Authorization: Bearer` header can carry: whitespace
 * around it is dropped, and whitespace within refused.
 */
/** The fewest characters of the admin token, whether configured or in `data_dir/admin-token`. */
export const ADMIN_TOKEN_MIN_LENGTH = 16

/**
 * What is wrong with `text` (once trimmed) as a bearer token of at least `minLength`
 * characters, or undefined when nothing is.
 */
export const bearerTokenIssue = (text: string, minLength: number): string | undefined => {
  const token = text.trim()
  if (/\s/.test(token)) return 'must not contain whitespace: a bearer token cannot carry it'
  return token.length >= minLength ? undefined : `too short: must be at least ${minLength} characters`
}

export const bearerToken = (minLength: number): LeafType<string> =>
  leafType(
    `BearerToken(${minLength})`,
    `a token of at least ${minLength} characters, without whitespace`,
    'string',
    (u) => {
      if (typeof u !== 'string') return fail()
      const issue = bearerTokenIssue(u, minLength)
      return issue === undefined ? ok(u.trim()) : fail(issue)
    },
  )

/**
 * The options the KurrentDB client (1.x) reads from a connection string, by the name it gives
 * them, and what each value must be. The client matches names without case, `_` or `-`
 * (`tls_verify_cert` is `tlsVerifyCert`), except `dnsDiscover`, which it knows only so spelt.
 */
const KURRENT_OPTIONS: Readonly<Record<string, 'boolean' | 'integer' | 'text' | 'nodePreference'>> = {
  connectionName: 'text',
  defaultDeadline: 'integer',
  discoveryInterval: 'integer',
  dnsDiscover: 'boolean',
  gossipTimeout: 'integer',
  keepAliveInterval: 'integer',
  keepAliveTimeout: 'integer',
  maxDiscoverAttempts: 'integer',
  nodePreference: 'nodePreference',
  throwOnAppendFailure: 'boolean',
  tls: 'boolean',
  tlsCAFile: 'text',
  tlsVerifyCert: 'boolean',
  userCertFile: 'text',
  userKeyFile: 'text',
}

const flatCase = (name: string): string => name.trim().toLowerCase().replace(/[_-]/g, '')

const kurrentOptionNamed = (given: string): string | undefined =>
  given === 'dnsDiscover'
    ? given
    : Object.keys(KURRENT_OPTIONS).find(
        (name) => name !== 'dnsDiscover' && flatCase(name) === flatCase(given),
      )

const KURRENT_VALUE_RULES = {
  boolean: { test: (v: string) => v === 'true' || v === 'false', expected: 'true or false' },
  integer: { test: (v: string) => !Number.isNaN(Number.parseInt(v, 10)), expected: 'an integer' },
  text: { test: () => true, expected: 'text' },
  nodePreference: {
    test: (v: string) => ['leader', 'follower', 'readonlyreplica', 'random'].includes(flatCase(v)),
    expected: 'leader, follower, read_only_replica or random',
  },
} as const

/**
 * What is wrong with the options of a KurrentDB connection string, or undefined when nothing
 * is: the client only warns of an option it does not know, and its warning, written to stderr
 * past Herald's logger, quotes the whole string, password included. The issue names options,
 * never the user-info; a name that does not look like one (a password's fragment, should the
 * user-info be malformed) is not shown either.
 */
export const kurrentConnectionStringIssue = (text: string): string | undefined => {
  // Read as the client reads it: scheme, optional user:password@, hosts, then ?key=value&key=value.
  const trimmed = text.trim().replace(/\/+$/, '')
  const afterScheme = trimmed.replace(/^[^:]+:\/\//, '')
  const afterUserInfo = afterScheme.replace(/^[^:]+:[^@]+@/, '')
  const hosts = /^(?:[^$+!?*'(),;[\]{}|"%~#<>=&]+[,/]?)*/.exec(afterUserInfo)?.[0] ?? ''
  const options = afterUserInfo.slice(hosts.length)
  if (options === '') return undefined
  const pairs = [...options.matchAll(/([?&])([^=]+)=([^&?]+)/gy)]
  if (
    pairs.map((m) => m[0]).join('') !== options ||
    pairs[0]?.[1] !== '?' ||
    pairs.slice(1).some((m) => m[1] !== '&')
  )
    return 'expected the hosts to be followed by nothing or by options ?key=value&key=value'
  const unknown: string[] = []
  const badValues: string[] = []
  for (const [, , given = '', value = ''] of pairs) {
    const name = kurrentOptionNamed(given)
    const shown = /^[A-Za-z0-9_-]{1,40}$/.test(given.trim()) ? given.trim() : '(a name not shown)'
    if (name === undefined) unknown.push(shown)
    else {
      const rule = KURRENT_VALUE_RULES[KURRENT_OPTIONS[name] ?? 'text']
      if (!rule.test(value.trim())) badValues.push(`${name} must be ${rule.expected}`)
    }
  }
  const issues = [
    ...(unknown.length === 0
      ? []
      : [
          `unknown option${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')} (KurrentDB knows ${Object.keys(KURRENT_OPTIONS).join(', ')})`,
        ]),
    ...badValues,
  ]
  return issues.length === 0 ? undefined : issues.join('; ')
}

/** The schemes the KurrentDB / EventStoreDB clients accept, and options they know. */
export const kurrentConnectionString = leafType(
  'KurrentConnectionString',
  'a KurrentDB connection string (kurrentdb://…, kurrent://…, kdb://… or esdb://…, optionally +discover)',
  'string',
  (u) => {
    if (typeof u !== 'string' || !/^(kurrentdb|kurrent|kdb|esdb)(\+discover)?:\/\/\S+$/.test(u)) return fail()
    const issue = kurrentConnectionStringIssue(u)
    return issue === undefined ? ok(u) : fail(issue)
  },
)

export const base64Key = (bytes: number): LeafType<string> =>
  leafType(`Base64Key(${bytes})`, `base64 of exactly ${bytes} bytes`, 'string', (given) => {
    if (typeof given !== 'string') return fail()
    // A key read from a file often ends in a line break, which base64 never holds.
    const u = given.trim()
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(u) || u.length % 4 !== 0) {
      return fail(`expected base64 of exactly ${bytes} bytes; this is not valid base64`)
    }
    const decoded = Buffer.from(u, 'base64')
    if (decoded.length !== bytes)
      return fail(`expected base64 of exactly ${bytes} bytes, but it decodes to ${decoded.length}`)
    // The last character before the padding also carries bits past the last byte, which must
    // be zero: a key with them set encodes no key (a typo), and start-up refuses it.
    return decoded.toString('base64') === u
      ? ok(u)
      : fail(
          `expected base64 of exactly ${bytes} bytes; this is not the canonical base64 of any: its last character carries bits past the last byte (a typo?)`,
        )
  })

export interface Leaf<A> {
  readonly node: 'leaf'
  readonly type: LeafType<A>
  /** Absent when the key must be given (only inside optional groups such as `sasl`). */
  readonly fallback: { readonly value: A } | undefined
  readonly secret: Secrecy
  readonly doc: string
  /** The later work this key waits for, rendered as "accepted; takes effect once … lands". */
  readonly pending: string | undefined
}

export interface KeyOptions<A> {
  readonly default?: NoInfer<A>
  readonly secret?: Secrecy
  readonly doc: string
  readonly pending?: string
}

export const key = <A>(type: LeafType<A>, options: KeyOptions<A>): Leaf<A> => ({
  node: 'leaf',
  type,
  fallback: 'default' in options ? { value: options.default as A } : undefined,
  secret: options.secret ?? false,
  doc: options.doc,
  pending: options.pending,
})

export type Node = Leaf<unknown> | Group<Shape, boolean>

export interface Shape {
  readonly [name: string]: Node
}

export interface Group<S extends Shape, N extends boolean> {
  readonly node: 'group'
  readonly shape: S
  /** A nullable group is absent (null) by default; once given, its keys without defaults are required. */
  readonly nullable: N
  readonly doc: string | undefined
}

export const group = <S extends Shape>(shape: S, doc?: string): Group<S, false> => ({
  node: 'group',
  shape,
  nullable: false,
  doc,
})

export const optionalGroup = <S extends Shape>(shape: S, doc: string): Group<S, true> => ({
  node: 'group',
  shape,
  nullable: true,
  doc,
})

export type ValueOf<N> =
  N extends Leaf<infer A>
    ? A
    : N extends Group<infer S, infer Nullable>
      ? Nullable extends true
        ? ShapeValue<S> | null
        : ShapeValue<S>
      : never

export type ShapeValue<S extends Shape> = { readonly [K in keyof S]: ValueOf<S[K]> }

export const codecOf = (node: Node): t.Mixed => {
  if (node.node === 'leaf') return asType(node.type.codec)
  const props: Record<string, t.Mixed> = {}
  for (const [name, child] of Object.entries(node.shape)) props[name] = codecOf(child)
  const object = t.exact(t.type(props))
  return node.nullable
    ? new t.Type<unknown, unknown, unknown>(
        `${object.name} | null`,
        (u): u is unknown => u === null || object.is(u),
        (u, c) => (u === null ? t.success(null) : object.validate(u, c)),
        t.identity,
      )
    : object
}

export interface LeafAt {
  readonly path: readonly string[]
  readonly leaf: Leaf<unknown>
}

export interface NodeAt {
  readonly path: readonly string[]
  readonly node: Node
}

/** Every node under `node`, depth first in declaration order, the root excluded. */
export const nodesOf = (node: Node, path: readonly string[] = []): NodeAt[] =>
  node.node === 'leaf'
    ? []
    : Object.entries(node.shape).flatMap(([name, child]) => [
        { path: [...path, name], node: child },
        ...nodesOf(child, [...path, name]),
      ])

export const leavesOf = (node: Node): LeafAt[] =>
  nodesOf(node).flatMap(({ path, node: n }) => (n.node === 'leaf' ? [{ path, leaf: n }] : []))

/** The deepest node named by a prefix of `path`, with how much of the path it consumed. */
export const nodeAt = (root: Node, path: readonly string[]): { node: Node; depth: number } => {
  let node = root
  let depth = 0
  for (const segment of path) {
    if (node.node !== 'group') break
    const child = node.shape[segment]
    if (child === undefined) break
    node = child
    depth++
  }
  return { node, depth }
}
