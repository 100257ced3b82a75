/**
 * The writer thread's entry (see `writer-thread.ts`): opens its own connection to the store
 * file and writes what it is sent. What arrives while a group is being written waits in the
 * port and becomes the next group, written once this turn's messages are all in.
 */
import { parentPort, workerData } from 'node:worker_threads'
import {
  type FromWriter,
  flattenAnswers,
  type SentError,
  sendError,
  type ToWriter,
  unflattenRequests,
} from './writer-thread.ts'
import { createGroupWriter, openDatabase, type WriteRequest } from './writing.ts'

const port = parentPort
if (port === null) throw new Error('writer-worker.ts runs as a worker thread')
const { path, busyTimeoutMs, maxPageCount } = workerData as {
  path: string
  busyTimeoutMs: number
  maxPageCount?: number
}
const { db, statements } = openDatabase(path, busyTimeoutMs, maxPageCount)
const writer = createGroupWriter(db, statements)

let queue: { readonly id: number; readonly request: WriteRequest }[] = []
let scheduled: NodeJS.Immediate | undefined

const flush = (): void => {
  scheduled = undefined
  const group = queue
  queue = []
  if (group.length === 0) return
  const { answers, written } = writer.write(group.map((g) => g.request))
  port.postMessage({
    type: 'answers',
    written,
    answers: flattenAnswers(
      group.map((g) => g.id),
      answers,
    ),
  } satisfies FromWriter)
}

port.on('message', (message: ToWriter) => {
  if (message.type === 'write') {
    for (const request of unflattenRequests(message.requests)) queue.push(request)
    scheduled ??= setImmediate(flush)
    return
  }
  if (message.type === 'ping') {
    let error: SentError | null = null
    try {
      statements.ping.get()
    } catch (e) {
      error = sendError(e)
    }
    port.postMessage({ type: 'pong', id: message.id, error } satisfies FromWriter)
    return
  }
  if (scheduled !== undefined) clearImmediate(scheduled)
  flush()
  db.close()
  port.postMessage({ type: 'closed' } satisfies FromWriter)
  port.close()
})
