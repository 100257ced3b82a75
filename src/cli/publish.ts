import { createReadStream } from 'node:fs'
import { parseArgs } from 'node:util'
import { isAllowed, ROLES, type Role } from '../access/index.ts'
import { createKafkaEventLog, type KafkaEventLogOptions } from '../adapters/kafka-event-log/index.ts'
import { type Config, isHostPort, loadConfig } from '../config/index.ts'
import { errorText } from '../errors/index.ts'
import { type EngineEvent, encodeLogEvent } from '../events/index.ts'
import { createBatcher, MAX_EVENT_BYTES } from './batches.ts'
import { type Caller, createHttpSender, SendError, whoami } from './http-sender.ts'
import {
  type CheckedRecord,
  createEventChecker,
  describeProblems,
  type InputProblem,
  readEventInput,
} from './input.ts'
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
  readCommandLine,
  serverUrl,
  UsageError,
  writeText,
} from './io.ts'
import type { ReadValue } from './json-values.ts'
import { DEFAULT_RETRY_FOR_MS, DEFAULT_TIMEOUT_MS, retryLine } from './retry.ts'
import { NotUtf8Error } from './utf8.ts'

export const PUBLISH_USAGE = `usage: herald publish [--file <path>] (--url <url> | --kafka <brokers>) [options]

Sends CloudEvents to Herald: over HTTP to POST /v1/events, or straight onto Kafka. Every
event is checked against Herald's event catalog first, and over HTTP against the largest
request Herald takes (5 MiB); if any is invalid, each problem is listed with its line (NDJSON)
or index (JSON array) and nothing is sent. Over HTTP the token is checked too, before anything
is sent (GET /v1/auth/whoami): a token Herald refuses, a read-only one, or a non-admin one
and events of another account send nothing. What else only Herald can judge is found as the
batches go: the batches before the refused one stay published, and the output says how many
events they held. A file is read twice, to
check it and then to send it, so it may be of any size; stdin is read whole and its events
held until all are checked (for a large or endless stream, use --file or --stream). A long
send says every 10 s on stderr how many events were published.

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
  --batch-size <n>       events per request or produce call (fewer where they would pass
                         4 MiB); default 500
  --skip-invalid         send the valid events anyway; still list the invalid ones
  --dry-run              check the events and send nothing
  --stream               check and send each event as it is read: a batch leaves once full
                         or a second after its first event, so a pipe that does not end
                         (herald generate --realtime) is published as it flows. An invalid
                         event stops the run once the events before it are sent, and the
                         output says how many (with --skip-invalid it is listed and
                         skipped); a repeated id is flagged among the last 100,000 events.
                         Over HTTP the token is checked first; an event of another account
                         than a non-admin token's is invalid
  -h, --help             show this help

exit status: 0 all sent; 1 invalid events, no events in the input, or Herald or Kafka refused;
2 bad command line.

examples:
  herald publish --url http://localhost:8228 --file events.ndjson
  herald generate --count 1000 | herald publish --url http://localhost:8228
  herald generate --realtime --duration 1h | herald publish --url http://localhost:8228 --stream
  herald publish --kafka localhost:9092 --topic engine.events --file events.json`

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
  readonly stream: boolean
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
      stream: { type: 'boolean', default: false },
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
    stream: values.stream,
  }
}

// How often a long send says how far it got, and how long a --stream batch waits for more.
const PROGRESS_EVERY_MS = 10_000
const STREAM_FLUSH_MS = 1_000
// With --stream, a repeated id is flagged among this many events before it.
const STREAM_REMEMBERED = 100_000
const PROBLEMS_SHOWN = 50

/** Where batches go: Herald over HTTP or Kafka. `send` throws what it could not send. */
interface Target {
  readonly to: string
  readonly send: (batch: EngineEvent[]) => Promise<number>
  readonly close: () => Promise<void>
}

/** The input's events as read, checked, from the start: stdin once, a file as often as asked. */
type Source = () => AsyncIterable<Uint8Array | string>

