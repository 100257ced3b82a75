import { concatMap, lastValueFrom, map, type OperatorFunction, of, pipe, tap } from 'rxjs'
import { errorText, type FieldIssue, isHeraldError, type MessageTooLargeError } from '../src/errors/index.ts'
import type { CloudEvent } from '../src/events/index.ts'
import {
  createIngressDecoder,
  DeadLetterHeaders,
  failure,
  type IngressDecoder,
  type IngressEvent,
  type IngressFailure,
  type ProcessedIds,
  processedKey,
  toDeadLetter,
  withoutValue,
} from '../src/ingress/index.ts'
import type { LogFields, Logger } from '../src/observability/index.ts'
import { messageBytes } from '../src/ports/event-log.ts'
import type { Batch, BatchHandler, EventLog, LogMessage, OutgoingMessage } from '../src/ports/index.ts'
import { type DigestWindowOf, decideRoutes, digestWindowMs, loneDigestCommand, noDigests } from './digest.ts'
import type { DigestEntry, DigestStore } from './digest-store.ts'
import { publishAround } from './publish-around.ts'
import { encodeDeliveryCommand, type RouteMatch, type SelectorIndex } from './routing/index.ts'

/**
 * Messages per router batch (the consumer's `maxBatchSize`). Every batch pays one durable
 * publish, one digest-store commit and one processed-id commit, each a sync to disk on the
 * embedded log, plus a produce request on Kafka; 1,000 halves those per event against the
 * logs' default of 500, and a 1 MiB Kafka fetch of the usual 1–1.5 KB events is one call.
 * A batch waits for nothing to fill up, so a light load still goes out message by message.
 */
export const ROUTER_MAX_BATCH = 1_000

export interface RouterCounts {
  /** Valid events routed (duplicates excluded). */
  readonly events: number
  readonly invalid: number
  readonly duplicates: number
  /** Commands published for single events (digests are published by the flusher). */
  readonly deliveries: number
  /** Matches held for digests. */
  readonly digested: number
  /** Invalid messages written to the dead-letter topic, by reason. */
  readonly deadLettered: Readonly<Partial<Record<IngressFailure['code'], number>>>
}

/** A valid event of the batch, with the message it came in and its processed-id key. */
export interface RoutingEvent {
  readonly event: IngressEvent
  readonly message: LogMessage
  readonly key: string
  /** The configurations it matched; set by `matchSelectors`. */
  readonly matches?: readonly RouteMatch[]
}

/** A message refused by the contract or by routing, not yet set aside. */
export interface Refusal {
  readonly message: LogMessage
  readonly reason: IngressFailure
}

/**
 * One batch on its way through the router: each operator takes it and hands on what it
 * decided. Replaced, never changed, from step to step.
 */
export interface Routing {
  readonly batch: Batch
  /** Milliseconds since the epoch when the batch was decoded: the commands' `createdAt`. */
  readonly startedAt: number
  /** Valid events still to route, in log order. */
  readonly events: readonly RoutingEvent[]
  /** The position of the selector set they were matched against (`SelectorIndex.position`); set by `matchSelectors`. */
  readonly selectorSetPosition?: number
  /** Refused messages not yet dead-lettered. */
  readonly refused: readonly Refusal[]
  /** Messages the contract refused. */
  readonly invalid: number
  readonly duplicates: number
  readonly deadLettered: Readonly<Partial<Record<IngressFailure['code'], number>>>
  /** Keys of the events routed, to remember once their commands are out. */
  readonly routed: readonly string[]
  /** Delivery commands to publish, keyed by configuration. */
  readonly commands: readonly OutgoingMessage[]
  /** The event each command was made for, index by index. */
  readonly origins: readonly RoutingEvent[]
  /** Matches of configurations that asked for digests, to hold in the digest store. */
  readonly entries: readonly DigestEntry[]
}

/**
 * Log batches → routings: each message decoded (CloudEvents structured or binary mode, plain
 * JSON or the Confluent wire format) and judged by the event contract. Errors only when the
 * schema registry cannot answer: then nothing of the batch can be judged.
 *
 * @example
 * batches$.pipe(decodeMessages(createIngressDecoder(), Date.now))
 */
