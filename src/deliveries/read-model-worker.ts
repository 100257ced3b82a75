/**
 * The read model's folding thread (see `read-model-thread.ts`): follows the embedded delivery
 * store through a connection of its own and folds its delivery events into the read model's
 * file, telling the caller how far each commit got. The caller reads the file through its own
 * connection.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { sendSqliteError, sqliteErrorIn } from '../adapters/sqlite-errors.ts'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { errorText } from '../errors/index.ts'
import { createDeliveryReadModel } from './read-model.ts'
import type { FoldingData, FromFolder, ToFolder } from './read-model-thread.ts'

const port = parentPort
if (port === null) throw new Error('read-model-worker.ts runs as a worker thread')
const data = workerData as FoldingData
const post = (message: FromFolder) => port.postMessage(message)
/** The caller hears of a failure with the SQLite error behind it: a write that failed counts for its `ping`. */
const postError = (error: unknown): void => {
  const sqlite = sqliteErrorIn(error)
  post({
    type: 'error',
    message: errorText(error),
    ...(sqlite === undefined ? {} : { sqlite: sendSqliteError(sqlite) }),
  })
}

// Reading only: the appends are the store's writer's. It looks for them when told of a
// commit, and every `storePollMs` for those of other processes.
const store = createSqliteEventStore({ path: data.storePath, pollIntervalMs: data.storePollMs })
const view = createDeliveryReadModel({
  path: data.path,
  newId: () => {
    throw new Error('the read model file has no instance id: the caller opens it first')
  },
  failureGapMs: data.failureGapMs,
  resubscribeMs: data.resubscribeMs,
  ...(data.checkpointIntervalMs === undefined ? {} : { checkpointIntervalMs: data.checkpointIntervalMs }),
  ...(data.maxPageCount === undefined ? {} : { maxPageCount: data.maxPageCount }),
  ...(data.busyCommitWaitMs === undefined ? {} : { busyCommitWaitMs: data.busyCommitWaitMs }),
  ...(data.busyCommitEvents === undefined ? {} : { busyCommitEvents: data.busyCommitEvents }),
  // This thread is the file's only writer and not the event loop: it checkpoints between folds.
  checkpointHere: true,
  onInvalidEvent: (event, issues) => post({ type: 'invalid', event, issues }),
  onFollowError: postError,
})
view.onChange(() => post({ type: 'committed', position: view.position() }))
post({ type: 'committed', position: view.position() })
view.follow(store)

port.on('message', (message: ToFolder) => {
  if (message.type === 'committed') {
    store.checkNow()
    return
  }
  if (message.type === 'forget') {
    try {
      view.forget(message.deliveries)
      post({ type: 'forgotten', deliveries: message.deliveries })
    } catch (error) {
      postError(error)
    }
    return
  }
  if (message.type === 'published') {
    // A write that fails is the model's to fold again, and the next message's to write (the
    // caller keeps how far it published); thrown, it would end this thread.
    try {
      view.markPublished([message.through])
    } catch (error) {
      postError(error)
    }
    return
  }
  void (async () => {
    await view.close()
    await store.close()
    post({ type: 'closed', position: view.position() })
    port.close()
  })()
})