/**
 * `herald publish`: reads CloudEvents from a file or stdin, checks each against the event
 * catalog, and sends them in batches to Herald's HTTP endpoint or to Kafka. A file is read
 * twice, once to check it whole and once to send it, so no more than a batch is held; stdin,
 * which cannot be read again, has its events held until all are checked; with `--stream` each
 * event is checked and sent as it comes. Resolves with the process exit status.
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
  const name = options.file ?? 'stdin'
  const source: Source = () =>
    options.file === undefined
      ? deps.stdin
      : (deps.readFile ?? ((path: string) => createReadStream(path)))(options.file)
  // Over HTTP an event no request can carry is invalid; Kafka's limits are the brokers'.
  const maxEventBytes = options.kafka === undefined ? MAX_EVENT_BYTES : undefined
  const cannotRead = async (error: unknown) => {
    const notUtf8 = error instanceof NotUtf8Error
    await say(
      `herald publish: cannot read ${name}: ${errorText(error)}` +
        (notUtf8 ? ' (convert it first, e.g. iconv -f latin1 -t utf-8)' : ''),
    )
  }
  if (options.stream && !options.dryRun)
    return publishStream(source(), options, deps, maxEventBytes, cannotRead)

  // First every event is checked: nothing is sent if one is invalid.
  const check = createEventChecker(maxEventBytes === undefined ? {} : { maxEventBytes })
  const held: EngineEvent[] | undefined = options.file === undefined ? [] : undefined
  const problems: InputProblem[] = []
  const invalidAt = new Set<string>()
  // How many valid events each account has, for the token's check.
  const accounts = new Map<string, number>()
  let total = 0
  let valid = 0
  // How many batches the valid events make, for `batch 3 of 7`.
  const counting = createBatcher(options.batchSize)
  let batches = 0
  try {
    for await (const item of readEventInput(source())) {
      total++
      const checked = 'value' in item ? check(item) : { problem: item }
      if ('problem' in checked) {
        if (problems.length < PROBLEMS_SHOWN) problems.push(checked.problem)
        invalidAt.add(checked.problem.where)
        continue
      }
      valid++
      accounts.set(checked.event.account, (accounts.get(checked.event.account) ?? 0) + 1)
      if (counting.add(checked.event, checked.bytes) !== undefined) batches++
      held?.push(checked.event)
    }
  } catch (error) {
    await cannotRead(error)
    await say('nothing was sent')
    return EXIT_FAILED
  }
  if (counting.take() !== undefined) batches++
  // Nothing to send is most likely the wrong file or an upstream step that failed.
  if (total === 0) {
    await say(`herald publish: no events in ${name}: nothing was sent`)
    return EXIT_FAILED
  }
  const invalid = total - valid
  if (invalid > 0) {
    const more = invalid - problems.length
    await say(
      `herald publish: ${invalid} of ${total} events are invalid:\n${describeProblems(problems)}` +
        (more > 0 ? `\n  … and ${more} more events` : ''),
    )
    if (!options.skipInvalid) {
      await say(
        valid > 0 ? `nothing was sent; --skip-invalid sends the ${valid} valid events` : 'nothing was sent',
      )
      return EXIT_FAILED
    }
  }
  if (options.dryRun) {
    await say(`herald publish: ${valid} valid events; --dry-run, nothing sent`)
    return invalid > 0 ? EXIT_FAILED : EXIT_OK
  }
  if (valid === 0) {
    await say('herald publish: no valid events: nothing was sent')
    return EXIT_FAILED
  }

  if (options.kafka === undefined) {
    const refused = await tokenRefusal(options, deps, accounts)
    if (refused !== undefined) {
      await say(`herald publish: ${refused}`)
      await say('nothing was sent')
      return EXIT_FAILED
    }
  }

  // Then they are sent: those held, or the file's read again and checked again as they go.
  const events = async function* (): AsyncGenerator<{ event: EngineEvent; bytes: number }> {
    if (held !== undefined) {
      for (const event of held) yield { event, bytes: Buffer.byteLength(JSON.stringify(event)) }
      return
    }
    const again = createEventChecker(maxEventBytes === undefined ? {} : { maxEventBytes })
    let count = 0
    const reading = readEventInput(source())[Symbol.asyncIterator]()
    while (true) {
      let item: IteratorResult<ReadValue>
      try {
        item = await reading.next()
      } catch (error) {
        throw new ReadError(error)
      }
      if (item.done) break
      const checked = 'value' in item.value ? again(item.value) : { problem: item.value }
      if ('event' in checked) {
        count++
        yield checked
      } else if (!invalidAt.has(checked.problem.where)) throw new ChangedError(name)
    }
    if (count !== valid) throw new ChangedError(name)
  }
  const target = openTarget(options, deps)
  try {
    const sent = await sendAll(events(), target, options, deps, { events: valid, batches })
    if (sent.failed !== undefined) {
      await say(`herald publish: ${sent.failed}`)
      await say(`${sent.count} events were published before it; the rest were not sent`)
      return EXIT_FAILED
    }
    await say(`herald publish: ${sent.count} events published in ${sent.batches} batches to ${target.to}`)
    return invalid > 0 ? EXIT_FAILED : EXIT_OK
  } finally {
    await target.close()
  }
}

/**
 * Whom the token stands for, as Herald says (`GET /v1/auth/whoami`), or why it may not publish
 * at all; `caller` undefined when Herald does not say (a Herald without the route, one not
 * reached now, a role this CLI does not know: the sending finds out).
 */
