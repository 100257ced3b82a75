import { isDeepStrictEqual } from 'node:util'
import type { FieldIssue } from '../errors/index.ts'
import { ConfigurationOptions } from './configuration.ts'
import { fieldSpec } from './endpoint-fields.ts'
import type { EndpointConfiguration, EndpointType, Selector } from './model.ts'
import { configurationView, selectorView } from './views.ts'

const OPTION_NAMES = new Set(Object.keys(ConfigurationOptions.props))

/**
 * What a read shows of a configuration besides its fields and options. No request sets them,
 * but a configuration read earlier may be sent back whole (GET, change, PUT) with each of them
 * as it was read; any other value would be ignored, so it is refused.
 */
const READ_ONLY = new Set(['uuid', 'endpoint', 'created_at', 'updated_at', 'selectors'])

/** A configuration body split by kind of name; `issues` names every name that is none of them. */
export interface ConfigurationBody {
  /** The endpoint's fields, secrets in plaintext. */
  readonly fields: Readonly<Record<string, unknown>>
  readonly options: Readonly<Record<string, unknown>>
  readonly readOnly: Readonly<Record<string, unknown>>
  readonly issues: readonly FieldIssue[]
}

/**
 * Splits a create, update or unsaved-test body. Names are looked up as own properties only, so
 * `__proto__` or `constructor` is an unknown field, not a lookup that finds something.
 *
 * @example
 * configurationBody('webhook', { url: 'https://hooks.example.com/a', description: 'x', colour: 1 })
 * // fields { url }, options { description }, issues [{ path: 'colour', … }]
 */
export const configurationBody = (
  endpoint: EndpointType,
  body: Readonly<Record<string, unknown>>,
): ConfigurationBody => {
  const fields: Record<string, unknown> = {}
  const options: Record<string, unknown> = {}
  const readOnly: Record<string, unknown> = {}
  const issues: FieldIssue[] = []
  for (const name of Object.keys(body)) {
    const value = body[name]
    if (fieldSpec(endpoint, name) !== undefined) fields[name] = value
    else if (OPTION_NAMES.has(name)) options[name] = value
    else if (READ_ONLY.has(name)) readOnly[name] = value
    else issues.push({ path: name, message: `is not a ${endpoint} configuration field` })
  }
  return { fields, options, readOnly, issues }
}

/**
 * The read-only names of a body whose values differ from what a read of the stored
 * configuration shows (a UUID in any case); with nothing stored (a create), all but an
 * `endpoint` naming the type being created.
 */
export const changedReadOnly = (
  endpoint: EndpointType,
  readOnly: Readonly<Record<string, unknown>>,
  stored?: { readonly configuration: EndpointConfiguration; readonly selectors: readonly Selector[] },
): FieldIssue[] => {
  const shown: Record<string, unknown> =
    stored === undefined
      ? { endpoint }
      : {
          ...configurationView(stored.configuration),
          selectors: stored.selectors.map(selectorView),
        }
  const issues: FieldIssue[] = []
  for (const [name, value] of Object.entries(readOnly)) {
    const sent = name === 'uuid' && typeof value === 'string' ? value.toLowerCase() : value
    if (Object.hasOwn(shown, name) && isDeepStrictEqual(sent, shown[name])) continue
    issues.push({
      path: name,
      message:
        stored === undefined
          ? 'is read-only: Herald sets it'
          : 'is read-only: leave it out, or send it as a read of the configuration shows it now',
    })
  }
  return issues
}