export const decodeMessages =
  (decoder: IngressDecoder, clock: () => number): OperatorFunction<Batch, Routing> =>
  (batches) =>
    batches.pipe(
      concatMap(async (batch): Promise<Routing> => {
        const results = await decoder.decodeBatch(batch.messages)
        const events: RoutingEvent[] = []
        const refused: Refusal[] = []
        for (let i = 0; i < results.length; i++) {
          const result = results[i]
          const message = batch.messages[i]
          if (result === undefined || message === undefined) continue
          if (result.ok) events.push({ event: result.event, message, key: processedKey(result.event) })
          else refused.push({ message, reason: result.failure })
        }
        return {
          batch,
          startedAt: clock(),
          events,
          refused,
          invalid: refused.length,
          duplicates: 0,
          deadLettered: {},
          routed: [],
          commands: [],
          origins: [],
          entries: [],
        }
      }),
    )

export interface SetAsideOptions {
  readonly log: Pick<EventLog, 'publish'>
  /** Without it, a refused message is logged and skipped. */
  readonly topic?: string
  /** Named in the letters' `herald.dead_letter.group`. */
  readonly group: string
  readonly clock: () => number
  readonly logger: Logger
  /** The log's `maxMessageBytes`: a letter larger goes without the original's value. */
  readonly maxMessageBytes?: number
}

/**
 * `letter` as the log takes it: whole, or without the original's value when too large (its
 * headers still name where the original stays), or undefined when even that is too large.
 * `report` is told of either shortfall.
 */
const fitted = (
  letter: OutgoingMessage,
  limit: number | undefined,
  report: (fields: LogFields) => void,
): OutgoingMessage | undefined => {
  if (limit === undefined) return letter
  const bytes = messageBytes(letter)
  if (bytes <= limit) return letter
  const bare = withoutValue(letter)
  const fits = messageBytes(bare) <= limit
  report({ bytes, limit, value_omitted: fits, left_out: !fits })
  return fits ? bare : undefined
}

/**
 * Logs each refused message and writes it, bytes, key and headers as they came, to the
 * dead-letter topic with headers naming the reason and where it came from; continues once
 * the letters are durably published, so a poison pill never holds its partition. A letter
 * larger than the log takes (the original within a few hundred bytes of the limit, or an event
 * whose command is too large, its headers added), or that a broker refuses as too large, would
 * fail its batch every time: it goes without the original's value
 * (`herald.dead_letter.value_omitted`), which stays where its headers say, and is logged as
 * `router.dead_letter_too_large`; one too large even so (its original headers alone) is logged
 * so and left out.
 *
 * @example
 * routings$.pipe(setAsideRefused({ log, topic: 'engine.events.dlq', group: 'herald-router', clock, logger }))
 */
export const setAsideRefused =
  ({
    log,
    topic,
    group,
    clock,
    logger,
    maxMessageBytes,
  }: SetAsideOptions): OperatorFunction<Routing, Routing> =>
  (routings) => {
    const tooLarge = ({ message, reason }: Refusal, fields: LogFields): void =>
      logger('error', 'router.dead_letter_too_large', {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
        code: reason.code,
        ...fields,
      })
    return routings.pipe(
      concatMap(async (routing): Promise<Routing> => {
        if (routing.refused.length === 0) return routing
        const now = clock()
        const letters: OutgoingMessage[] = []
        const refusals: Refusal[] = []
        for (const refusal of routing.refused) {
          const { message, reason } = refusal
          logger('warn', 'router.event_invalid', {
            topic: message.topic,
            partition: message.partition,
            offset: message.offset,
            code: reason.code,
            issues: reason.issues.slice(0, 10),
          })
          if (topic === undefined) continue
          const letter = fitted(toDeadLetter(message, reason, { group, now }), maxMessageBytes, (fields) =>
            tooLarge(refusal, fields),
          )
          if (letter === undefined) continue
          letters.push(letter)
          refusals.push(refusal)
        }
        const leftOut = new Set<number>()
        if (topic !== undefined)
          await publishAround(log, topic, letters, (i, sent, error) => {
            const whole = sent.headers?.[DeadLetterHeaders.valueOmitted] === undefined
            tooLarge(refusals[i] as Refusal, {
              bytes: error.context.bytes,
              limit: error.context.limit,
              value_omitted: whole,
              left_out: !whole,
            })
            if (whole) return withoutValue(sent)
            leftOut.add(i)
            return undefined
          })
        const deadLettered = { ...routing.deadLettered }
        refusals.forEach(({ reason }, i) => {
          if (!leftOut.has(i)) deadLettered[reason.code] = (deadLettered[reason.code] ?? 0) + 1
        })
        return { ...routing, refused: [], deadLettered }
      }),
    )
  }

