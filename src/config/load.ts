import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { isLeft } from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import { ConfigError, type FieldIssue } from '../errors/index.ts'
import { CONFIG_FILE_VARIABLE, type Env, type Override, readEnv } from './env.ts'
import { type ConfigFile, type ReadFile, readConfigFile } from './file.ts'
import { scrubCredentials } from './redact.ts'
import { checkRules } from './rules.ts'
import { schema } from './schema.ts'
import { codecOf, MAX_TIMER_MS, type Node, nodeAt } from './spec.ts'
import { closest } from './suggest.ts'
import type { Config, EventLogConfig, NotificationsConfig } from './types.ts'

export interface LoadConfigOptions {
  /** The environment; only the caller (src/cli.ts) reads `process.env`. */
  readonly env: Env
  /** Reads the file named by `HERALD_CONFIG`; `fs.readFileSync` as UTF-8 by default. */
  readonly readFile?: ReadFile
  /** Resolves a relative `HERALD_CONFIG` and `data_dir`; `process.cwd()` by default. */
  readonly cwd?: string
}

type Tree = Record<string, unknown>

const isTree = (value: unknown): value is Tree =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const codec = codecOf(schema)

const formatPath = (path: readonly string[]): string =>
  path.reduce(
    (out, segment) => (/^\d+$/.test(segment) ? `${out}[${segment}]` : out ? `${out}.${segment}` : segment),
    '',
  )

const unknownKeys = (node: Node, value: unknown, path: readonly string[], file: ConfigFile): FieldIssue[] => {
  if (node.node !== 'group' || !isTree(value)) return []
  return Object.entries(value).flatMap(([name, child]) => {
    const known = node.shape[name]
    if (known !== undefined) return unknownKeys(known, child, [...path, name], file)
    const suggestion = closest(name, Object.keys(node.shape))
    const where = file.locate([...path, name])
    return [
      {
        path: `${formatPath([...path, name])}${where === undefined ? '' : ` (${where})`}`,
        message: `unknown key${suggestion === undefined ? '' : `; did you mean ${suggestion}?`}`,
      },
    ]
  })
}

/** Writes an env override into the file's tree, creating the levels the file left out. */
const applyOverride = (tree: Tree, { path, value }: Override): void => {
  let level = tree
  for (const segment of path.slice(0, -1)) {
    const next = level[segment]
    if (next === undefined || next === null) level[segment] = {}
    else if (!isTree(next)) return // the file's own value is wrong here and is reported as such
    level = level[segment] as Tree
  }
  level[path[path.length - 1] ?? ''] = value
}

/**
 * Fills what neither the file nor the environment gave. A group written as an empty YAML key
 * (`notifications:` with every child commented out) reads as null, and means "all defaults".
 */
const withDefaults = (node: Node, value: unknown): unknown => {
  // Cloned so that freezing a loaded config never freezes the schema's own default lists.
  if (node.node === 'leaf') return value === undefined ? structuredClone(node.fallback?.value) : value
  if (value === undefined || value === null) {
    if (node.nullable) return null
    value = {}
  }
  if (!isTree(value)) return value
  const out: Tree = {}
  for (const [name, child] of Object.entries(node.shape)) out[name] = withDefaults(child, value[name])
  return out
}

/** What a value is, without what it says: for places that may not echo it. */
const kindOf = (value: unknown): string => {
  if (Array.isArray(value)) return 'a list'
  if (value === null) return 'null'
  return typeof value === 'object' ? 'a mapping' : `a ${typeof value}`
}

const show = (value: unknown): string => {
  if (typeof value === 'string') {
    const scrubbed = scrubCredentials(value)
    return JSON.stringify(scrubbed.length > 80 ? `${scrubbed.slice(0, 77)}...` : scrubbed)
  }
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object' && value !== null) return 'a mapping'
  return String(value)
}

/** The one place a value is echoed into a message, and never a secret's. */
const describe = (
  error: t.ValidationError,
): { path: readonly string[]; message: string; group?: readonly string[] } => {
  const path = error.context.slice(1).map((entry) => entry.key)
  const { node, depth } = nodeAt(schema, path)
  const keyPath = path.slice(0, depth)
  if (error.value === undefined) {
    const parent = keyPath.slice(0, -1)
    const container = nodeAt(schema, parent).node
    const inOptionalGroup = container.node === 'group' && container.nullable
    return inOptionalGroup
      ? { path: keyPath, message: `required when ${parent.join('.')} is set`, group: parent }
      : { path: keyPath, message: 'required' }
  }
  if (node.node === 'group') {
    // Not echoed: a section written as one string (`sasl: plain:herald:hunter2`) may hold its secrets.
    const expected = node.nullable ? 'expected a mapping, or null' : 'expected a mapping'
    return { path, message: `${expected}, got ${kindOf(error.value)}` }
  }
  const reason = error.message ?? `expected ${node.type.expected}`
  return { path, message: node.secret === false ? `${reason}, got ${show(error.value)}` : reason }
}

