import { pino } from 'pino'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export type LogFields = Readonly<Record<string, unknown>>

/**
 * Herald's logger: one structured line per event, named `<component>.<event>`
 * (`router.batch_routed`, `delivery.webhook.sent`) with fields. Components receive it as a
 * plain function so tests can capture lines without a logging library.
 *
 * @example
 * logger('info', 'herald.started', { url: 'http://0.0.0.0:8228', startup_ms: 2140 })
 */
export type Logger = (level: LogLevel, event: string, fields?: LogFields) => void

export const silentLogger: Logger = () => {}

/** Field names whose values are never written, wherever they appear in a line. */
const REDACTED_KEYS = [
  'password',
  'token',
  'secret',
  'signing_secret',
  'signingSecret',
  'authorization',
  'admin_token',
  'api_token',
  'encryption_key',
]

/** The keys every line has of its own: the event's name, its level, its time, the service. */
const LINE_KEYS = new Set(['event', 'level', 'time', 'service'])

/**
 * `fields` as a line writes them: one named as a key the line has of its own is written as
 * `field_<name>`, since pino would write both and a JSON reader keeps only one of the two.
 */
const ownFields = (fields: LogFields): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(fields))
    out[LINE_KEYS.has(name) ? `field_${name}` : name] = value
  return out
}

export interface LoggerOptions {
  readonly level: LogLevel
  /** Where lines go; standard output by default. */
  readonly destination?: NodeJS.WritableStream
}

/** Herald's logger that also writes the `fatal` line a process ends after. */
export type ProcessLogger = Logger & { readonly fatal: (event: string, fields?: LogFields) => void }

/** JSON lines through pino, with secret-looking fields redacted at any depth up to three. */
export const createLogger = ({ level, destination }: LoggerOptions): ProcessLogger => {
  const paths = REDACTED_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`])
  const base = pino(
    {
      level,
      base: { service: 'herald' },
      messageKey: 'event',
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ sync: true }),
  )
  const logger: Logger = (lineLevel, event, fields = {}) => {
    base[lineLevel](ownFields(fields), event)
  }
  return Object.assign(logger, {
    fatal: (event: string, fields: LogFields = {}) => base.fatal(ownFields(fields), event),
  })
}
