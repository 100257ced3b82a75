import { isMessageTooLarge, type MessageTooLargeError } from '../src/errors/index.ts'
import type { EventLog, OutgoingMessage } from '../src/ports/index.ts'

/**
 * Publishes `messages` in order, going around each one the log refuses alone as too large (a
 * Kafka broker whose limit is below the log's `maxMessageBytes`), which would fail its batch
 * every time: `refused` is told of it (its index, the message sent, the error, and which of
 * `messages` the log has written so far) and answers what goes in its place, if anything;
 * `keep` then says which of those still to go do. What the log wrote before the refused one is
 * not sent again. Any other failure fails the publish,
 * for the batch to be retried.
 *
 * @example
 * await publishAround(log, 'engine.events.dlq', letters, (i, sent) => withoutValue(sent))
 */
export const publishAround = async (
  log: Pick<EventLog, 'publish'>,
  topic: string,
  messages: readonly OutgoingMessage[],
  refused: (
    index: number,
    sent: OutgoingMessage,
    error: MessageTooLargeError,
    written: (index: number) => boolean,
  ) => OutgoingMessage | undefined,
  keep: (index: number) => boolean = () => true,
): Promise<void> => {
  const current = [...messages]
  const written = new Set<number>()
  const isWritten = (i: number): boolean => written.has(i)
  // Indices into `messages` of those still to go.
  let pending = messages.map((_, i) => i)
  while (pending.length > 0) {
    try {
      await log.publish(
        topic,
        pending.map((i) => current[i] as OutgoingMessage),
      )
      return
    } catch (error) {
      if (!isMessageTooLarge(error)) throw error
      const { index, published } = error.context
      for (const i of pending.slice(0, published)) written.add(i)
      const culprit = pending[index] as number
      const replacement = refused(culprit, current[culprit] as OutgoingMessage, error, isWritten)
      if (replacement !== undefined) current[culprit] = replacement
      pending = pending.slice(published).filter((i) => (i === culprit ? replacement !== undefined : keep(i)))
    }
  }
}