/**
 * Drops each event already routed (by account, source and id, within the processed-id window)
 * or repeated earlier in the batch. Without `processed`, only repeats within a batch go.
 *
 * @example
 * routings$.pipe(dropRouted(createMemoryProcessedIds()))
 */
export const dropRouted =
  (processed?: Pick<ProcessedIds, 'seen'>): OperatorFunction<Routing, Routing> =>
  (routings) =>
    routings.pipe(
      concatMap(async (routing): Promise<Routing> => {
        if (routing.events.length === 0) return routing
        const seen =
          processed === undefined ? new Set<string>() : await processed.seen(routing.events.map((e) => e.key))
        const kept = new Set<string>()
        const events = routing.events.filter(({ key }) => {
          if (seen.has(key) || kept.has(key)) return false
          kept.add(key)
          return true
        })
        return { ...routing, events, duplicates: routing.duplicates + routing.events.length - events.length }
      }),
    )

/**
 * Matches each event against the selector index current when the batch reaches this step:
 * one index for the whole batch, so a configuration change applies from the next batch and no
 * batch sees a mix. Configurations of endpoint types switched off system-wide are not in the
 * index (it is rebuilt when that changes), so they never match. A disabled configuration still
 * matches: the deliverer records its deliveries as skipped, for a replay once it is enabled.
 *
 * @example
 * routings$.pipe(matchSelectors(() => latestIndex))
 */
export const matchSelectors =
  (getIndex: () => SelectorIndex): OperatorFunction<Routing, Routing> =>
  (routings) =>
    routings.pipe(
      map((routing) => {
        if (routing.events.length === 0) return routing
        const index = getIndex()
        return {
          ...routing,
          events: routing.events.map((e) => ({ ...e, matches: index.match(e.event) })),
          ...(index.position === undefined ? {} : { selectorSetPosition: index.position }),
        }
      }),
    )

/** The smaller of two limits, either of which may be absent. */
const smallest = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b)

/** The issue of the first command larger than `limit`, if any. */
const oversized = (commands: readonly OutgoingMessage[], limit: number): FieldIssue | undefined => {
  for (const command of commands) {
    const bytes = messageBytes(command)
    if (bytes > limit)
      return {
        path: '(event)',
        message: `makes a delivery command of ${bytes} bytes (configuration ${command.key}), over the ${limit} a delivery command may take (what the event log takes in one message, or the event store in one append)`,
      }
  }
  return undefined
}

/**
 * The issue of the first entry whose smallest digest (a window holding it alone, listing no
 * event: `loneDigestCommand`) is larger than `limit`, if any. `eventBytes` is the UTF-8 length
 * of the event's JSON, which is written into the digest in place of a one-byte stand-in, so
 * the event is not serialised again for each entry.
 */
const oversizedDigest = (
  entries: readonly DigestEntry[],
  createdAt: string,
  eventBytes: number,
  limit: number,
): FieldIssue | undefined => {
  for (const entry of entries) {
    const command = loneDigestCommand(entry, createdAt)
    // The flusher stamps the digest with the position of the selector set: the largest there is.
    const stand = {
      ...command,
      selectorSetPosition: Number.MAX_SAFE_INTEGER,
      event: 0 as unknown as CloudEvent,
    }
    const bytes = messageBytes(encodeDeliveryCommand(stand)) - 1 + eventBytes
    if (bytes > limit)
      return {
        path: '(event)',
        message: `makes a digest of ${bytes} bytes at the least (configuration ${entry.configurationId}), over the ${limit} the event log takes in one message`,
      }
  }
  return undefined
}

/**
 * Turns the matches into DeliveryCommands (one per configuration an event matched, however
 * many of its selectors did) or, for a configuration that asked for digests, into digest
 * entries. An event the contract accepted that still cannot be written out (it refuses those
 * nested past `MAX_EVENT_DEPTH`; this is the guard behind it), or whose command is larger than
 * `maxMessageBytes` (the log's: its topics took the event, but a command adds a few hundred
 * bytes), or whose digest would be even listing no event (`loneDigestCommand`: a window
 * holding it alone could never go out), is refused as `event_unroutable` before any of its
 * commands is kept, never left to fail the batch and stall the partition, or to fail its
 * digest window at every flush.
 *
 * @example
 * routings$.pipe(matchSelectors(getIndex), toDeliveries(noDigests))
 */