const askCaller = async (
  options: PublishOptions,
  deps: CliDeps,
): Promise<{ readonly refused: string } | { readonly caller: (Caller & { role: Role }) | undefined }> => {
  let caller: Caller | undefined
  try {
    caller = await whoami({
      url: options.url as string,
      ...(options.token === undefined ? {} : { token: options.token }),
      fetch: deps.fetch,
      timeoutMs: options.timeoutMs,
    })
  } catch (error) {
    if (error instanceof SendError) return { refused: `the token is refused: ${error.message}` }
    throw error
  }
  if (caller === undefined || !(ROLES as readonly string[]).includes(caller.role))
    return { caller: undefined }
  const role = caller.role as Role
  if (!isAllowed(role, 'publishEvents'))
    return { refused: `the token is ${caller.account}'s ${role} token, which may not publish events` }
  return { caller: { ...caller, role } }
}

/** What a token that may publish only its own account's events says of `foreign` ones. */
const ownAccountOnly = (caller: Caller & { role: Role }): string =>
  `the token is ${caller.account}'s ${caller.role} token, which may publish only ${caller.account}'s events`

/**
 * Why the token may not send events of `accounts` (each with its count), as Herald says whom
 * it stands for; undefined when it may, or when Herald does not say.
 */
const tokenRefusal = async (
  options: PublishOptions,
  deps: CliDeps,
  accounts: ReadonlyMap<string, number>,
): Promise<string | undefined> => {
  const asked = await askCaller(options, deps)
  if ('refused' in asked) return asked.refused
  const { caller } = asked
  if (caller === undefined || caller.role === 'admin') return undefined
  const foreign = [...accounts].filter(([account]) => account !== caller.account)
  if (foreign.length === 0) return undefined
  const events = foreign.reduce((sum, [, count]) => sum + count, 0)
  const named = foreign
    .slice(0, 5)
    .map(([account, count]) => `${account} (${count})`)
    .join(', ')
  const more = foreign.length > 5 ? `, and ${foreign.length - 5} more accounts` : ''
  return `${ownAccountOnly(caller)}; ${events} events are of other accounts: ${named}${more}`
}

/** The file read to be sent is not the one checked. */
class ChangedError extends Error {
  constructor(name: string) {
    super(`${name} changed after it was checked`)
  }
}

/** The input could not be read (`cause`): gone, not UTF-8. */
class ReadError extends Error {
  constructor(cause: unknown) {
    super(errorText(cause), { cause })
  }
}

interface Sent {
  readonly count: number
  readonly batches: number
  /** What stopped the sending, if anything did. */
  readonly failed?: string
}

/**
 * Sends `events` in batches to `target` as they come, saying every 10 s how many were
 * published (of `total`, when known). A batch that fails, or an input that fails, ends it.
 */
const sendAll = async (
  events: AsyncIterable<{ event: EngineEvent; bytes: number }>,
  target: Target,
  options: PublishOptions,
  deps: CliDeps,
  total: { readonly events: number; readonly batches: number },
): Promise<Sent> => {
  const clock = deps.clock ?? Date.now
  const batcher = createBatcher(options.batchSize)
  let count = 0
  let batches = 0
  let told = clock()
  const send = async (batch: EngineEvent[]) => {
    batches++
    count += await target.send(batch)
    if (clock() - told >= PROGRESS_EVERY_MS) {
      told = clock()
      const share = Math.floor((count / total.events) * 100)
      await writeText(
        deps.stderr,
        `herald publish: ${count} of ${total.events} events published (${share}%)\n`,
      )
    }
  }
  try {
    for await (const { event, bytes } of events) {
      const full = batcher.add(event, bytes)
      if (full !== undefined) await send(full)
    }
    const last = batcher.take()
    if (last !== undefined) await send(last)
  } catch (error) {
    if (error instanceof ChangedError) return { count, batches, failed: `${error.message}; stopped` }
    if (error instanceof ReadError)
      return { count, batches, failed: `cannot read the input again: ${error.message}` }
    if (error instanceof SendError || error instanceof PublishError)
      return { count, batches, failed: `batch ${batches} of ${total.batches} failed: ${error.message}` }
    throw error
  }
  return { count, batches }
}

/** Kafka refused a batch. */
class PublishError extends Error {}

const openTarget = (options: PublishOptions, deps: CliDeps): Target => {
  const say = (line: string) => writeText(deps.stderr, `${line}\n`)
  if (options.kafka === undefined) {
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
    return { to: url, send, close: async () => {} }
  }
  const brokers = options.kafka
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
  return {
    to: `${brokers.join(',')} topic ${options.topic}`,
    send: async (batch) => {
      try {
        await log.publish(options.topic, batch.map(encodeLogEvent))
      } catch (error) {
        throw new PublishError(errorText(error))
      }
      return batch.length
    },
    close: () => log.close().catch(() => {}),
  }
}

