import kafkajs, { type logCreator } from 'kafkajs'

const { logLevel: KafkaLevel } = kafkajs

export type KafkaLogLevel = 'error' | 'warn' | 'info' | 'debug'

export interface KafkaLogEntry {
  readonly level: KafkaLogLevel
  /** `kafka_event_log.<event>`; lines from kafkajs itself are `kafka_event_log.client`. */
  readonly event: string
  readonly message: string
  readonly fields: Readonly<Record<string, unknown>>
}

/** Where the adapter's and kafkajs's log lines go; see `createKafkaEventLog`'s `logger`. */
export type KafkaEventLogLogger = (entry: KafkaLogEntry) => void

const rank: Record<KafkaLogLevel, number> = { error: 1, warn: 2, info: 4, debug: 5 }

export const toKafkaLevel = (level: KafkaLogLevel): number => rank[level]

const fromKafkaLevel = (level: number): KafkaLogLevel =>
  level <= KafkaLevel.ERROR
    ? 'error'
    : level <= KafkaLevel.WARN
      ? 'warn'
      : level <= KafkaLevel.INFO
        ? 'info'
        : 'debug'

// JSON.stringify renders an Error as `{}`; keep what identifies it.
const errorsAsText = (_key: string, value: unknown): unknown =>
  value instanceof Error ? `${value.name}: ${value.message}` : value

/** One JSON line per error on stderr: enough to notice an outage, silent otherwise. */
export const stderrErrors: KafkaEventLogLogger = (entry) => {
  if (entry.level !== 'error') return
  const line = { ...entry.fields, level: entry.level, event: entry.event, message: entry.message }
  process.stderr.write(`${JSON.stringify(line, errorsAsText)}\n`)
}

/** Routes kafkajs's logger into ours; kafkajs already dropped lines below its `logLevel`. */
export const kafkajsLogCreator =
  (logger: KafkaEventLogLogger): logCreator =>
  () =>
  ({ namespace, level, log }) => {
    const { message, timestamp: _timestamp, logger: _logger, ...fields } = log
    logger({
      level: fromKafkaLevel(level),
      event: 'kafka_event_log.client',
      message: String(message),
      fields: { namespace, ...fields },
    })
  }