export const toDeliveries =
  (windowOf: DigestWindowOf, maxMessageBytes?: number): OperatorFunction<Routing, Routing> =>
  (routings) =>
    routings.pipe(
      map((routing) => {
        const createdAt = new Date(routing.startedAt).toISOString()
        const routed: string[] = []
        const commands: OutgoingMessage[] = []
        const origins: RoutingEvent[] = []
        const entries: DigestEntry[] = []
        const refused = [...routing.refused]
        for (const routingEvent of routing.events) {
          const { event, message, key, matches = [] } = routingEvent
          if (matches.length === 0) {
            routed.push(key)
            continue
          }
          let eventJson: string
          try {
            // Serialised once for all its commands.
            eventJson = JSON.stringify(event)
          } catch (error) {
            const issue = { path: '(event)', message: `cannot be serialised: ${(error as Error).message}` }
            refused.push({ message, reason: failure('event_unroutable', [issue]) })
            continue
          }
          const mine: OutgoingMessage[] = []
          const held: DigestEntry[] = []
          for (const decision of decideRoutes(
            matches,
            event,
            createdAt,
            windowOf,
            key,
            routing.selectorSetPosition,
          )) {
            if (decision.kind === 'digest') held.push(decision.entry)
            else mine.push(encodeDeliveryCommand(decision.command, eventJson))
          }
          const tooLarge =
            maxMessageBytes === undefined
              ? undefined
              : (oversized(mine, maxMessageBytes) ??
                (held.length === 0
                  ? undefined
                  : oversizedDigest(held, createdAt, Buffer.byteLength(eventJson), maxMessageBytes)))
          if (tooLarge !== undefined) {
            refused.push({ message, reason: failure('event_unroutable', [tooLarge]) })
            continue
          }
          routed.push(key)
          commands.push(...mine)
          origins.push(...mine.map(() => routingEvent))
          entries.push(...held)
        }
        return { ...routing, events: [], refused, routed, commands, origins, entries }
      }),
    )

/**
 * Why the log refused `command` alone as too large, and, when it had written commands of the
 * same event before, to which configurations (`reached`).
 */
const refusalIssues = (
  command: OutgoingMessage,
  error: MessageTooLargeError,
  reached: readonly (string | null)[],
): FieldIssue[] => {
  const { bytes, limit } = error.context
  const refusal = {
    path: '(event)',
    message:
      limit === undefined
        ? `makes a delivery command of ${bytes} bytes (configuration ${command.key}) that the broker refused as too large: event_log.kafka.max_request_bytes is above its message.max.bytes`
        : `makes a delivery command of ${bytes} bytes (configuration ${command.key}), over the ${limit} the event log takes in one message`,
  }
  if (reached.length === 0) return [refusal]
  return [
    refusal,
    {
      path: '(event)',
      message: `reached configuration ${reached.join(', ')} first: routed again, it repeats those commands under their delivery ids, which the deliverer records once`,
    },
  ]
}

/** `routing` without what it held for `unroutable` events, which are now `refused`. */
const withoutUnroutable = (
  routing: Routing,
  unroutable: ReadonlySet<RoutingEvent>,
  refused: readonly Refusal[],
): Routing => {
  const keys = new Set([...unroutable].map((e) => e.key))
  const kept = routing.commands.flatMap((command, i) => {
    const origin = routing.origins[i] as RoutingEvent
    return unroutable.has(origin) ? [] : [{ command, origin }]
  })
  return {
    ...routing,
    refused: [...routing.refused, ...refused],
    routed: routing.routed.filter((key) => !keys.has(key)),
    commands: kept.map((k) => k.command),
    origins: kept.map((k) => k.origin),
    entries: routing.entries.filter((entry) => !keys.has(entry.eventKey)),
  }
}

/**
 * Publishes the commands and records the digest entries, continuing once both are durable.
 * Entries are recorded at the time of recording, not of the batch's start: the flusher takes
 * a window once the clock has passed its end, and an entry recorded after that must open the
 * next window rather than join one that is already being published. A record that fails (a
 * full disk, a failed sync) is logged as `router.digest_record_failed` with its SQLite code
 * and fails the batch, which the log hands over again.
 *
 * An event whose command the log refuses alone as too large (a Kafka broker whose
 * `message.max.bytes` is below `event_log.kafka.max_request_bytes`: `toDeliveries` could not
 * know) is logged as `router.command_refused` and refused as `event_unroutable`, for the next
 * `setAsideRefused` to dead-letter; its other commands still to go and its digest entries are
 * dropped, as `toDeliveries` drops those of an event it refuses, and it is not remembered as
 * routed. Its commands written before the refused one stay written: the log cannot take them
 * back. The letter and the log line name their configurations (`reached`); the event routed
 * again (the letter replayed once the broker takes more) repeats them under the same delivery
 * ids, which the deliverer records once, so those endpoints are not sent it twice. The rest go out in order, rather than the batch failing every time it is retried.
 */
