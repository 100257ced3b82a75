import { ENDPOINT_FIELDS } from './endpoint-fields.ts'
import { type EndpointConfiguration, type JsonValue, type Selector, takesMaxInFlight } from './model.ts'

/** What a set secret shows as, everywhere it could leave Herald. */
export const REDACTED = '<redacted>'

/**
 * A secret field as it may be shown: `null` when unset, the marker otherwise, with the origin of
 * a secret URL in front so a user can still tell which service it points at.
 */
export const shownSecret = (configuration: EndpointConfiguration, field: string): string | null => {
  if (configuration.secrets[field] === undefined) return null
  const hint = configuration.hints[field]
  return hint === undefined ? REDACTED : `${hint}/${REDACTED}`
}

/**
 * A value sent for a secret field that holds the marker: what a read showed in place of a
 * secret, never a secret itself. Sent back exactly as shown it stands for the stored value.
 */
export const holdsRedacted = (value: unknown): boolean =>
  typeof value === 'string' && value.includes(REDACTED)

/** Why a marker sent for a secret field cannot stand for a stored value. */
export const REDACTED_REFUSED = `is "${REDACTED}" (or holds it), which reads show in place of a secret: send the secret itself to set it, or leave it out (or send it exactly as read) to keep the stored one`

/**
 * A configuration in the API's shape (Anchore's snake_case, `uuid`), secrets redacted. The
 * one place a configuration becomes a response body.
 */
export const configurationView = (configuration: EndpointConfiguration): Record<string, JsonValue> => {
  const fields: Record<string, JsonValue> = {}
  for (const [name, spec] of Object.entries(ENDPOINT_FIELDS[configuration.endpoint])) {
    fields[name] =
      spec.secret === true ? shownSecret(configuration, name) : (configuration.settings[name] ?? null)
  }
  return {
    uuid: configuration.id,
    endpoint: configuration.endpoint,
    description: configuration.description,
    enabled: configuration.enabled,
    verify_tls: configuration.verifyTls,
    ...fields,
    templates: configuration.templates,
    digest: configuration.digest.enabled,
    digest_window_seconds: configuration.digest.windowSeconds,
    // GitHub and Jira do not have it: they always go one at a time.
    ...(takesMaxInFlight(configuration.endpoint) ? { max_in_flight: configuration.maxInFlight } : {}),
    created_at: configuration.createdAt,
    updated_at: configuration.updatedAt,
  }
}

export const selectorView = (selector: Selector): Record<string, JsonValue> => ({
  uuid: selector.id,
  configuration_uuid: selector.configurationId,
  scope: selector.scope,
  event: { ...selector.event },
  pattern: selector.pattern,
})
