import { parseArgs } from 'node:util'
import {
  type AdminAnswer,
  bearerTokenOf,
  type CliDeps,
  callAdmin,
  defaultSleep,
  durationOption,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  heraldBaseUrl,
  positiveInt,
  quoteArgument,
  readCommandLine,
  refusal,
  UnreachableError,
  UsageError,
  writeText,
} from './io.ts'
import {
  DEFAULT_RETRY_FOR_MS,
  DEFAULT_TIMEOUT_MS,
  RETRIABLE,
  Retriable,
  type RetryPolicy,
  retryAfterMs,
  retryLine,
  withRetries,
} from './retry.ts'

export const REBUILD_USAGE = `usage: herald rebuild-reports [--url <url>] [--token <token>] [options]

Rebuilds the report tables from the raw events table inside the running Herald (the process
that owns the warehouse), e.g. after an upgrade changed how events are projected. Reports keep
answering from the old tables until the new ones are swapped in; the projector pauses only for
the swap. Prints progress until the rebuild ends: events replayed of the total to replay, the
share done and, at the rate so far, about how long is left.

  --url <url>            Herald's base URL, default HERALD_URL or http://localhost:8228;
                         http or https, without user:password@
  --token <token>        an admin bearer token; default HERALD_TOKEN. Printable
                         characters without whitespace, else refused (exit 2)
  --timeout <d>          how long a request may go unanswered: 250ms, 30s, 1m; default 30s
  --status               print the last rebuild's status and exit: 0, or 1 when it failed
  --no-wait              start the rebuild and exit
  --poll-ms <n>          how often progress is printed, default 2000
  --retry-for <d>        how long a request is tried again while Herald cannot be reached,
                         does not answer or answers 429, 502, 503 or 504, with a line on
                         stderr for each retry; default 60s, 0 for none. The rebuild runs on
                         inside Herald meanwhile

A rebuild already running (409), started by another run (on this or another Herald instance
sharing the warehouse) or by one whose answer was lost, is followed as if this run had
started it.
  -h, --help             show this help

exit status: 0 done; 1 refused, failed or unreachable; 2 bad command line.`

/** What the CLI reads of `GET /v1/reports/rebuild`. */
export interface Status {
  readonly state: string
  readonly replayed: number
  readonly total: number | null
  readonly percent: number | null
  readonly etaSeconds: number | null
  readonly error: string | null
}

/** Whether the rebuild is still under way (replaying, or exchanging the tables). */
const isRunning = (status: Status): boolean => status.state === 'catching_up' || status.state === 'swapping'

const numberOrNull = (value: unknown): number | null => (typeof value === 'number' ? value : null)

/** `90` → `1 min 30 s`: how long is left, for a person. */
const duration = (seconds: number): string => {
  const minutes = Math.floor(seconds / 60)
  if (minutes === 0) return `${seconds} s`
  const hours = Math.floor(minutes / 60)
  if (hours === 0) return `${minutes} min${seconds % 60 === 0 ? '' : ` ${seconds % 60} s`}`
  return `${hours} h${minutes % 60 === 0 ? '' : ` ${minutes % 60} min`}`
}

/**
 * One line of progress: `catching_up: 1200 of 5000 events replayed (24%, about 40 s left)`; the
 * count alone until the total is known.
 */
export const progressLine = (status: Status): string => {
  const of = status.total === null ? '' : ` of ${status.total}`
  const running = isRunning(status)
  const eta = running && status.etaSeconds !== null ? `, about ${duration(status.etaSeconds)} left` : ''
  const share = status.percent === null ? '' : ` (${status.percent}%${eta})`
  const error = status.error === null ? '' : ` (${status.error})`
  return `${status.state}: ${status.replayed}${of} events replayed${share}${error}\n`
}