export const publishDeliveries =
  ({
    log,
    topic,
    digests,
    clock,
    logger,
  }: {
    readonly log: Pick<EventLog, 'publish'>
    readonly topic: string
    readonly digests?: Pick<DigestStore, 'record'>
    readonly clock: () => number
    readonly logger?: Logger
  }): OperatorFunction<Routing, Routing> =>
  (routings) =>
    routings.pipe(
      concatMap(async (published) => {
        const unroutable = new Set<RoutingEvent>()
        const refused: Refusal[] = []
        const origin = (i: number) => published.origins[i] as RoutingEvent
        if (published.commands.length > 0)
          await publishAround(
            log,
            topic,
            published.commands,
            (i, command, error, written) => {
              const { message } = origin(i)
              unroutable.add(origin(i))
              const reached = published.commands
                .filter((_, j) => origin(j) === origin(i) && written(j))
                .map((c) => c.key)
              refused.push({
                message,
                reason: failure('event_unroutable', refusalIssues(command, error, reached)),
              })
              logger?.('error', 'router.command_refused', {
                topic: message.topic,
                partition: message.partition,
                offset: message.offset,
                configuration_id: command.key,
                reached,
                code: error.code,
                bytes: error.context.bytes,
                error: error.message,
              })
              return undefined
            },
            (i) => !unroutable.has(origin(i)),
          )
        const routing = unroutable.size === 0 ? published : withoutUnroutable(published, unroutable, refused)
        if (routing.entries.length > 0 && digests !== undefined) {
          try {
            await digests.record(routing.entries, clock())
          } catch (error) {
            logger?.('error', 'router.digest_record_failed', {
              topic: routing.batch.topic,
              partition: routing.batch.partition,
              from_offset: routing.batch.messages[0]?.offset,
              entries: routing.entries.length,
              error: errorText(error),
              sqlite_code: isHeraldError(error) ? error.context.sqliteCode : undefined,
              retried: true,
            })
            throw error
          }
        }
        return routing
      }),
    )

/** Remembers the routed events, so a redelivered message is not routed twice; durable when it continues. */
export const rememberRouted =
  (processed?: Pick<ProcessedIds, 'record'>): OperatorFunction<Routing, Routing> =>
  (routings) =>
    routings.pipe(
      concatMap(async (routing) => {
        if (processed !== undefined && routing.routed.length > 0) await processed.record(routing.routed)
        return routing
      }),
    )

/** The counts of a routed batch, for metrics. */
export const routerCounts = (routing: Routing): RouterCounts => ({
  events: routing.routed.length,
  invalid: routing.invalid,
  duplicates: routing.duplicates,
  deliveries: routing.commands.length,
  digested: routing.entries.length,
  deadLettered: routing.deadLettered,
})

/** Storm control: where the matches of configurations that asked for digests are held. */
export interface RouterDigestOptions {
  readonly store: DigestStore
  /** `notifications.cycle_timers.notifications`: the window of a configuration that names none. */
  readonly defaultWindowSeconds: number
}

export interface RouterHandlerOptions {
  readonly log: Pick<EventLog, 'publish'>
  /** Without `dlq`, an invalid message is logged and skipped; with it, it is also set aside there. */
  readonly topics: { readonly deliveries: string; readonly dlq?: string }
  /** The current selector index; read per batch so a configuration change applies at the next one. */
  readonly getIndex: () => SelectorIndex
  /** Milliseconds since the epoch. */
  readonly clock: () => number
  readonly logger: Logger
  /** Turns messages into events or reasons (default: plain JSON and the event contract, no registry). */
  readonly decoder?: IngressDecoder
  /** The window of events already routed; without it, only repeats within a batch are dropped. */
  readonly processed?: ProcessedIds
  /** Without it, configurations that asked for digests get each event on its own. */
  readonly digests?: RouterDigestOptions
  /**
   * `false`: validate and dead-letter only, route nothing — the router's job when
   * notifications are off, so the dead-letter topic keeps working (default true).
   */
  readonly route?: boolean
  /** Named in dead letters' `herald.dead_letter.group` (default `herald-router`). */
  readonly groupId?: string
  /**
   * The log's `maxMessageBytes`: an event whose command is larger is set aside as
   * `event_unroutable`, a dead letter larger goes without the original's value (default: no
   * limit).
   */
  readonly maxMessageBytes?: number
  /**
   * The most a delivery command may take besides (`MAX_DELIVERY_COMMAND_BYTES`: what the
   * deliverer can record in the event store): an event whose command is larger is set aside
   * as `event_unroutable` too, whatever the log takes (default: no limit).
   */
  readonly maxCommandBytes?: number
  /** After each batch: for metrics (`herald_router_*`, `herald_ingress_*`). */
  readonly onRouted?: (counts: RouterCounts) => void
}

