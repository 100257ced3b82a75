import type { FieldIssue } from '../errors/index.ts'
import type { LogMessage, OutgoingMessage } from '../ports/event-log.ts'
import type { IngressFailure, IngressFailureCode } from './decode.ts'

/**
 * Dead-letter headers. The value and key are the original's, byte for byte, and its own
 * headers are kept (binary-mode `ce_` attributes included), so a fixed message can be
 * replayed by copying it back to its topic without the `herald.*` headers.
 */
export const DeadLetterHeaders = {
  code: 'herald.error.code',
  message: 'herald.error.message',
  /** The issues as a JSON array of `{path, message}`, cut to a bounded size. */
  issues: 'herald.error.issues',
  topic: 'herald.original.topic',
  partition: 'herald.original.partition',
  offset: 'herald.original.offset',
  timestamp: 'herald.original.timestamp',
  /** The consumer group that set the message aside. */
  group: 'herald.dead_letter.group',
  at: 'herald.dead_letter.at',
  /** Set on a letter sent without the original's value, too large for the log: its size in bytes. */
  valueOmitted: 'herald.dead_letter.value_omitted',
} as const

const MAX_MESSAGE_CHARS = 1_000
const MAX_ISSUES_CHARS = 4_000

const cut = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`)

const issuesJson = (issues: readonly FieldIssue[]): string => {
  const kept: FieldIssue[] = []
  let size = 2
  for (const issue of issues) {
    const entry = { path: cut(issue.path, 200), message: cut(issue.message, 300) }
    size += JSON.stringify(entry).length + 1
    if (size > MAX_ISSUES_CHARS) break
    kept.push(entry)
  }
  return JSON.stringify(kept)
}

/**
 * The `herald.*` headers every dead letter carries: why it was set aside (`code`, `message`
 * and `issues`, cut to a bounded size), by which consumer group, and when.
 *
 * @example
 * reasonHeaders({ code: 'digest_undeliverable', message: 'holds no event', issues: [] }, { group: 'herald-router', now })
 */
export const reasonHeaders = (
  reason: { readonly code: string; readonly message: string; readonly issues: readonly FieldIssue[] },
  context: { readonly group: string; readonly now: number },
): Record<string, string> => ({
  [DeadLetterHeaders.code]: reason.code,
  [DeadLetterHeaders.message]: cut(reason.message, MAX_MESSAGE_CHARS),
  [DeadLetterHeaders.issues]: issuesJson(reason.issues),
  [DeadLetterHeaders.group]: context.group,
  [DeadLetterHeaders.at]: new Date(context.now).toISOString(),
})

/**
 * The dead letter of `message`, keyed as the original so it lands in the DLQ partition that
 * matches the original's.
 *
 * @example
 * toDeadLetter(message, failure, { group: 'herald-router', now: Date.now() })
 * // { key: 'acme', value: <original bytes>, headers: { 'herald.error.code': 'schema_not_found', ... } }
 */
export const toDeadLetter = (
  message: LogMessage,
  failure: IngressFailure,
  context: { readonly group: string; readonly now: number },
): OutgoingMessage => {
  // No prototype: a header may be named `__proto__`, and it must be copied like any other.
  const headers: Record<string, string> = Object.create(null)
  for (const [name, value] of Object.entries(message.headers)) {
    if (!name.startsWith('herald.')) headers[name] = value
  }
  Object.assign(headers, reasonHeaders(failure, context))
  headers[DeadLetterHeaders.topic] = message.topic
  headers[DeadLetterHeaders.partition] = String(message.partition)
  headers[DeadLetterHeaders.offset] = String(message.offset)
  headers[DeadLetterHeaders.timestamp] = String(message.timestamp)
  return { key: message.key, value: message.value, headers }
}

/**
 * `letter` without the original's value, for one larger than the log takes: its headers still
 * say why, and where the original stays (`herald.original.*`), and
 * `herald.dead_letter.value_omitted` how large its value is.
 *
 * @example
 * withoutValue(toDeadLetter(message, failure, context)).value // empty
 */
export const withoutValue = (letter: OutgoingMessage): OutgoingMessage => {
  const headers: Record<string, string> = Object.create(null)
  Object.assign(headers, letter.headers)
  headers[DeadLetterHeaders.valueOmitted] = String(letter.value.byteLength)
  return { key: letter.key, value: new Uint8Array(0), headers }
}

export interface DeadLetterInfo {
  readonly code: IngressFailureCode
  readonly message: string
  readonly issues: readonly FieldIssue[]
  readonly topic: string
  readonly partition: number
  readonly offset: number
}

/** Reads the `herald.*` headers of a dead letter back; undefined when they are missing. */
export const readDeadLetter = (message: Pick<LogMessage, 'headers'>): DeadLetterInfo | undefined => {
  const h = message.headers
  const code = h[DeadLetterHeaders.code]
  const topic = h[DeadLetterHeaders.topic]
  if (code === undefined || topic === undefined) return undefined
  let issues: FieldIssue[] = []
  try {
    issues = JSON.parse(h[DeadLetterHeaders.issues] ?? '[]') as FieldIssue[]
  } catch {
    // A DLQ reader should still see the code and position of a letter whose issues were cut.
  }
  return {
    code: code as IngressFailureCode,
    message: h[DeadLetterHeaders.message] ?? '',
    issues,
    topic,
    partition: Number(h[DeadLetterHeaders.partition]),
    offset: Number(h[DeadLetterHeaders.offset]),
  }
}
