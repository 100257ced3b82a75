import type { KafkaEventLogOptions } from '../adapters/kafka-event-log/index.ts'
import { scrubCredentials } from '../config/index.ts'
import type { EventLog } from '../ports/index.ts'
import { isTimeout, timeoutOf } from './retry.ts'

/** A text sink such as `process.stdout`: the callback runs once the chunk is flushed. */
export interface Output {
  write(chunk: string, callback?: (error?: Error | null) => void): boolean
  /** Streams report a closed pipe (EPIPE) here; see `writeText`. */
  on?(event: 'error', listener: (error: Error) => void): unknown
  off?(event: 'error', listener: (error: Error) => void): unknown
}

/**
 * What a CLI subcommand may touch, passed in by `src/cli.ts` so the commands run in tests
 * against in-process peers.
 */
export interface CliDeps {
  readonly stdin: AsyncIterable<Uint8Array | string>
  readonly stdout: Output
  readonly stderr: Output
  /** The environment: HERALD_URL and HERALD_TOKEN; for `publish --kafka` also Herald's configuration. */
  readonly env: Readonly<Record<string, string | undefined>>
  readonly fetch: typeof fetch
  /** Milliseconds since the epoch; default `Date.now`. */
  readonly clock?: () => number
  /** Default: a timer. */
  readonly sleep?: (ms: number) => Promise<void>
  /** Default: `createKafkaEventLog`. */
  readonly createKafkaLog?: (options: KafkaEventLogOptions) => EventLog
  /** The bytes of the file at `path`; default `fs.createReadStream(path)`. */
  readonly readFile?: (path: string) => AsyncIterable<Uint8Array | string>
}

export const EXIT_OK = 0
/** Invalid input, or Herald or Kafka refused or could not be reached. */
export const EXIT_FAILED = 1
/** Bad command line. */
export const EXIT_USAGE = 2

export const defaultSleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms)
  })

/** Writes `text` and resolves once it is flushed; rejects on a closed pipe. */
export const writeText = (out: Output, text: string): Promise<void> =>
  new Promise((resolve, reject) => {
    out.write(text, (error) => (error ? reject(error) : resolve()))
  })

/**
 * A subcommand's command line read by `parse`: its options; or, for `--help` (`parse` answers
 * `'help'`), the usage on stdout and exit 0; or, when `parse` throws, the reason and the usage
 * on stderr and exit 2.
 *
 * @example
 * const line = await readCommandLine('herald publish', PUBLISH_USAGE, deps, () => parse(argv, deps.env))
 * if ('exit' in line) return line.exit
 */
export const readCommandLine = async <T>(
  command: string,
  usage: string,
  deps: Pick<CliDeps, 'stdout' | 'stderr'>,
  parse: () => T | 'help',
): Promise<{ readonly options: T } | { readonly exit: number }> => {
  let options: T | 'help'
  try {
    options = parse()
  } catch (error) {
    await writeText(deps.stderr, `${command}: ${(error as Error).message}\n\n${usage}\n`)
    return { exit: EXIT_USAGE }
  }
  if (options === 'help') {
    await writeText(deps.stdout, `${usage}\n`)
    return { exit: EXIT_OK }
  }
  return { options }
}

/** A usage error: the command line itself is wrong. */
export class UsageError extends Error {}

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/** `90s`, `5m`, `1h`, `250ms` or a bare number of seconds, in milliseconds; else a usage error naming `--option`. */
export const parseDuration = (text: string, option = 'duration'): number => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (match === null) throw new UsageError(`--${option} must look like 90s, 5m, 1h or 250ms, got "${text}"`)
  return Number(match[1]) * (UNITS[match[2] ?? 's'] as number)
}

/** The longest timer Node.js sets (2^31 - 1 ms): a longer one fires at once. */
const MAX_TIMER_MS = 2_147_483_647

/**
 * A duration option (`--timeout 10s`) in milliseconds, `fallback` when not given; at least 1 ms
 * unless `zero` is allowed, and no longer than a timer can wait.
 */
export const durationOption = (
  value: string | undefined,
  option: string,
  fallback: number,
  zero = false,
): number => {
  if (value === undefined) return fallback
  const ms = parseDuration(value, option)
  if (ms < (zero ? 0 : 1)) throw new UsageError(`--${option} must be at least 1 ms, got "${value}"`)
  if (ms > MAX_TIMER_MS) throw new UsageError(`--${option} must be at most 596h, got "${value}"`)
  return ms
}

/** A positive whole number from an option, or a usage error naming the option. */
export const positiveInt = (value: string | undefined, option: string, fallback: number): number => {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${option} must be a whole number of at least 1, got "${value}"`)
  return n
}

/**
 * Herald's URL as given by `source` (`--url`, `--publish-url` or `HERALD_URL`), checked before
 * anything is sent: fetch refuses a URL with user-info and speaks only http(s), so either would
 * just be retried until the attempts ran out. A URL with user-info is never echoed, and the
 * token belongs in `--token` or `HERALD_TOKEN`, not in the URL.
 */
export const serverUrl = (value: string, source: string): string => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new UsageError(`${source} is not a URL: "${scrubCredentials(value)}"`)
  }
  if (url.username !== '' || url.password !== '')
    throw new UsageError(
      `${source} must not hold credentials (user:password@); give a token with --token or HERALD_TOKEN`,
    )
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`${source} must be an http:// or https:// URL, not ${url.protocol}`)
  return value
}

