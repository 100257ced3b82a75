import { isIP } from 'node:net'
import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { type FieldIssue, ValidationError } from '../errors/index.ts'
import { contextPath, toFieldIssues, withMessage } from '../events/index.ts'
import { unknownFields } from '../http/body.ts'

const refinedString = (name: string, test: (s: string) => boolean, message: string) =>
  withMessage(t.refinement(t.string, test, name), (u) =>
    typeof u === 'string' ? message : 'must be a string',
  )

export const Uuid = refinedString(
  'Uuid',
  (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s),
  'must be a UUID',
)

const MAX_URL_LENGTH = 2048

const isWebhookUrl = (s: string): boolean => {
  // URL parsing trims and percent-encodes whitespace; a URL typed with spaces is a mistake.
  if (s.length > MAX_URL_LENGTH || /\s/.test(s)) return false
  const url = URL.parse(s)
  // Credentials in the URL would be shown wherever the URL is listed; they belong in
  // secret fields that are redacted.
  return (
    url !== null &&
    (url.protocol === 'https:' || url.protocol === 'http:') &&
    url.username === '' &&
    url.password === ''
  )
}

export const WebhookUrl = refinedString(
  'WebhookUrl',
  isWebhookUrl,
  `must be an http or https URL without spaces or credentials, at most ${MAX_URL_LENGTH} characters`,
)

// Standard Webhooks: secrets of 24 to 64 bytes, base64 after the `whsec_` prefix.
const isSigningSecret = (s: string): boolean => {
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(s)
  if (match?.[1] === undefined || match[1].length % 4 !== 0) return false
  const bytes = Buffer.from(match[1], 'base64').length
  return bytes >= 24 && bytes <= 64
}

export const SigningSecret = refinedString(
  'SigningSecret',
  isSigningSecret,
  'must be "whsec_" followed by the base64 of 24 to 64 bytes',
)

/** Characters as a reader counts them (code points): an emoji is one, not two UTF-16 units. */
const characters = (s: string): number => {
  let count = 0
  for (const _ of s) count++
  return count
}

export const Description = refinedString(
  'Description',
  (s) => s.length <= 1024 || characters(s) <= 1024,
  'must be at most 1024 characters',
)

/** A configuration's description, or null for none. */
export const OptionalDescription = withMessage(
  t.union([t.null, Description]),
  () => 'must be null or a string of at most 1024 characters',
  'OptionalDescription',
)

/** A plain string field: non-empty after trimming, at most `max` characters. */
export const text = (name: string, max: number) =>
  refinedString(
    name,
    (s) => s.trim().length > 0 && (s.length <= max || characters(s) <= max),
    `must be 1 to ${max} characters`,
  )

/** A basic-auth user (RFC 7617): no colon, which would end the user in the header, nor control characters. */
export const BasicAuthUser = refinedString(
  'BasicAuthUser',
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  (s) => s.trim().length > 0 && (s.length <= 256 || characters(s) <= 256) && !/[:\x00-\x1f\x7f]/.test(s),
  'must be 1 to 256 characters, without ":" or control characters (basic auth ends the user at the first ":")',
)

/**
 * A credential: a non-empty string. Its message never echoes the value, which may be a real
 * secret with a typo.
 */
export const Secret = refinedString(
  'Secret',
  (s) => s.length > 0 && (s.length <= 4096 || characters(s) <= 4096) && s.trim() === s,
  'must be 1 to 4096 characters without surrounding spaces',
)

export const Port = withMessage(
  t.refinement(t.number, (n) => Number.isInteger(n) && n >= 1 && n <= 65_535, 'Port'),
  () => 'must be an integer port from 1 to 65535',
)

// Host names and literal addresses; the SSRF guard decides later whether one may be used.
const HOST_NAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/

/**
 * A DNS host name, or an IPv4 or IPv6 address as written without brackets: what a socket
 * connects to. Not an IPv6 address with a zone (`fe80::1%eth0`): a link-local address on one
 * of this machine's interfaces, which the SSRF guard refuses anyway.
 */
export const isHostOrAddress = (s: string): boolean =>
  (isIP(s) !== 0 && !s.includes('%')) || HOST_NAME.test(s)

export const HostName = refinedString(
  'HostName',
  isHostOrAddress,
  'must be a host name or an IP address (an IPv6 address without brackets)',
)

// Deliberately loose: the mail server is the judge of deliverability; this refuses what is
// clearly not one address (spaces, angle brackets, several @ or none).
export const EmailAddress = refinedString(
  'EmailAddress',
  (s) => s.length <= 254 && /^[^\s@<>,;"]+@[^\s@<>,;"]+$/.test(s),
  'must be one email address such as alerts@example.com',
)

