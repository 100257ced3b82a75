import type { FieldIssue } from '../errors/index.ts'
import { decodeEngineEvent, type EngineEvent, eventKey } from '../events/index.ts'
import { createJsonValueScanner, type ReadValue } from './json-values.ts'

/** One event as read, with where it was: `line 7` (where it begins) or `[3]` (in a JSON array). */
export interface InputRecord {
  readonly where: string
  readonly value: unknown
}

/** An input problem at one place: a line that is not JSON, or an event's bad field. */
export interface InputProblem {
  readonly where: string
  readonly issues: readonly FieldIssue[]
}

export interface ParsedInput {
  readonly records: readonly InputRecord[]
  readonly problems: readonly InputProblem[]
}

/** A value read by the scanner, sorted into a record or a problem. */
export const sortValues = (
  read: readonly ReadValue[],
  into: { records: InputRecord[]; problems: InputProblem[] },
) => {
  for (const item of read) {
    if ('value' in item) into.records.push(item)
    else into.problems.push(item)
  }
}

/**
 * Reads events from text in any of the forms producers keep them (`createJsonValueScanner`): a
 * JSON array; NDJSON (one event per line, blank lines ignored); one JSON object, or several one
 * after another, pretty-printed or not (`jq .` output).
 *
 * @example
 * parseEventInput('{"id":"a",...}\n{"id":"b",...}\n').records.map((r) => r.where) // ['line 1', 'line 2']
 */
export const parseEventInput = (input: string): ParsedInput => {
  const scanner = createJsonValueScanner()
  const parsed = { records: [] as InputRecord[], problems: [] as InputProblem[] }
  sortValues(scanner.push(input), parsed)
  sortValues(scanner.end(), parsed)
  return parsed
}

export interface CheckedInput {
  readonly events: readonly EngineEvent[]
  readonly problems: readonly InputProblem[]
}

/**
 * Validates every record against the event catalog, as Herald will, and flags a repeated
 * (account, source, id), which Herald would reject in one batch and deduplicate across batches.
 * Events of one source and id for two accounts are two events to Herald, and sent as such.
 * With `maxEventBytes`, an event longer as JSON is flagged too: no request could carry it,
 * and batches before it would go out before it failed.
 */
export const checkEvents = (records: readonly InputRecord[], maxEventBytes?: number): CheckedInput => {
  const events: EngineEvent[] = []
  const problems: InputProblem[] = []
  const seen = new Map<string, string>()
  for (const { where, value } of records) {
    const decoded = decodeEngineEvent(value)
    if (!decoded.ok) {
      problems.push({ where, issues: decoded.issues })
      continue
    }
    if (maxEventBytes !== undefined) {
      const bytes = Buffer.byteLength(JSON.stringify(decoded.value))
      if (bytes > maxEventBytes) {
        problems.push({ where, issues: [{ path: '(event)', message: tooLarge(bytes, maxEventBytes) }] })
        continue
      }
    }
    const key = eventKey(decoded.value)
    const first = seen.get(key)
    if (first !== undefined) {
      problems.push({
        where,
        issues: [{ path: 'id', message: `repeats the account, source and id of ${first}` }],
      })
      continue
    }
    seen.set(key, where)
    events.push(decoded.value)
  }
  return { events, problems }
}

const tooLarge = (bytes: number, maxEventBytes: number): string =>
  `is ${bytes} bytes as JSON, more than one request to Herald holds (${maxEventBytes + 2} bytes)`

/** The report of bad input, one line per issue, at most `limit` lines. */
export const describeProblems = (problems: readonly InputProblem[], limit = 50): string => {
  const lines = problems.flatMap(({ where, issues }) =>
    issues.map((i) => `  ${where}: ${i.path}: ${i.message}`),
  )
  const shown = lines.slice(0, limit)
  if (lines.length > limit) shown.push(`  … and ${lines.length - limit} more`)
  return shown.join('\n')
}
