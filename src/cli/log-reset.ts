import { parseArgs } from 'node:util'
import {
  bearerTokenOf,
  type CliDeps,
  callAdmin,
  durationOption,
  EXIT_FAILED,
  EXIT_OK,
  heraldBaseUrl,
  quoteArgument,
  readCommandLine,
  refusal,
  UsageError,
  writeText,
} from './io.ts'
import { DEFAULT_TIMEOUT_MS } from './retry.ts'

export const LOG_RESET_USAGE = `usage: herald log-reset [--url <url>] [--token <token>]
       herald log-reset [options] --accept <topic>/<partition>@<position>... | --accept --all

Lists the event log resets the running Herald's projector found under the report tables (a
topic deleted and created again, the embedded event log file removed). The projector leaves
such a partition alone, and /ready answers 503, until the reset is accepted. With --accept,
accepts the pending resets named as the listing names them (engine.events/0@5: the partition,
and the position the tables were projected through when it was found), all of them or none,
so a reset found after the listing is never accepted unseen: the new log is projected after
everything the report tables hold, which stay. Accept only a reset that was meant; otherwise
restore the log the tables were projected from (projections/README.md, "A reset event log").

  --url <url>            Herald's base URL, default HERALD_URL or http://localhost:8228;
                         http or https, without user:password@
  --token <token>        an admin bearer token; default HERALD_TOKEN. Printable
                         characters without whitespace, else refused (exit 2)
  --timeout <d>          how long a request may go unanswered: 250ms, 30s, 1m; default 30s
  --accept <reset>...    accept these pending resets, as the listing names them
  --all                  with --accept: every pending reset, whichever they are
  -h, --help             show this help

exit status: 0 listed or accepted; 1 none to accept (or not each one named), refused or
unreachable; 2 bad command line.`

/** A reset as `GET /v1/reports/log-reset` lists it (`RecordedLogReset`). */
export interface ListedReset {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly projectedThrough: number
  readonly event: string
  readonly projectedEvent: string
  readonly detectedAt: string
  readonly state: 'pending' | 'accepted'
  readonly base: number | null
  readonly acceptedAt: string | null
}

/** One reset on a line: where, its state, and what the projector found or does now. */
const resetLine = (reset: ListedReset): string => {
  const where = `${reset.topic}/${reset.partition}`
  if (reset.state === 'accepted')
    return `${where}: accepted at ${reset.acceptedAt}: its new log is projected from position ${reset.base} (found ${reset.detectedAt} at offset ${reset.offset})`
  return `${where}: pending since ${reset.detectedAt}: offset ${reset.offset} holds event ${reset.event}, where the report tables hold event ${reset.projectedEvent} (projected through position ${reset.projectedThrough})`
}

/** `engine.events/0@5`: how `--accept` names a reset, and `POST`'s body identifies it. */
export const resetName = (reset: Pick<ListedReset, 'topic' | 'partition' | 'projectedThrough'>): string =>
  `${reset.topic}/${reset.partition}@${reset.projectedThrough}`

/** The listing: each reset, then what to do about the pending ones, naming them for --accept. */
export const listText = (resets: readonly ListedReset[]): string => {
  if (resets.length === 0) return 'no log resets: the projector found none under the report tables\n'
  const pending = resets.filter((reset) => reset.state === 'pending')
  const accept = `herald log-reset --accept ${pending.map(resetName).join(' ')}`
  const advice =
    pending.length === 0
      ? []
      : pending.length === 1
        ? [
            '1 pending: the projector leaves that partition alone until it is accepted. If its log was reset on ' +
              'purpose (a topic deleted and created again, the embedded event log file removed), accept it with ' +
              `${accept}; otherwise restore the log the report tables were projected from.`,
          ]
        : [
            `${pending.length} pending: the projector leaves those partitions alone until they are accepted. If their logs ` +
              'were reset on purpose (a topic deleted and created again, the embedded event log file removed), ' +
              `accept them with ${accept}; otherwise restore the logs the report tables were ` +
              'projected from.',
          ]
  return `${[...resets.map(resetLine), ...advice].join('\n')}\n`
}

const RESET_NAME = /^(.+)\/(\d+)@(\d+)$/

