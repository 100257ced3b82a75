import { createReadStream } from 'node:fs'
import { parseArgs } from 'node:util'
import { createKafkaEventLog, type KafkaEventLogOptions } from '../adapters/kafka-event-log/index.ts'
import { type Config, isHostPort, loadConfig } from '../config/index.ts'
import { errorText } from '../errors/index.ts'
import { type EngineEvent, encodeLogEvent } from '../events/index.ts'
import { createHttpSender, SendError } from './http-sender.ts'
import { checkEvents, describeProblems, parseEventInput } from './input.ts'
import {
  bearerTokenOf,
  type CliDeps,
  defaultSleep,
  durationOption,
  EXIT_FAILED,
  EXIT_OK,
  nonEmpty,
  positiveInt,
  quoteArgument,
  readAll,
  readCommandLine,
  serverUrl,
  UsageError,
  writeText,
} from './io.ts'
import { DEFAULT_RETRY_FOR_MS, DEFAULT_TIMEOUT_MS, retryLine } from './retry.ts'
import { NotUtf8Error } from './utf8.ts'

export const PUBLISH_USAGE = `usage: herald publish [--file <path>] (--url <url> | --kafka <brokers>) [options]

Sends CloudEvents to Herald: over HTTP to POST /v1/events, or straight onto Kafka. Every
event is checked against Herald's event catalog first, and over HTTP against the largest
request Herald takes (5 MiB); if any is invalid, each problem is listed with its line (NDJSON)
or index (JSON array) and nothing is sent. What only Herald can judge (a non-admin token
sending another account's events) is found as the batches go: the batches before the refused
one stay published, and the output says how many events they held.

input:
  -f, --file <path>      read events from a file; without it, or with "-", from stdin.
                         A JSON array, NDJSON (one event per line), or JSON objects one after
                         another, pretty-printed or not (jq . output), in UTF-8: a byte that
                         is not is refused, naming its offset and line.

HTTP:
  --url <url>            Herald's base URL (http://localhost:8228; behind a path prefix,
                         https://gateway/herald: events go to its /v1/events) or its
                         ingest URL (…/v1/events); default: HERALD_URL. http or https,
                         without user:password@
  --token <token>        bearer token; default: HERALD_TOKEN. Printable characters without
                         whitespace, else refused (exit 2). A non-admin token may publish
                         only its own account's events.
  --timeout <d>          how long a request may go unanswered before it is given up and
                         retried: 250ms, 30s, 1m; default 30s
  --retry-for <d>        how long a batch is retried while Herald cannot be reached, does
                         not answer or answers 429, 502, 503 or 504 (as while it restarts),
                         with a line on stderr for each retry; default 60s, 0 for no retry.
                         Herald drops an event it already has, so a retry repeats nothing

Kafka:
  --kafka <brokers>      comma-separated bootstrap servers, e.g. kafka-1:9092,kafka-2:9092.
                         Events go out in CloudEvents' structured mode (JSON), keyed by
                         account. TLS and SASL as Herald's configuration says
                         (event_log.kafka.ssl and event_log.kafka.sasl, from the file
                         HERALD_CONFIG names and HERALD_EVENT_LOG__KAFKA__* variables).
  --topic <name>         default engine.events (it must exist)
  --client-id <id>       default herald-publish
  --no-idempotent        use a plain producer (for brokers without a controller)

options:
  --batch-size <n>       events per request or produce call; default 500
  --skip-invalid         send the valid events anyway; still list the invalid ones
  --dry-run              check the events and send nothing
  -h, --help             show this help

exit status: 0 all sent; 1 invalid events, no events in the input, or Herald or Kafka refused;
2 bad command line.

examples:
  herald publish --url http://localhost:8228 --file events.ndjson
  herald generate --count 1000 | herald publish --url http://localhost:8228
  herald publish --kafka localhost:9092 --topic engine.events --file events.json`

// Herald's request limit is 5 MiB; batches stay well under it.
const MAX_BATCH_BYTES = 4 * 1024 * 1024
/** The longest event as JSON one request to Herald holds: its 5 MiB limit, less the batch's brackets. */
export const MAX_EVENT_BYTES = 5 * 1024 * 1024 - 2

/** Splits events into batches of at most `size` events and about MAX_BATCH_BYTES. */
export const toBatches = (events: readonly EngineEvent[], size: number): EngineEvent[][] => {
  const batches: EngineEvent[][] = []
  let batch: EngineEvent[] = []
  let bytes = 0
  for (const event of events) {
    const eventBytes = Buffer.byteLength(JSON.stringify(event))
    if (batch.length > 0 && (batch.length >= size || bytes + eventBytes > MAX_BATCH_BYTES)) {
      batches.push(batch)
      batch = []
      bytes = 0
    }
    batch.push(event)
    bytes += eventBytes + 1
  }
  if (batch.length > 0) batches.push(batch)
  return batches
}