/** `herald rebuild-reports`: starts a rebuild through the admin API and follows it. */
export const runRebuild = async (args: readonly string[], deps: CliDeps): Promise<number> => {
  const sleep = deps.sleep ?? defaultSleep
  const commandLine = await readCommandLine('herald rebuild-reports', REBUILD_USAGE, deps, () => {
    const parsed = parse(args)
    if (parsed.help === true) return 'help'
    return {
      ...parsed,
      base: heraldBaseUrl(parsed.url, deps.env),
      target: {
        token: bearerTokenOf(parsed.token, deps.env),
        timeoutMs: durationOption(parsed.timeout, 'timeout', DEFAULT_TIMEOUT_MS),
      },
      retryForMs: durationOption(parsed['retry-for'], 'retry-for', DEFAULT_RETRY_FOR_MS, true),
    }
  })
  if ('exit' in commandLine) return commandLine.exit
  const values = commandLine.options
  let pollMs: number
  try {
    pollMs = positiveInt(values['poll-ms'], 'poll-ms', 2000)
  } catch (error) {
    await writeText(deps.stderr, `herald rebuild-reports: ${(error as Error).message}\n`)
    return EXIT_USAGE
  }
  const endpoint = `${values.base}/v1/reports/rebuild`

  const policy: RetryPolicy = {
    retryForMs: values.retryForMs,
    sleep,
    clock: deps.clock ?? Date.now,
    onRetry: (reason, delayMs, leftMs) =>
      void writeText(deps.stderr, `herald rebuild-reports: ${retryLine(reason, delayMs, leftMs)}\n`),
  }
  // A request Herald did not take (unreachable, starting, overloaded, a proxy's 502) is tried
  // again: the rebuild runs on inside Herald whatever its follower meets.
  const ask = (method: 'GET' | 'POST') =>
    withRetries(policy, async () => {
      let answer: AdminAnswer
      try {
        answer = await callAdmin(deps, method, endpoint, values.target)
      } catch (error) {
        if (error instanceof UnreachableError) throw new Retriable(error.message)
        throw error
      }
      if (RETRIABLE.has(answer.status))
        throw new Retriable(
          refusal(method, endpoint, answer),
          retryAfterMs(answer.headers.get('retry-after')),
        )
      return answer
    })
  const statusOf = (answer: AdminAnswer): Status => {
    const body = answer.body as Partial<Status>
    return {
      state: String(body.state),
      replayed: Number(body.replayed ?? 0),
      total: numberOrNull(body.total),
      percent: numberOrNull(body.percent),
      etaSeconds: numberOrNull(body.etaSeconds),
      error: body.error ?? null,
    }
  }

  const poll = async (): Promise<Status> => {
    const answer = await ask('GET')
    if (!answer.ok) throw new Error(refusal('GET', endpoint, answer))
    return statusOf(answer)
  }

  try {
    if (values.status) {
      const status = await poll()
      await writeText(deps.stdout, progressLine(status))
      return status.state === 'failed' ? EXIT_FAILED : EXIT_OK
    }
    const started = await ask('POST')
    let status: Status
    if (started.status === 409 && started.body.code === 'rebuild_running' && !values['no-wait']) {
      // Started by another run, or by this one's request whose answer was lost: followed all the same.
      await writeText(deps.stderr, `herald rebuild-reports: ${String(started.body.detail)}; following it\n`)
      status = await poll()
    } else if (started.ok) status = statusOf(started)
    else throw new Error(refusal('POST', endpoint, started))
    await writeText(deps.stdout, progressLine(status))
    if (values['no-wait']) return EXIT_OK
    while (isRunning(status)) {
      await sleep(pollMs)
      status = await poll()
      await writeText(deps.stdout, progressLine(status))
    }
    if (status.state === 'idle')
      await writeText(
        deps.stderr,
        'herald rebuild-reports: Herald knows of no rebuild now: it restarted, which stops a rebuild before its exchanges; start it again\n',
      )
    return status.state === 'done' ? EXIT_OK : EXIT_FAILED
  } catch (error) {
    await writeText(deps.stderr, `herald rebuild-reports: ${(error as Error).message}\n`)
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
      status: { type: 'boolean' },
      'no-wait': { type: 'boolean' },
      'poll-ms': { type: 'string' },
      'retry-for': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument ${quoteArgument(positionals[0] ?? '')}`)
  return values
}