interface ListSpec<A> {
  readonly min: number
  readonly max: number
  /** What the list holds, for its message: `email addresses`. */
  readonly what: string
  /** What two elements are the same by: listed twice, the second is refused. */
  readonly sameBy?: (element: A) => string
}

/**
 * A list of `min` to `max` distinct elements. A list that is none, too short or too long fails
 * as a whole; otherwise each bad element fails on its own, by index (`to[2]`), and one that
 * repeats an earlier element names it (`to[3]`: "repeats to[1]"), so a client is told which.
 */
const listOf = <A extends string>(
  name: string,
  element: t.Type<A, A, unknown>,
  { min, max, what, sameBy = (a) => a }: ListSpec<A>,
): t.Type<A[], A[], unknown> => {
  const fitsLength = (u: unknown): u is unknown[] => Array.isArray(u) && u.length >= min && u.length <= max
  return new t.Type<A[], A[], unknown>(
    name,
    (u): u is A[] =>
      fitsLength(u) && u.every(element.is) && new Set(u.map((a) => sameBy(a as A))).size === u.length,
    (u, c) => {
      if (!fitsLength(u))
        return t.failure(u, c, `must be a list of ${min === 0 ? 'at most' : `${min} to`} ${max} ${what}`)
      const errors: t.ValidationError[] = []
      const values: A[] = []
      const firstIndex = new Map<string, number>()
      for (const [i, item] of u.entries()) {
        const at = t.appendContext(c, String(i), element, item)
        const result = element.validate(item, at)
        if (isLeft(result)) {
          errors.push(...result.left)
          continue
        }
        const key = sameBy(result.right)
        const first = firstIndex.get(key)
        if (first === undefined) firstIndex.set(key, i)
        else errors.push({ value: item, context: at, message: `repeats ${contextPath(c)}[${first}]` })
        values.push(result.right)
      }
      return errors.length > 0 ? t.failures(errors) : t.success(values)
    },
    t.identity,
  )
}

/** The same mailbox: a domain is case-insensitive, the part before the @ may not be (RFC 5321). */
const mailbox = (address: string): string => {
  const at = address.lastIndexOf('@')
  return `${address.slice(0, at)}@${address.slice(at + 1).toLowerCase()}`
}

export const EmailList = listOf('EmailList', EmailAddress, {
  min: 1,
  max: 50,
  what: 'email addresses',
  sameBy: mailbox,
})

export const TlsMode = withMessage(
  t.keyof({ none: null, starttls: null, tls: null }),
  () => 'must be one of none, starttls, tls',
  'TlsMode',
)

export const Labels = listOf('Labels', text('Label', 100), { min: 0, max: 20, what: 'labels' })
export const Assignees = listOf('Assignees', text('Assignee', 100), { min: 0, max: 10, what: 'user names' })

// GitHub owner and repository names: letters, digits, `-`, `_` and `.`.
export const GitHubName = refinedString(
  'GitHubName',
  (s) => /^[A-Za-z0-9_.-]{1,100}$/.test(s) && s !== '.' && s !== '..',
  'must be 1 to 100 letters, digits, "-", "_" or "."',
)

export const Milestone = withMessage(
  t.refinement(t.number, (n) => Number.isInteger(n) && n >= 1 && n <= 2_147_483_647, 'Milestone'),
  () => 'must be a milestone number (a positive integer up to 2147483647)',
)

export const JiraProjectKey = refinedString(
  'JiraProjectKey',
  (s) => /^[A-Z][A-Z0-9_]{1,99}$/.test(s),
  'must be a Jira project key: an uppercase letter, then uppercase letters, digits or "_"',
)

// Templates by field (`title`, `subject`, …) and per event type under `event_types`; the
// channel layer checks the fields and parses every template when the configuration is saved.
const MAX_TEMPLATES_BYTES = 64 * 1024
// Field, event type, field: anything deeper is not templates (and, nested thousands deep, would
// overflow the stack of the JSON.stringify that measures it).
const MAX_TEMPLATES_DEPTH = 4

/** Whether `value` nests objects and arrays at most `max` deep, looked at without recursion. */
const nestsWithin = (value: unknown, max: number): boolean => {
  const pending: { value: unknown; depth: number }[] = [{ value, depth: 0 }]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (typeof next.value !== 'object' || next.value === null) continue
    if (next.depth >= max) return false
    for (const child of Object.values(next.value)) pending.push({ value: child, depth: next.depth + 1 })
  }
  return true
}