/**
 * The router, as the operators above composed: log batches → decode → set aside the refused
 * → drop events already routed → match the selectors → DeliveryCommands and digest entries →
 * set aside the unroutable → publish and record → set aside those the log refused → remember
 * the routed. Each batch comes out only after its dead letters and commands are durably
 * published, its digest entries durably recorded and its events remembered, so the log
 * commits its offsets only then
 * (at-least-once; delivery ids make repeats harmless). A poison pill never fails a batch;
 * only an unreachable log, store or registry does, and then the batch is retried.
 *
 * @example
 * batches$.pipe(routeBatches({ log, topics, getIndex, clock, logger }))
 */
export const routeBatches = ({
  log,
  topics,
  getIndex,
  clock,
  logger,
  decoder = createIngressDecoder(),
  processed,
  digests,
  route = true,
  groupId = 'herald-router',
  maxMessageBytes,
  maxCommandBytes,
  onRouted,
}: RouterHandlerOptions): OperatorFunction<Batch, Routing> => {
  const setAside = setAsideRefused({
    log,
    topic: topics.dlq,
    group: groupId,
    clock,
    logger,
    ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }),
  })
  const report = tap((routing: Routing) => {
    const counts = routerCounts(routing)
    onRouted?.(counts)
    logger('debug', 'router.batch_routed', {
      topic: routing.batch.topic,
      partition: routing.batch.partition,
      from_offset: routing.batch.messages[0]?.offset,
      messages: routing.batch.messages.length,
      invalid: counts.invalid,
      duplicates: counts.duplicates,
      dead_lettered: Object.values(counts.deadLettered).reduce((sum, n) => sum + n, 0),
      deliveries: counts.deliveries,
      digested: counts.digested,
    })
  })
  if (!route) return pipe(decodeMessages(decoder, clock), setAside, report)
  const windowOf: DigestWindowOf =
    digests === undefined
      ? noDigests
      : (configuration) => digestWindowMs(configuration.digest, digests.defaultWindowSeconds)
  return pipe(
    decodeMessages(decoder, clock),
    setAside,
    dropRouted(processed),
    matchSelectors(getIndex),
    toDeliveries(windowOf, smallest(maxMessageBytes, maxCommandBytes)),
    setAside,
    // What the log refused of the commands is set aside before the batch is remembered.
    pipe(
      publishDeliveries({ log, topic: topics.deliveries, digests: digests?.store, clock, logger }),
      setAside,
    ),
    rememberRouted(processed),
    report,
  )
}

/**
 * An EventLog batch handler running each batch through `pipeline`: it resolves when the batch
 * has come out, so the log commits its offsets only then, and rejects (the batch is retried)
 * when the pipeline errors.
 *
 * @example
 * await log.consume({ groupId: 'herald-router', topics: ['engine.events'] }, batchHandler(routeBatches(options)))
 */
export const batchHandler =
  (pipeline: OperatorFunction<Batch, unknown>): BatchHandler =>
  async (batch) => {
    await lastValueFrom(of(batch).pipe(pipeline), { defaultValue: undefined })
  }

/**
 * The router's EventLog batch handler, and the one consumer group that dead-letters:
 * `routeBatches` run per batch.
 *
 * @example
 * await log.consume({ groupId: 'herald-router', topics: ['engine.events'] },
 *   createRouterHandler({ log, topics: { deliveries: 'notifications.deliveries', dlq: 'engine.events.dlq' },
 *     getIndex, clock, logger, decoder, processed, digests: { store, defaultWindowSeconds: 30 } }))
 */
export const createRouterHandler = (options: RouterHandlerOptions): BatchHandler =>
  batchHandler(routeBatches(options))
