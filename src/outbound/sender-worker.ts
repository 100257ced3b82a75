/**
 * The HTTP sender thread (see `sender-thread.ts`): performs the exchanges it is sent with the
 * same code the event loop would use, over its own connection pools, and answers each.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { createInlineExchanger } from './exchange.ts'
import {
  type Batch,
  decodeRequests,
  encodeAnswer,
  encodeFailure,
  type FromSender,
  sendFailure,
  type ToSender,
} from './sender-wire.ts'

const port = parentPort
if (port === null) throw new Error('sender-worker.ts runs as a worker thread')
const { ca } = workerData as { readonly ca: readonly string[] }
const exchanger = createInlineExchanger({ ca })
const inFlight = new Map<number, AbortController>()

// Answers ready in one turn go back in one message.
let answers: Batch = []
let bodies: ArrayBuffer[] = []
const send = () => {
  const ready = answers
  const moved = bodies
  answers = []
  bodies = []
  port.postMessage({ type: 'answers', answers: ready } satisfies FromSender, moved)
}
const readying = () => {
  if (answers.length === 0) setImmediate(send)
}

port.on('message', (message: ToSender) => {
  switch (message.type) {
    case 'exchange':
      decodeRequests(message.requests, (id, request) => {
        const controller = new AbortController()
        inFlight.set(id, controller)
        exchanger.exchange(request, controller.signal).then(
          (result) => {
            inFlight.delete(id)
            readying()
            encodeAnswer(answers, bodies, id, result)
          },
          (error: unknown) => {
            inFlight.delete(id)
            // An aborted exchange was already given up on by the caller.
            if (controller.signal.aborted) return
            readying()
            encodeFailure(answers, id, sendFailure(error))
          },
        )
      })
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