export const Templates = withMessage(
  t.refinement(
    t.UnknownRecord,
    (r) => nestsWithin(r, MAX_TEMPLATES_DEPTH) && Buffer.byteLength(JSON.stringify(r)) <= MAX_TEMPLATES_BYTES,
    'Templates',
  ),
  () =>
    `must be an object of templates by field (and by event type under event_types), at most ${MAX_TEMPLATES_BYTES} bytes as JSON`,
)

export const DigestWindowSeconds = withMessage(
  t.union([t.null, t.refinement(t.number, (n) => Number.isInteger(n) && n >= 1 && n <= 86_400, 'Window')]),
  () => 'must be null or a whole number of seconds from 1 to 86400',
  'DigestWindowSeconds',
)

/**
 * The most deliveries of one configuration in flight at once: the bound of the
 * `notifications.delivery.max_in_flight.*` keys it overrides. Each one in flight holds a slot of
 * `notifications.delivery.concurrency` (256 by default) and an outbound connection, and a crash
 * may send up to this many again; beyond 64, one configuration could hold a quarter of the pool.
 */
export const MAX_IN_FLIGHT_LIMIT = 64

export const MaxInFlight = withMessage(
  t.union([
    t.null,
    t.refinement(t.number, (n) => Number.isInteger(n) && n >= 1 && n <= MAX_IN_FLIGHT_LIMIT, 'InFlight'),
  ]),
  () => `must be null or a whole number from 1 to ${MAX_IN_FLIGHT_LIMIT}`,
  'MaxInFlight',
)

export const LevelPattern = withMessage(
  t.keyof({ '*': null, info: null, warning: null, error: null }),
  () => 'must be one of *, info, warning, error',
  'LevelPattern',
)

// Event types and resource types are dotted identifiers; `*` is the only wildcard.
const PATTERN = /^[A-Za-z0-9_.:*-]{1,256}$/
export const TypePattern = refinedString(
  'TypePattern',
  (s) => PATTERN.test(s),
  'must be 1 to 256 letters, digits, ".", "_", "-", ":" or "*" (e.g. user.checks.* or *)',
)

export const SelectorScope = withMessage(
  t.keyof({ account: null, global: null }),
  () => 'must be one of account, global',
  'SelectorScope',
)

export const EventPattern = t.type({
  level: LevelPattern,
  type: TypePattern,
  resource_type: TypePattern,
})

const SelectorFields = t.type({ scope: SelectorScope, event: EventPattern })

const EVENT_SHAPE = 'an object with level, type and resource_type'

/**
 * A selector body's `scope` or `event` left out, or an `event` that is no object, in the API's
 * words: the codecs alone would answer `scope must be one of account, global` for a missing
 * scope, and name io-ts types (`expected { level: LevelPattern, … }`) for the event.
 */
export const selectorShapeIssues = (scope: unknown, event: unknown): FieldIssue[] => {
  const issues: FieldIssue[] = []
  if (scope === undefined) issues.push({ path: 'scope', message: 'is required: account or global' })
  if (event === undefined) issues.push({ path: 'event', message: `is required: ${EVENT_SHAPE}` })
  else if (typeof event !== 'object' || event === null || Array.isArray(event))
    issues.push({ path: 'event', message: `must be ${EVENT_SHAPE}` })
  return issues
}

/**
 * Validates a selector body's `scope` and `event`, saying first what is missing or misshapen
 * (`selectorShapeIssues`), then what the codecs find wrong elsewhere.
 */
export const validateSelectorFields = (scope: unknown, event: unknown) => {
  const shape = selectorShapeIssues(scope, event)
  const decoded = SelectorFields.decode({ scope, event })
  if (isLeft(decoded) || shape.length > 0) {
    const named = new Set(shape.map((i) => i.path))
    const wrong = isLeft(decoded) ? toFieldIssues(decoded.left).filter((i) => !named.has(i.path)) : []
    throw ValidationError.of('selector', [...shape, ...wrong])
  }
  return decoded.right
}

/**
 * The names a selector body's `event` holds that EventPattern does not know (`event.resourcetype`):
 * the codec alone would drop them, leaving a selector broader than the one asked for.
 */
export const unknownEventFields = (event: unknown): FieldIssue[] =>
  typeof event === 'object' && event !== null && !Array.isArray(event)
    ? unknownFields(event as Record<string, unknown>, Object.keys(EventPattern.props), 'event')
    : []

/**
 * Decodes `input` with `codec` or throws a ValidationError naming every bad field.
 *
 * @example
 * const body = validate(CreateWebhookConfigurationBody, await c.req.json(), 'webhook configuration')
 */
export const validate = <A, O>(codec: t.Type<A, O, unknown>, input: unknown, what: string): A => {
  const result = codec.decode(input)
  if (!isLeft(result)) return result.right
  const issues = toFieldIssues(result.left)
  throw ValidationError.of(what, issues)
}