interface PublishOptions {
  readonly file: string | undefined
  readonly url: string | undefined
  readonly token: string | undefined
  readonly timeoutMs: number
  readonly retryForMs: number
  readonly kafka: readonly string[] | undefined
  /** For `kafka`: TLS and SASL, from Herald's configuration. */
  readonly kafkaSecurity: Pick<KafkaEventLogOptions, 'ssl' | 'sasl'>
  readonly topic: string
  readonly clientId: string
  readonly idempotent: boolean
  readonly batchSize: number
  readonly skipInvalid: boolean
  readonly dryRun: boolean
}

/**
 * TLS and SASL for `--kafka`, as Herald's configuration says (`event_log.kafka.ssl` and
 * `.sasl`): a cluster Herald reaches, `herald publish` reaches with the same settings.
 */
const kafkaSecurityOf = (env: CliDeps['env']): PublishOptions['kafkaSecurity'] => {
  let kafka: Config['event_log']['kafka']
  try {
    kafka = loadConfig({ env }).event_log.kafka
  } catch (error) {
    throw new UsageError(
      `--kafka connects with TLS and SASL as Herald's configuration says (event_log.kafka.ssl and sasl), which cannot be read: ${errorText(error)}`,
    )
  }
  return { ssl: kafka.ssl, ...(kafka.sasl === null ? {} : { sasl: kafka.sasl }) }
}

