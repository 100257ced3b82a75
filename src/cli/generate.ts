import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { ACCOUNT_NAME_RULE, isAccountName } from '../access/index.ts'
import type { EngineEvent } from '../events/index.ts'
import { isTimestamp, NOT_A_TIMESTAMP } from '../events/index.ts'
import { generateActivity, LAST_TIME_MS, SimulatedTimeError } from '../generator/index.ts'
import { createBatcher } from './batches.ts'
import { createHttpSender, SendError } from './http-sender.ts'
import {
  bearerTokenOf,
  type CliDeps,
  defaultSleep,
  durationOption,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  parseDuration,
  positiveInt,
  quoteArgument,
  readCommandLine,
  serverUrl,
  UsageError,
  writeText,
} from './io.ts'
import { DEFAULT_RETRY_FOR_MS, DEFAULT_TIMEOUT_MS, retryLine } from './retry.ts'

export const GENERATE_USAGE = `usage: herald generate [options]

Generates realistic container-security engine activity as CloudEvents from Herald's catalog:
accounts with registries and repositories, tags moving between digests, images analyzed with
vulnerability reports (few critical, many medium and low; KEV and fix-available flags),
policy evaluations flipping between pass and fail, deletions and archiving, registry and
analysis failures, feed syncs (some failing), service faults and compliance scans. The same
seed, start and options give the same events, ids included; ids are drawn from the seed and
the start, so a run from another start (without --start, each run starts now) makes new ones,
which Herald does not drop as repeats. Without --seed or --start, stderr says which were used
(--seed <seed> --start <time> makes these events again). Prints NDJSON, or posts to Herald.

options:
  --seed <seed>          any string or number; default a random one
  --accounts <n|names>   how many accounts, or their names comma-separated; default 3
  --rate <n>             events per second of simulated time; default 50
  --duration <d>         simulated time to cover: 90s, 5m, 1h, 250ms (a bare number is seconds)
  --count <n>            number of events; default 1000 unless --duration is given
  --start <time>         RFC 3339 start of simulated time; default now. A run whose time
                         would pass 9999-12-31T23:59:59.999Z (the last an event can carry)
                         at its --rate is refused
  --no-system            leave out engine-wide events (feed syncs, service faults), which
                         belong to the admin account
  --realtime             emit each event when its time comes, so --rate is a real rate
  --publish-url <url>    post the events to Herald instead of printing: its base URL
                         (also behind a path prefix, https://gateway/herald) or its
                         ingest URL (…/v1/events); http or https, without user:password@
  --token <token>        bearer token for --publish-url; default: HERALD_TOKEN. Printable
                         characters without whitespace, else refused (exit 2)
  --batch-size <n>       events per request with --publish-url (fewer where they would pass
                         4 MiB, as with herald publish); default 500
  --timeout <d>          with --publish-url: how long a request may go unanswered before it
                         is given up and retried; default 30s
  --retry-for <d>        with --publish-url: how long a batch is retried while Herald cannot
                         be reached or answers 429, 502, 503 or 504; default 60s, 0 for none
  -h, --help             show this help

examples:
  herald generate --seed demo --count 5000 > events.ndjson
  herald generate --accounts acme,globex --rate 200 --duration 10m --realtime \\
      --publish-url http://localhost:8228`

interface GenerateOptions {
  readonly seed: string | undefined
  readonly accounts: number | readonly string[]
  readonly rate: number
  /** `--rate`, `--duration` and `--start` as given, for messages. */
  readonly given: { readonly rate?: string; readonly duration?: string; readonly start?: string }
  readonly durationMs: number | undefined
  readonly count: number | undefined
  readonly start: number | undefined
  readonly system: boolean
  readonly realtime: boolean
  readonly publishUrl: string | undefined
  readonly token: string | undefined
  readonly timeoutMs: number
  readonly retryForMs: number
  readonly batchSize: number
}