/** Where the admin commands find a running Herald when told nothing else. */
const DEFAULT_HERALD_URL = 'http://localhost:8228'

/**
 * The base URL of the running Herald an admin command (`rebuild-reports`, `log-reset`) calls:
 * `--url`, else `HERALD_URL`, else `http://localhost:8228`; checked as `serverUrl` checks it,
 * trailing slashes dropped.
 */
export const heraldBaseUrl = (url: string | undefined, env: CliDeps['env']): string => {
  const given = url ?? nonEmpty(env.HERALD_URL)
  if (given === undefined) return DEFAULT_HERALD_URL
  return serverUrl(given, url === undefined ? 'HERALD_URL' : '--url').replace(/\/+$/, '')
}

/** What an admin endpoint answered: its status and its JSON body (`{}` without one). */
export interface AdminAnswer {
  readonly status: number
  readonly ok: boolean
  readonly headers: Headers
  readonly body: Record<string, unknown>
}

/** Where an admin command finds Herald, and how long one of its requests may take. */
export interface AdminTarget {
  readonly token: string | undefined
  readonly timeoutMs: number
}

/** Herald could not be reached, or did not answer within the timeout. */
export class UnreachableError extends Error {}

/**
 * Calls an admin endpoint of a running Herald (`url`) with the admin token (`bearerTokenOf`)
 * and `body` as JSON, if any, waiting at most `timeoutMs` for the answer. Rejects (`UnreachableError`, naming the URL) only
 * when Herald cannot be reached or does not answer in time; what it refuses is an answer,
 * whose problem detail `refusal` words.
 */
export const callAdmin = async (
  deps: Pick<CliDeps, 'fetch'>,
  method: 'GET' | 'POST',
  url: string,
  { token, timeoutMs }: AdminTarget,
  body?: unknown,
): Promise<AdminAnswer> => {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const timeout = timeoutOf(timeoutMs)
  try {
    const response = await deps.fetch(url, {
      method,
      headers,
      signal: timeout.signal,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    let json: Record<string, unknown> = {}
    try {
      json = JSON.parse(text) as Record<string, unknown>
    } catch {
      // No JSON body: the status says it all.
    }
    return { status: response.status, ok: response.ok, headers: response.headers, body: json }
  } catch (error) {
    const why = isTimeout(error) ? timeout.reason : withoutToken((error as Error).message, token)
    throw new UnreachableError(`cannot reach ${url}: ${why}`)
  }
}

/** `POST http://…/v1/reports/rebuild: 403 <detail>`: what Herald refused, for an error message. */
export const refusal = (method: string, url: string, answer: AdminAnswer): string =>
  `${method} ${url}: ${answer.status} ${typeof answer.body.detail === 'string' ? answer.body.detail : ''}`.trim()

/** An environment variable's value, undefined when it is unset or empty (`HERALD_URL=`). */
export const nonEmpty = (value: string | undefined): string | undefined => (value === '' ? undefined : value)

const CHARACTER_NAMES: Readonly<Record<number, string>> = {
  9: 'a tab',
  10: 'a line break',
  13: 'a carriage return',
  32: 'a space',
  160: 'a no-break space',
}

/** `a line break (code 10)`, `U+20AC (code 8364)`: a character, for a message. */
const describeCharacter = (code: number): string =>
  `${CHARACTER_NAMES[code] ?? `U+${code.toString(16).toUpperCase().padStart(4, '0')}`} (code ${code})`

/**
 * The bearer token a client command sends: `option` (`--token`), else `HERALD_TOKEN`, else
 * none (an empty variable is none). A token an Authorization header cannot carry (a line break,
 * a carriage return or other control character, whitespace, which Herald never takes within a
 * token, or a character beyond Latin-1) is a usage error naming where it is and its character
 * code, never the token: fetch would refuse the header, its message holding the token, and the
 * commands would take that for an unreachable Herald and retry.
 *
 * @example
 * bearerTokenOf(undefined, { HERALD_TOKEN: 'abc\n' }) // throws: HERALD_TOKEN holds a line break (code 10) at character 4 of 4 …
 */
export const bearerTokenOf = (option: string | undefined, env: CliDeps['env']): string | undefined => {
  const token = option ?? nonEmpty(env.HERALD_TOKEN)
  if (token === undefined) return undefined
  const source = option === undefined ? 'HERALD_TOKEN' : '--token'
  if (token === '') throw new UsageError(`${source} is empty; leave it out to send no token`)
  const characters = [...token]
  for (const [i, character] of characters.entries()) {
    const code = character.codePointAt(0) as number
    if (code <= 0x20 || (code >= 0x7f && code <= 0xa0) || code > 0xff)
      throw new UsageError(
        `${source} holds ${describeCharacter(code)} at character ${i + 1} of ${characters.length}, which an Authorization header cannot carry: a token is printable characters without whitespace`,
      )
  }
  return token
}

/** `text` with every occurrence of `token` hidden: an error's message may quote a header. */
export const withoutToken = (text: string, token: string | undefined): string =>
  token === undefined || token === '' ? text : text.split(token).join('[token]')

/** A command-line argument for a message, with any URL user-info in it hidden. */
export const quoteArgument = (argument: string): string => `"${scrubCredentials(argument)}"`
