import type { FieldIssue } from '../errors/index.ts'
import { decodeEngineEvent, type EngineEvent, eventKey } from '../events/index.ts'

/** One event as read, with where it was: `line 7` (NDJSON), `[3]` (a JSON array) or `event`. */
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

/**
 * Reads events from text in any of the forms producers keep them: a JSON array, one JSON
 * object (pretty-printed or not), or NDJSON (one event per line, blank lines ignored).
 *
 * @example
 * parseEventInput('{"id":"a",...}\n{"id":"b",...}\n').records.map((r) => r.where) // ['line 1', 'line 2']
 */
export const parseEventInput = (input: string): ParsedInput => {
  // A byte-order mark (editors on Windows write one) is no part of the first line's JSON.
  const text = input.startsWith('\uFEFF') ? input.slice(1) : input
  const trimmed = text.trim()
  if (trimmed === '') return { records: [], problems: [] }
  if (trimmed.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(trimmed)
      if (Array.isArray(parsed)) {
        return { records: parsed.map((value, i) => ({ where: `[${i}]`, value })), problems: [] }
      }
    } catch (error) {
      return {
        records: [],
        problems: [
          {
            where: 'input',
            issues: [{ path: '(root)', message: `not a JSON array: ${(error as Error).message}` }],
          },
        ],
      }
    }
  }
  // One object, possibly spread over lines; else one object per line.
  try {
    return { records: [{ where: 'event', value: JSON.parse(trimmed) as unknown }], problems: [] }
  } catch {
    // Not one document: NDJSON.
  }
  const records: InputRecord[] = []
  const problems: InputProblem[] = []
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return
    const where = `line ${i + 1}`
    try {
      records.push({ where, value: JSON.parse(line) as unknown })
    } catch (error) {
      problems.push({ where, issues: [{ path: '(line)', message: `not JSON: ${(error as Error).message}` }] })
    }
  })
  return { records, problems }
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