const parse = (argv: readonly string[], env: CliDeps['env']): GenerateOptions | 'help' => {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    allowNegative: true,
    options: {
      seed: { type: 'string' },
      accounts: { type: 'string', default: '3' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      count: { type: 'string' },
      start: { type: 'string' },
      system: { type: 'boolean', default: true },
      realtime: { type: 'boolean', default: false },
      'publish-url': { type: 'string' },
      token: { type: 'string' },
      timeout: { type: 'string' },
      'retry-for': { type: 'string' },
      'batch-size': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return 'help'
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument ${quoteArgument(positionals[0] ?? '')}`)
  const accounts = /^\d+$/.test(values.accounts)
    ? positiveInt(values.accounts, 'accounts', 3)
    : values.accounts
        .split(',')
        .map((a) => a.trim())
        .filter((a) => a !== '')
  if (Array.isArray(accounts) && accounts.length === 0) throw new UsageError('--accounts names no account')
  const misnamed = Array.isArray(accounts) ? accounts.find((a) => !isAccountName(a)) : undefined
  if (misnamed !== undefined) throw new UsageError(`--accounts: "${misnamed}" ${ACCOUNT_NAME_RULE}`)
  const rate = values.rate === undefined ? 50 : Number(values.rate)
  if (!(rate > 0) || !Number.isFinite(rate))
    throw new UsageError(`--rate must be a positive number, got "${values.rate}"`)
  const durationMs = values.duration === undefined ? undefined : parseDuration(values.duration)
  const count =
    values.count === undefined
      ? durationMs === undefined
        ? 1_000
        : undefined
      : positiveInt(values.count, 'count', 1)
  if (values.start !== undefined && !isTimestamp(values.start)) {
    throw new UsageError(`--start ${NOT_A_TIMESTAMP}, got "${values.start}"`)
  }
  const publishUrl = values['publish-url']
  if (publishUrl !== undefined) serverUrl(publishUrl, '--publish-url')
  return {
    seed: values.seed,
    accounts,
    rate,
    given: { rate: values.rate, duration: values.duration, start: values.start },
    durationMs,
    count,
    start: values.start === undefined ? undefined : Date.parse(values.start),
    system: values.system,
    realtime: values.realtime,
    publishUrl,
    token: bearerTokenOf(values.token, env),
    timeoutMs: durationOption(values.timeout, 'timeout', DEFAULT_TIMEOUT_MS),
    retryForMs: durationOption(values['retry-for'], 'retry-for', DEFAULT_RETRY_FOR_MS, true),
    batchSize: positiveInt(values['batch-size'], 'batch-size', 500),
  }
}

// Chunks of NDJSON handed to stdout at once: few writes, bounded memory.
const CHUNK_CHARS = 64 * 1024
// With --realtime and --publish-url, a partial batch waits at most this long.
const FLUSH_INTERVAL_MS = 1_000

/** `seed` as a shell reads it back: bare when it can be, else in single quotes. */
const shellWord = (word: string): string =>
  /^[\w.,:@+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`

const isClosedPipe = (error: unknown): boolean =>
  (error as { code?: unknown } | undefined)?.code === 'EPIPE' ||
  (error as { code?: unknown })?.code === 'ERR_STREAM_DESTROYED'

/**
 * `herald generate`: a deterministic stream of engine activity (see `generateActivity`) as
 * NDJSON on stdout, or posted to Herald in batches. Resolves with the process exit status.
 *
 * @example
 * await runGenerate(['--seed', 'demo', '--count', '100'], deps) // 100 NDJSON lines on stdout
 */
export const runGenerate = async (argv: readonly string[], deps: CliDeps): Promise<number> => {
  const line = await readCommandLine('herald generate', GENERATE_USAGE, deps, () => parse(argv, deps.env))
  if ('exit' in line) return line.exit
  const { options } = line
  const clock = deps.clock ?? Date.now
  const sleep = deps.sleep ?? defaultSleep
  const start = options.start ?? clock()
  const beyond = pastTheEnd(options, start)
  if (beyond !== undefined) {
    await writeText(deps.stderr, `herald generate: ${beyond}\n`)
    return EXIT_USAGE
  }
  const seed = options.seed ?? randomBytes(4).toString('hex')
  if (options.seed === undefined || options.start === undefined)
    await writeText(
      deps.stderr,
      `herald generate: --seed ${shellWord(seed)} --start ${new Date(start).toISOString()} makes these events again\n`,
    )
  const events = generateActivity({
    seed,
    accounts: options.accounts,
    rate: options.rate,
    ...(options.durationMs === undefined ? {} : { durationMs: options.durationMs }),
    ...(options.count === undefined ? {} : { count: options.count }),
    clock: () => start,
    systemEvents: options.system,
  })
  const wallStart = clock()
  // In real time, an event leaves once as much wall time has passed as simulated time.
  const dueIn = (event: EngineEvent): number =>
    options.realtime ? wallStart + (Date.parse(event.time as string) - start) - clock() : 0
  const pacing: Pacing = { dueIn, sleep, clock }
  try {
    return options.publishUrl === undefined
      ? await print(events, options, deps, pacing)
      : await publish(events, options, deps, pacing)
  } catch (error) {
    // The draws carried time past the end, which the expected span did not.
    if (!(error instanceof SimulatedTimeError)) throw error
    await writeText(
      deps.stderr,
      `herald generate: ${error.message}; give an earlier --start or a higher --rate\n`,
    )
    return EXIT_FAILED
  }
}

const YEAR_MS = 365.25 * 86_400_000

/** `90061000` → `1 days`: a span of simulated time, roughly, for a message. */
const roughly = (ms: number): string => {
  for (const [unit, size] of [
    ['years', YEAR_MS],
    ['days', 86_400_000],
    ['h', 3_600_000],
    ['min', 60_000],
  ] as const)
    if (ms >= size) return `${Math.round(ms / size)} ${unit}`
  return `${Math.round(ms / 1_000)} s`
}

/**
 * Why a run from `start` would carry simulated time past the last instant an event's time can
 * name (9999-12-31T23:59:59.999Z), at the rate and for the duration or count asked: Herald
 * refuses such times, and past year 275760 no date exists at all. Undefined when it would not.
 */
const pastTheEnd = (options: GenerateOptions, start: number): string | undefined => {
  const { given } = options
  const spanMs = options.durationMs ?? ((options.count ?? 0) / options.rate) * 1_000
  if (start + spanMs <= LAST_TIME_MS) return undefined
  const why =
    options.durationMs !== undefined
      ? `--duration ${given.duration}`
      : `--count ${options.count} at --rate ${given.rate ?? options.rate}`
  const what =
    options.start === undefined
      ? `${why} spans about ${roughly(spanMs)} of simulated time from now`
      : `--start ${given.start} and about ${roughly(spanMs)} of simulated time (${why})`
  return `the run would pass ${new Date(LAST_TIME_MS).toISOString()}, the last instant an event's time can name: ${what}; give an earlier --start, a higher --rate or fewer events`
}

interface Pacing {
  /** Milliseconds until `event` is due; 0 or less when it is (always, unless --realtime). */
  readonly dueIn: (event: EngineEvent) => number
  readonly sleep: (ms: number) => Promise<void>
  readonly clock: () => number
}

const print = async (
  events: Iterable<EngineEvent>,
  options: GenerateOptions,
  deps: CliDeps,
  { dueIn, sleep }: Pacing,
): Promise<number> => {
  // A reader that goes away (`| head`) ends the run quietly.
  let closed = false
  const onError = (error: Error) => {
    if (isClosedPipe(error)) closed = true
  }
  deps.stdout.on?.('error', onError)
  try {
    let chunk = ''
    for (const event of events) {
      const wait = dueIn(event)
      if (wait > 0) await sleep(wait)
      chunk += `${JSON.stringify(event)}\n`
      if (options.realtime || chunk.length >= CHUNK_CHARS) {
        await writeText(deps.stdout, chunk)
        chunk = ''
      }
      if (closed) return EXIT_OK
    }
    if (chunk !== '') await writeText(deps.stdout, chunk)
    return EXIT_OK
  } catch (error) {
    if (isClosedPipe(error) || closed) return EXIT_OK
    throw error
  } finally {
    deps.stdout.off?.('error', onError)
  }
}

const publish = async (
  events: Iterable<EngineEvent>,
  options: GenerateOptions,
  deps: CliDeps,
  { dueIn, sleep, clock }: Pacing,
): Promise<number> => {
  const say = (line: string) => writeText(deps.stderr, `${line}\n`)
  const url = options.publishUrl as string
  const send = createHttpSender({
    url,
    ...(options.token === undefined ? {} : { token: options.token }),
    fetch: deps.fetch,
    sleep,
    clock,
    timeoutMs: options.timeoutMs,
    retryForMs: options.retryForMs,
    onRetry: (reason, delayMs, leftMs) => void say(`herald generate: ${retryLine(reason, delayMs, leftMs)}`),
  })
  let accepted = 0
  let batches = 0
  // Batches as publish makes them: by count, and under Herald's request limit.
  const batcher = createBatcher(options.batchSize)
  let batchStarted = clock()
  const flush = async (batch: EngineEvent[] | undefined) => {
    if (batch === undefined) return
    batches++
    accepted += await send(batch)
  }
  try {
    for (const event of events) {
      const wait = dueIn(event)
      // Waiting for this event must not hold the ones already batched past the interval.
      if (batcher.pending > 0 && clock() + wait - batchStarted >= FLUSH_INTERVAL_MS)
        await flush(batcher.take())
      if (wait > 0) await sleep(wait)
      await flush(batcher.add(event, Buffer.byteLength(JSON.stringify(event))))
      if (batcher.pending === 1) batchStarted = clock()
      if (batcher.pending >= options.batchSize) await flush(batcher.take())
    }
    await flush(batcher.take())
  } catch (error) {
    if (!(error instanceof SendError)) throw error
    await say(`herald generate: batch ${batches} failed: ${error.message}`)
    await say(`${accepted} events were published before it`)
    return EXIT_FAILED
  }
  await say(`herald generate: ${accepted} events published in ${batches} batches to ${url}`)
  return EXIT_OK
}
