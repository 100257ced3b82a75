/**
 * Rules that span keys. They read the merged (defaulted, not yet decoded) tree so that they
 * still run when some unrelated key is bad, and each fires only when the keys it reads hold
 * valid values: a bad value is reported once, by its own key.
 */

export interface RuleIssue {
  readonly path: readonly string[]
  readonly message: string
}

export interface RuleInput {
  readonly get: (path: string) => unknown
  /** `, as set by HERALD_X` or `, as set at file:line`; `''` for a default. */
  readonly origin: (path: string) => string
}

type Rule = (input: RuleInput) => readonly RuleIssue[]

const split = (path: string): readonly string[] => path.split('.')

const requiredWhen =
  (
    selector: string,
    selected: string,
    required: string,
    missing: (value: unknown) => boolean,
    what = 'required',
  ): Rule =>
  ({ get, origin }) =>
    get(selector) === selected && missing(get(required))
      ? [{ path: split(required), message: `${what} when ${selector} is ${selected}${origin(selector)}` }]
      : []

const isNull = (value: unknown): boolean => value === null
const isEmptyList = (value: unknown): boolean => Array.isArray(value) && value.length === 0

const together =
  (a: string, b: string): Rule =>
  ({ get, origin }) => {
    const [va, vb] = [get(a), get(b)]
    const given = (v: unknown): boolean => typeof v === 'string'
    if (given(va) && vb === null)
      return [{ path: split(b), message: `required when ${a} is set${origin(a)}` }]
    if (given(vb) && va === null)
      return [{ path: split(a), message: `required when ${b} is set${origin(b)}` }]
    return []
  }

const TOPICS = ['events', 'dlq', 'deliveries', 'outcomes', 'metrics'] as const

/** Two roles sharing one topic would feed, say, delivery commands to the projector. */
const distinctTopics: Rule = ({ get, origin }) => {
  const seen = new Map<unknown, string>()
  const issues: RuleIssue[] = []
  for (const topic of TOPICS) {
    const path = `event_log.topics.${topic}`
    const name = get(path)
    if (typeof name !== 'string') continue
    const first = seen.get(name)
    if (first === undefined) seen.set(name, path)
    else
      issues.push({
        path: split(path),
        message: `same topic as ${first}${origin(first)}; every topic must be distinct`,
      })
  }
  return issues
}

/** An attempt makes at least one request, so it may take as long as one does. */
const attemptCoversRequest: Rule = ({ get, origin }) => {
  const attempt = get('notifications.delivery.attempt_timeout_ms')
  const request = get('notifications.webhook_timeout_ms')
  // Unset (null), it is twice the request limit.
  if (typeof attempt !== 'number' || typeof request !== 'number' || attempt >= request) return []
  return [
    {
      path: split('notifications.delivery.attempt_timeout_ms'),
      message: `must be at least notifications.webhook_timeout_ms (${request}${origin('notifications.webhook_timeout_ms')})`,
    },
  ]
}

export const rules: readonly Rule[] = [
  requiredWhen('authorization_handler', 'external', 'authorization_handler_config.endpoint', isNull),
  requiredWhen(
    'event_log.kind',
    'kafka',
    'event_log.kafka.brokers',
    isEmptyList,
    'at least one broker is required',
  ),
  requiredWhen('event_store.kind', 'kurrentdb', 'event_store.kurrentdb.connection_string', isNull),
  requiredWhen('warehouse.kind', 'clickhouse', 'warehouse.clickhouse.url', isNull),
  requiredWhen('schema_registry.kind', 'confluent', 'schema_registry.confluent.url', isNull),
  together('schema_registry.confluent.username', 'schema_registry.confluent.password'),
  distinctTopics,
  attemptCoversRequest,
]

export const checkRules = (input: RuleInput): RuleIssue[] => rules.flatMap((rule) => rule(input))