const suffix = (source: { variable: string } | { line: string } | undefined): string =>
  source === undefined ? '' : ` (${'variable' in source ? source.variable : source.line})`

const deepFreeze = <T>(value: T): T => {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

/**
 * Reads the YAML file named by `HERALD_CONFIG` (if set), applies `HERALD_*` overrides,
 * validates and fills defaults. Throws one `ConfigError` listing every problem found: unknown
 * keys and variables, bad values (never echoing a secret) and broken cross-key rules.
 *
 * @example
 * const config = loadConfig({ env: process.env })
 * createWarehouse(config.warehouse)
 */
export const loadConfig = (options: LoadConfigOptions): Config => {
  const { env } = options
  const cwd = options.cwd ?? process.cwd()
  const issues: FieldIssue[] = []

  let tree: Tree = {}
  let file: ConfigFile | undefined
  const fileName = env[CONFIG_FILE_VARIABLE]
  if (fileName !== undefined && fileName !== '') {
    const reading = readConfigFile(fileName, resolve(cwd, fileName), options.readFile ?? readUtf8)
    if (!reading.ok) throw new ConfigError(reading.issues)
    file = reading.file
    if (isTree(file.tree)) {
      tree = structuredClone(file.tree)
      issues.push(...unknownKeys(schema, tree, [], file))
    } else {
      issues.push({
        path: fileName,
        message: `expected a mapping of configuration keys, got ${kindOf(file.tree)}`,
      })
    }
  }

  const fromEnv = readEnv(schema, env)
  issues.push(...fromEnv.issues)
  const variables = new Map<string, string>()
  for (const override of fromEnv.overrides) {
    applyOverride(tree, override)
    variables.set(override.path.join('.'), override.variable)
  }

  /** Where a key's value came from: its variable, its file line, or undefined for a default. */
  const sourceOf = (path: readonly string[]): { variable: string } | { line: string } | undefined => {
    const { depth } = nodeAt(schema, path)
    const variable = variables.get(path.slice(0, depth).join('.'))
    if (variable !== undefined) return { variable }
    const line = file?.locate(path)
    return line === undefined ? undefined : { line }
  }
  const located = ({ path, message }: { path: readonly string[]; message: string }): FieldIssue => ({
    path: `${formatPath(path)}${suffix(sourceOf(path))}`,
    message,
  })

  /** Where an optional group was set: by the first variable of one of its keys, or its file line. */
  const groupOrigin = (group: readonly string[]): string => {
    const prefix = `${group.join('.')}.`
    for (const [path, variable] of variables) if (path.startsWith(prefix)) return `, as set by ${variable}`
    const line = file?.locate(group)
    return line === undefined ? '' : `, as set at ${line}`
  }

  const merged = withDefaults(schema, tree)
  const decoded = codec.decode(merged)
  if (isLeft(decoded))
    issues.push(
      ...decoded.left
        .map(describe)
        .map(({ path, message, group }) =>
          located({ path, message: group === undefined ? message : `${message}${groupOrigin(group)}` }),
        ),
    )

  const get = (path: string): unknown =>
    path.split('.').reduce<unknown>((value, segment) => (isTree(value) ? value[segment] : undefined), merged)
  const origin = (path: string): string => {
    const source = sourceOf(path.split('.'))
    return source === undefined
      ? ''
      : 'variable' in source
        ? `, as set by ${source.variable}`
        : `, as set at ${source.line}`
  }
  issues.push(...checkRules({ get, origin }).map(located))

  if (issues.length > 0 || isLeft(decoded)) throw new ConfigError(issues)
  const config = decoded.right as Config
  return deepFreeze({ ...config, data_dir: resolve(cwd, config.data_dir) })
}

const readUtf8: ReadFile = (path) => readFileSync(path, 'utf8')

/** `loadConfig` for the real process: its environment and working directory. */
export const loadConfigFromProcess = (): Config => loadConfig({ env: process.env, cwd: process.cwd() })

/**
 * Partitions of a topic Herald creates: `event_log.partitions`, or when it is unset 1 on the
 * embedded log (one process reads every partition on one event loop, so more would only split
 * its batches) and 3 on Kafka (room for more consumers in a group).
 */
export const topicPartitions = (eventLog: Pick<EventLogConfig, 'kind' | 'partitions'>): number =>
  eventLog.partitions ?? (eventLog.kind === 'embedded' ? 1 : 3)

/**
 * The time limit of one delivery attempt, all its requests together:
 * `notifications.delivery.attempt_timeout_ms`, or when it is unset twice `webhook_timeout_ms`
 * (room for a GitHub or Jira filing's several requests), at most the longest timer Node.js sets.
 */
export const attemptTimeoutOf = (
  notifications: Pick<NotificationsConfig, 'webhook_timeout_ms' | 'delivery'>,
): number =>
  notifications.delivery.attempt_timeout_ms ?? Math.min(2 * notifications.webhook_timeout_ms, MAX_TIMER_MS)