const parse = (argv: readonly string[], env: CliDeps['env']): PublishOptions | 'help' => {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    allowNegative: true,
    options: {
      file: { type: 'string', short: 'f' },
      url: { type: 'string' },
      token: { type: 'string' },
      timeout: { type: 'string' },
      'retry-for': { type: 'string' },
      kafka: { type: 'string' },
      topic: { type: 'string', default: 'engine.events' },
      'client-id': { type: 'string', default: 'herald-publish' },
      idempotent: { type: 'boolean', default: true },
      'batch-size': { type: 'string' },
      'skip-invalid': { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return 'help'
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument ${quoteArgument(positionals[0] ?? '')}`)
  const kafka = values.kafka
    ?.split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '')
  // An empty variable is as good as unset (`HERALD_URL= herald publish …`).
  const url = values.url ?? (kafka === undefined ? nonEmpty(env.HERALD_URL) : undefined)
  if (values.url !== undefined && kafka !== undefined) throw new UsageError('give --url or --kafka, not both')
  if (kafka !== undefined && kafka.length === 0) throw new UsageError('--kafka needs at least one broker')
  const notBroker = kafka?.find((broker) => !isHostPort(broker))
  if (notBroker !== undefined) {
    throw new UsageError(`--kafka: ${quoteArgument(notBroker)} is not host:port (IPv6 in brackets)`)
  }
  if (url === undefined && kafka === undefined && !values['dry-run']) {
    throw new UsageError('say where to publish: --url <url> (or HERALD_URL) or --kafka <brokers>')
  }
  if (url !== undefined) serverUrl(url, values.url === undefined ? 'HERALD_URL' : '--url')
  return {
    kafkaSecurity: kafka === undefined ? {} : kafkaSecurityOf(env),
    file: values.file === '-' ? undefined : values.file,
    url,
    token: bearerTokenOf(values.token, env),
    timeoutMs: durationOption(values.timeout, 'timeout', DEFAULT_TIMEOUT_MS),
    retryForMs: durationOption(values['retry-for'], 'retry-for', DEFAULT_RETRY_FOR_MS, true),
    kafka,
    topic: values.topic,
    clientId: values['client-id'],
    idempotent: values.idempotent,
    batchSize: positiveInt(values['batch-size'], 'batch-size', 500),
    skipInvalid: values['skip-invalid'],
    dryRun: values['dry-run'],
  }
}

/**
 * `herald publish`: reads CloudEvents from a file or stdin, checks each against the event
 * catalog, and sends them in batches to Herald's HTTP endpoint or to Kafka. Resolves with
 * the process exit status.
 *
 * @example
 * const status = await runPublish(['--url', 'http://localhost:8228', '--file', 'events.ndjson'], {
 *   stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, fetch,
 * })
 */
export const runPublish = async (argv: readonly string[], deps: CliDeps): Promise<number> => {
  const say = (line: string) => writeText(deps.stderr, `${line}\n`)
  const line = await readCommandLine('herald publish', PUBLISH_USAGE, deps, () => parse(argv, deps.env))
  if ('exit' in line) return line.exit
  const { options } = line

  let text: string
  try {
    text = await readAll(
      options.file === undefined
        ? deps.stdin
        : (deps.readFile ?? ((path: string) => createReadStream(path)))(options.file),
    )
  } catch (error) {
    const notUtf8 = error instanceof NotUtf8Error
    await say(
      `herald publish: cannot read ${options.file ?? 'stdin'}: ${(error as Error).message}` +
        (notUtf8 ? ' (convert it first, e.g. iconv -f latin1 -t utf-8); nothing was sent' : ''),
    )
    return EXIT_FAILED
  }

  const parsed = parseEventInput(text)
  // Over HTTP an event no request can carry is invalid; Kafka's limits are the brokers'.
  const checked = checkEvents(parsed.records, options.kafka === undefined ? MAX_EVENT_BYTES : undefined)
  const problems = [...parsed.problems, ...checked.problems]
  const total = parsed.records.length + parsed.problems.length
  // Nothing to send is most likely the wrong file or an upstream step that failed.
  if (total === 0) {
    await say(`herald publish: no events in ${options.file ?? 'stdin'}: nothing was sent`)
    return EXIT_FAILED
  }
  if (problems.length > 0) {
    await say(
      `herald publish: ${problems.length} of ${total} events are invalid:\n${describeProblems(problems)}`,
    )
    if (!options.skipInvalid) {
      await say(
        checked.events.length > 0
          ? `nothing was sent; --skip-invalid sends the ${checked.events.length} valid events`
          : 'nothing was sent',
      )
      return EXIT_FAILED
    }
  }
  const events = checked.events
  if (options.dryRun) {
    await say(`herald publish: ${events.length} valid events; --dry-run, nothing sent`)
    return problems.length > 0 ? EXIT_FAILED : EXIT_OK
  }
  const batches = toBatches(events, options.batchSize)
  const sent =
    options.kafka === undefined
      ? await sendHttp(batches, options, deps)
      : await sendKafka(batches, options, deps)
  if (sent === undefined) return EXIT_FAILED
  await say(`herald publish: ${sent.count} events published in ${sent.batches} batches to ${sent.to}`)
  return problems.length > 0 ? EXIT_FAILED : EXIT_OK
}

interface Sent {
  readonly count: number
  readonly batches: number
  readonly to: string
}

const sendHttp = async (
  batches: EngineEvent[][],
  options: PublishOptions,
  deps: CliDeps,
): Promise<Sent | undefined> => {
  const say = (line: string) => writeText(deps.stderr, `${line}\n`)
  const url = options.url as string
  const send = createHttpSender({
    url,
    ...(options.token === undefined ? {} : { token: options.token }),
    fetch: deps.fetch,
    sleep: deps.sleep ?? defaultSleep,
    clock: deps.clock ?? Date.now,
    timeoutMs: options.timeoutMs,
    retryForMs: options.retryForMs,
    onRetry: (reason, delayMs, leftMs) => void say(`herald publish: ${retryLine(reason, delayMs, leftMs)}`),
  })
  let count = 0
  for (const [i, batch] of batches.entries()) {
    try {
      count += await send(batch)
    } catch (error) {
      if (!(error instanceof SendError)) throw error
      await say(`herald publish: batch ${i + 1} of ${batches.length} failed: ${error.message}`)
      await say(`${count} events were published before it; the rest were not sent`)
      return undefined
    }
  }
  return { count, batches: batches.length, to: url }
}

const sendKafka = async (
  batches: EngineEvent[][],
  options: PublishOptions,
  deps: CliDeps,
): Promise<Sent | undefined> => {
  const say = (line: string) => writeText(deps.stderr, `${line}\n`)
  const brokers = options.kafka as readonly string[]
  const log = (deps.createKafkaLog ?? createKafkaEventLog)({
    brokers,
    clientId: options.clientId,
    ...options.kafkaSecurity,
    idempotent: options.idempotent,
    retry: { retries: 3, maxRetryTimeMs: 5_000 },
    logger: (entry) => {
      if (entry.level === 'error') void say(`herald publish: kafka: ${entry.message}`)
    },
  })
  let count = 0
  try {
    for (const [i, batch] of batches.entries()) {
      try {
        await log.publish(options.topic, batch.map(encodeLogEvent))
      } catch (error) {
        await say(`herald publish: batch ${i + 1} of ${batches.length} failed: ${(error as Error).message}`)
        await say(`${count} events were published before it; the rest were not sent`)
        return undefined
      }
      count += batch.length
    }
  } finally {
    await log.close().catch(() => {})
  }
  return { count, batches: batches.length, to: `${brokers.join(',')} topic ${options.topic}` }
}