/** `checked`, or a problem when its event is of another account than `caller`'s own (if set). */
const foreignTo = (
  caller: (Caller & { role: Role }) | undefined,
  where: string,
  checked: CheckedRecord,
): CheckedRecord => {
  if (caller === undefined || !('event' in checked) || checked.event.account === caller.account)
    return checked
  return {
    problem: {
      where,
      issues: [{ path: 'account', message: `is ${checked.event.account}: ${ownAccountOnly(caller)}` }],
    },
  }
}

/**
 * `--stream`: each event is checked as it is read and sent in a batch that leaves once full or
 * a second after its first event, so a pipe that never ends (`generate --realtime`) is
 * published as it flows. An invalid event stops the run once the events before it are sent,
 * unless `--skip-invalid`, which lists and skips it.
 */
const publishStream = async (
  input: AsyncIterable<Uint8Array | string>,
  options: PublishOptions,
  deps: CliDeps,
  maxEventBytes: number | undefined,
  cannotRead: (error: unknown) => Promise<void>,
): Promise<number> => {
  const say = (line: string) => writeText(deps.stderr, `${line}\n`)
  const clock = deps.clock ?? Date.now
  const check = createEventChecker({
    remember: STREAM_REMEMBERED,
    ...(maxEventBytes === undefined ? {} : { maxEventBytes }),
  })
  // The token first, over HTTP, as without --stream: one Herald refuses, or one that may not
  // publish, sends nothing; one of an account sends nothing of another's (each such event is
  // invalid here, as Herald would refuse its batch).
  let ownAccount: (Caller & { role: Role }) | undefined
  if (options.kafka === undefined) {
    const asked = await askCaller(options, deps)
    if ('refused' in asked) {
      await say(`herald publish: ${asked.refused}`)
      await say('nothing was sent')
      return EXIT_FAILED
    }
    if (asked.caller !== undefined && asked.caller.role !== 'admin') ownAccount = asked.caller
  }
  const batcher = createBatcher(options.batchSize)
  const target = openTarget(options, deps)
  let count = 0
  let batches = 0
  let read = 0
  let invalid = 0
  let told = clock()
  const send = async (batch: EngineEvent[] | undefined) => {
    if (batch === undefined) return
    batches++
    count += await target.send(batch)
    if (clock() - told >= PROGRESS_EVERY_MS) {
      told = clock()
      await say(`herald publish: ${count} events published so far`)
    }
  }
  const stopped = async (why: string) => {
    await say(`herald publish: ${why}`)
    await say(`${count} events were published before it; nothing after it was sent`)
    return EXIT_FAILED
  }
  const values = readEventInput(input)[Symbol.asyncIterator]()
  // What reading fails with is told apart from what sending fails with.
  const nextValue = () =>
    values.next().catch((error: unknown) => {
      throw new ReadError(error)
    })
  try {
    let next = nextValue()
    let firstAt = 0
    while (true) {
      let item: IteratorResult<ReadValue>
      if (batcher.pending === 0) item = await next
      else {
        // A batch begun waits for more at most STREAM_FLUSH_MS, then leaves as it is.
        let timer: NodeJS.Timeout | undefined
        const waited = await Promise.race([
          next,
          new Promise<'flush'>((resolve) => {
            timer = setTimeout(() => resolve('flush'), Math.max(0, firstAt + STREAM_FLUSH_MS - clock()))
          }),
        ])
        clearTimeout(timer)
        if (waited === 'flush') {
          await send(batcher.take())
          continue
        }
        item = waited
      }
      if (item.done) break
      next = nextValue()
      read++
      const checked =
        'value' in item.value
          ? foreignTo(ownAccount, item.value.where, check(item.value))
          : { problem: item.value }
      if ('problem' in checked) {
        invalid++
        const report = `${checked.problem.where} is invalid:\n${describeProblems([checked.problem])}`
        if (!options.skipInvalid) {
          await send(batcher.take())
          return await stopped(report)
        }
        await say(`herald publish: ${report}; skipped (--skip-invalid)`)
        continue
      }
      await send(batcher.add(checked.event, checked.bytes))
      if (batcher.pending === 1) firstAt = clock()
    }
    await send(batcher.take())
  } catch (error) {
    if (error instanceof SendError || error instanceof PublishError)
      return await stopped(`batch ${batches} failed: ${error.message}`)
    if (!(error instanceof ReadError)) throw error
    await cannotRead(error.cause)
    await say(`${count} events were published before it; nothing after it was sent`)
    return EXIT_FAILED
  } finally {
    await target.close()
  }
  if (read === 0) {
    await say('herald publish: no events in stdin: nothing was sent')
    return EXIT_FAILED
  }
  await say(`herald publish: ${count} events published in ${batches} batches to ${target.to}`)
  return invalid > 0 ? EXIT_FAILED : EXIT_OK
}
