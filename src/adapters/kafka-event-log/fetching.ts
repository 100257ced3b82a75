import type { KafkaConsumerTimings } from './index.ts'

/** kafkajs's defaults, which apply where the options leave these out. */
const DEFAULT_SESSION_TIMEOUT_MS = 30_000
const DEFAULT_MAX_BYTES_PER_PARTITION = 1_048_576
const DEFAULT_MAX_BYTES = 10_485_760
/** What a message is taken to weigh when a fetch waits for a batch: a modest event. */
const BYTES_PER_MESSAGE = 256

/**
 * The longest a fetch may wait on the broker: a third of the session timeout (10 s by
 * default). kafkajs heartbeats between fetches (and while a handler runs), not during one, so
 * a fetch held for the session timeout or longer on a quiet log gets the member dropped from
 * its group and the partitions rebalanced at every such fetch. A longer wait asked for (the
 * projector's `reports.cycle_timers.load`, a long `max_wait_ms`) therefore means this one on
 * Kafka: a partial batch still goes to the handler within the wait asked for, only sooner
 * and smaller on a quiet log, while a backlog is read in full batches either way.
 */
export const longestFetchWait = (sessionTimeoutMs: number | undefined): number =>
  Math.floor((sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS) / 3)

/**
 * The fetch of a consumer that lets a partial batch wait up to `maxWaitMs` for more messages:
 * the broker holds it until about a full batch is there, or until the wait (at most
 * `longestFetchWait`) is over. Undefined for no wait: the consumer's own fetch settings apply.
 *
 * The bytes waited for are at most one partition's fetch bound (`maxBytesPerPartition`, and
 * the fetch's own `maxBytes`): a broker counts no more than that of each partition toward a
 * fetch's minimum, so a larger minimum (the projector's 20,000 events at 256 bytes are 5 MB)
 * is met only when several partitions have that much at once, and a member of a few
 * partitions waits the whole wait at every fetch, through a backlog too. Bounded, a fetch is
 * answered at once when one partition holds a full fetch's worth.
 */
export const batchFetch = (
  maxWaitMs: number | undefined,
  maxBatchSize: number,
  timings: KafkaConsumerTimings,
): { readonly maxWaitTimeInMs: number; readonly minBytes: number } | undefined => {
  if (maxWaitMs === undefined || maxWaitMs === 0) return undefined
  return {
    maxWaitTimeInMs: Math.min(maxWaitMs, longestFetchWait(timings.sessionTimeoutMs)),
    minBytes: Math.min(
      maxBatchSize * BYTES_PER_MESSAGE,
      timings.maxBytesPerPartition ?? DEFAULT_MAX_BYTES_PER_PARTITION,
      timings.maxBytes ?? DEFAULT_MAX_BYTES,
    ),
  }
}