/** What `--accept` was given: the resets named, or every pending one (`--all`). */
const acceptance = (
  values: { readonly accept?: boolean | undefined; readonly all?: boolean | undefined },
  names: readonly string[],
): 'none' | 'all' | { topic: string; partition: number; projectedThrough: number }[] => {
  if (values.accept !== true) {
    if (values.all === true) throw new UsageError('--all goes with --accept')
    if (names.length > 0) throw new UsageError(`unexpected argument ${quoteArgument(names[0] ?? '')}`)
    return 'none'
  }
  if (values.all === true) {
    if (names.length > 0) throw new UsageError('give --accept the resets to accept or --all, not both')
    return 'all'
  }
  if (names.length === 0)
    throw new UsageError(
      '--accept needs the resets to accept as the listing names them (engine.events/0@5), or --all for every pending one',
    )
  return names.map((name) => {
    const match = RESET_NAME.exec(name)
    if (match === null)
      throw new UsageError(
        `--accept: ${quoteArgument(name)} is not a reset as the listing names it, <topic>/<partition>@<position>`,
      )
    return { topic: match[1] as string, partition: Number(match[2]), projectedThrough: Number(match[3]) }
  })
}

/** What an acceptance did: where each new log goes, and when the projector takes it up. */
export const acceptedText = (accepted: readonly ListedReset[]): string =>
  `${[
    ...accepted.map(
      (reset) =>
        `accepted ${reset.topic}/${reset.partition}: its new log is projected from position ${reset.base}, after everything the report tables hold`,
    ),
    `the projector takes ${accepted.length === 1 ? 'the partition' : 'the partitions'} up again at its next try, within a few seconds`,
  ].join('\n')}\n`

const numberOrNull = (value: unknown): number | null => (typeof value === 'number' ? value : null)
const stringOrNull = (value: unknown): string | null => (typeof value === 'string' ? value : null)

/** The resets of an answer's `field`, as the command prints them. */
const resetsOf = (body: Record<string, unknown>, field: 'resets' | 'accepted'): ListedReset[] => {
  const list = body[field]
  if (!Array.isArray(list)) throw new Error(`Herald's answer has no ${field} list`)
  return list.map((item: Record<string, unknown>) => ({
    topic: String(item.topic),
    partition: Number(item.partition),
    offset: Number(item.offset),
    projectedThrough: Number(item.projectedThrough),
    event: String(item.event),
    projectedEvent: String(item.projectedEvent),
    detectedAt: String(item.detectedAt),
    state: item.state === 'accepted' ? 'accepted' : 'pending',
    base: numberOrNull(item.base),
    acceptedAt: stringOrNull(item.acceptedAt),
  }))
}

/** `herald log-reset`: lists the log resets a running Herald found, and accepts them. */
export const runLogReset = async (args: readonly string[], deps: CliDeps): Promise<number> => {
  const commandLine = await readCommandLine('herald log-reset', LOG_RESET_USAGE, deps, () => {
    const { values: parsed, positionals } = parse(args)
    if (parsed.help === true) return 'help'
    const base = heraldBaseUrl(parsed.url, deps.env)
    return {
      ...parsed,
      base,
      accepting: acceptance(parsed, positionals),
      target: {
        token: bearerTokenOf(parsed.token, deps.env),
        timeoutMs: durationOption(parsed.timeout, 'timeout', DEFAULT_TIMEOUT_MS),
      },
    }
  })
  if ('exit' in commandLine) return commandLine.exit
  const values = commandLine.options
  const endpoint = `${values.base}/v1/reports/log-reset`
  const { accepting } = values
  const method = accepting === 'none' ? 'GET' : 'POST'
  try {
    const answer = await callAdmin(
      deps,
      method,
      endpoint,
      values.target,
      typeof accepting === 'object' ? { resets: accepting } : undefined,
    )
    // 409: none waits; the detail says so in Herald's words.
    if (answer.status === 409 && typeof answer.body.detail === 'string') throw new Error(answer.body.detail)
    if (!answer.ok) throw new Error(refusal(method, endpoint, answer))
    await writeText(
      deps.stdout,
      method === 'POST'
        ? acceptedText(resetsOf(answer.body, 'accepted'))
        : listText(resetsOf(answer.body, 'resets')),
    )
    return EXIT_OK
  } catch (error) {
    await writeText(deps.stderr, `herald log-reset: ${(error as Error).message}\n`)
    return EXIT_FAILED
  }
}

const parse = (args: readonly string[]) => {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      timeout: { type: 'string' },
      accept: { type: 'boolean' },
      all: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  return { values, positionals }
}
