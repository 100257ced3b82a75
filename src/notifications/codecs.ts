import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { ValidationError } from '../errors/index.ts'
import { toFieldIssues, withMessage } from '../events/index.ts'

const refinedString = (name: string, test: (s: string) => boolean, message: string) =>
  withMessage(t.refinement(t.string, test, name), (u) =>
    typeof u === 'string' ? message : 'must be a string',
  )

export const Uuid = refinedString(
  'Uuid',
  (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s),
  'must be a UUID',
)

export const Account = refinedString(
  'Account',
  (s) => s.trim().length > 0 && s.length <= 256,
  'must be a non-empty account name',
)

const MAX_URL_LENGTH = 2048

const isWebhookUrl = (s: string): boolean => {
  if (s.length > MAX_URL_LENGTH) return false
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
  `must be an http or https URL without credentials, at most ${MAX_URL_LENGTH} characters`,
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

export const Description = refinedString(
  'Description',
  (s) => s.length <= 1024,
  'must be at most 1024 characters',
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
  throw new ValidationError(
    `invalid ${what}: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
    issues,
  )
}
