/**
 * The environment override scheme: `HERALD_` + the upper-cased YAML path, levels joined by
 * `__` (`warehouse.clickhouse.url` → `HERALD_WAREHOUSE__CLICKHOUSE__URL`).
 */
import type { FieldIssue } from '../errors/index.ts'
import { type LeafType, type Node, nodesOf } from './spec.ts'
import { closest } from './suggest.ts'

export type Env = Readonly<Record<string, string | undefined>>

export const CONFIG_FILE_VARIABLE = 'HERALD_CONFIG'

/**
 * The defaults of the client commands (`herald publish`, `generate`, `rebuild-reports`, `log-reset`; see
 * src/cli/): where Herald runs and the token to call it with. An operator who exports them for
 * those commands must still be able to start the server on the same shell, so the server
 * ignores them rather than calling them unknown.
 */
export const CLIENT_VARIABLES: readonly string[] = ['HERALD_URL', 'HERALD_TOKEN']

const PREFIX = 'HERALD_'

/** Shorter names kept because deployments already use them; alias → canonical. */
export const ENV_ALIASES: Readonly<Record<string, string>> = {
  HERALD_OUTBOUND_ALLOWLIST: 'HERALD_OUTBOUND__ALLOWLIST',
}

export const envNameOf = (path: readonly string[]): string =>
  PREFIX + path.map((segment) => segment.toUpperCase()).join('__')

/** An overridable key: every leaf, and every optional group (which env can only clear). */
export interface EnvKey {
  readonly name: string
  readonly path: readonly string[]
  readonly node: Node
}

export const envKeysOf = (schema: Node): EnvKey[] =>
  nodesOf(schema)
    .filter(({ node }) => node.node === 'leaf' || node.nullable)
    .map(({ path, node }) => ({ name: envNameOf(path), path, node }))

const BOOLEANS: Readonly<Record<string, boolean>> = {
  true: true,
  false: false,
  '1': true,
  '0': false,
  yes: true,
  no: false,
}

/**
 * Turns an env string into the key's type where it can. A string that does not fit is passed
 * through unchanged so that validation reports it with the same wording as a bad file value.
 * An empty string means null for nullable keys and the empty list for lists.
 */
export const coerce = (type: LeafType<unknown>, raw: string): unknown => {
  if (raw === '' && type.nullable) return null
  switch (type.env) {
    case 'int': {
      const trimmed = raw.trim()
      return /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : raw
    }
    case 'number': {
      const trimmed = raw.trim()
      return /^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(trimmed) ? Number(trimmed) : raw
    }
    case 'bool':
      return BOOLEANS[raw.trim().toLowerCase()] ?? raw
    case 'list': {
      const items = raw
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '')
      const { element } = type
      return element === undefined ? items : items.map((item) => coerce(element, item))
    }
    case 'string':
      return raw
  }
}

export interface Override {
  readonly path: readonly string[]
  readonly value: unknown
  /** The variable as the user spelled it (an alias stays an alias), for messages. */
  readonly variable: string
}

export interface EnvReading {
  readonly overrides: readonly Override[]
  readonly issues: readonly FieldIssue[]
}

/**
 * Every `HERALD_*` variable must be a known key, `HERALD_CONFIG`, an alias or one of the
 * client commands' `CLIENT_VARIABLES`: a misspelt
 * override would otherwise be ignored without a word. Matching the prefix ignores case because
 * `Herald_Port` is a typo of `HERALD_PORT`, not somebody else's variable.
 */
export const readEnv = (schema: Node, env: Env): EnvReading => {
  const keys = new Map(envKeysOf(schema).map((k) => [k.name, k]))
  const known = [...keys.keys(), CONFIG_FILE_VARIABLE, ...Object.keys(ENV_ALIASES)]
  const overrides: Override[] = []
  const issues: FieldIssue[] = []

  for (const [variable, raw] of Object.entries(env)) {
    if (
      raw === undefined ||
      !variable.toUpperCase().startsWith(PREFIX) ||
      variable === CONFIG_FILE_VARIABLE ||
      CLIENT_VARIABLES.includes(variable)
    ) {
      continue
    }
    const canonical = ENV_ALIASES[variable]
    if (canonical !== undefined && env[canonical] !== undefined) {
      if (env[canonical] !== raw) {
        issues.push({
          path: variable,
          message: `is an alias of ${canonical} and both are set to different values; set only one`,
        })
      }
      continue
    }
    const key = keys.get(canonical ?? variable)
    if (key === undefined) {
      const suggestion = closest(variable.toUpperCase(), known, (name) => name.replaceAll('__', '_'))
      issues.push({
        path: variable,
        message: `unknown configuration variable${suggestion === undefined ? '' : `; did you mean ${suggestion}?`}`,
      })
      continue
    }
    if (key.node.node === 'leaf') {
      overrides.push({ path: key.path, value: coerce(key.node.type, raw), variable })
    } else if (raw === '') {
      overrides.push({ path: key.path, value: null, variable })
    } else {
      issues.push({
        path: `${key.path.join('.')} (${variable})`,
        message: `only an empty value (none) is accepted here; set its keys with ${variable}__<KEY> variables`,
      })
    }
  }
  // Clearing an optional group must not undo variables that set keys inside it.
  overrides.sort((a, b) => a.path.length - b.path.length)
  return { overrides, issues }
}
