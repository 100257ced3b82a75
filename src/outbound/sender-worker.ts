/**
 * The HTTP sender thread (see `sender-thread.ts`): performs the exchanges it is sent with the
 * same code the event loop would use, over its own connection pools, and answers each.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { createInlineExchanger } from './exchange.ts'
import { type FromSender, type SenderAnswer, sendFailure, type ToSender } from './sender-thread.ts'

const port = parentPort
if (port === null) throw new Error('sender-worker.ts runs as a worker thread')
const { ca } = workerData as { readonly ca: readonly string[] }
const exchanger = createInlineExchanger({ ca })
const inFlight = new Map<number, AbortController>()

// Answers ready in one turn go back in one message.
let answers: SenderAnswer[] = []
const answer = (reply: SenderAnswer) => {
  if (answers.length === 0)
    setImmediate(() => {
      const ready = answers
      answers = []
      // Each body is a buffer of its own (`createInlineExchanger`): moved, not copied.
      const bodies = ready.flatMap((reply) => (reply.ok ? [reply.answer.body.buffer as ArrayBuffer] : []))
      port.postMessage({ type: 'answers', answers: ready } satisfies FromSender, bodies)
    })
  answers.push(reply)
}

port.on('message', (message: ToSender) => {
  switch (message.type) {
    case 'exchange':
      for (const { id, request } of message.requests) {
        const controller = new AbortController()
        inFlight.set(id, controller)
        exchanger.exchange(request, controller.signal).then(
          (result) => {
            inFlight.delete(id)
            answer({ id, ok: true, answer: result })
          },
          (error: unknown) => {
            inFlight.delete(id)
            // An aborted exchange was already given up on by the caller.
            if (!controller.signal.aborted) answer({ id, ok: false, failure: sendFailure(error) })
          },
        )
      }
      return
    case 'abort':
      inFlight.get(message.id)?.abort(new Error('aborted by the caller'))
      return
    case 'close':
      for (const controller of inFlight.values()) controller.abort(new Error('the sender is closing'))
      void exchanger.close().then(() => {
        port.postMessage({ type: 'closed' } satisfies FromSender)
        port.close()
      })
  }
})
