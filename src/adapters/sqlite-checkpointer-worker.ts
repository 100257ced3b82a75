/** The checkpoint thread's entry (see `sqlite-checkpointer.ts`): every file the process asked it to. */
import { DatabaseSync } from 'node:sqlite'
import { pathToFileURL } from 'node:url'
import { parentPort } from 'node:worker_threads'
import {
  type BackgroundCheckpoints,
  type CheckpointerReply,
  type CheckpointerRequest,
  checkpointsHere,
} from './sqlite-checkpointer.ts'

const files = new Map<number, { readonly db: DatabaseSync; readonly checkpoints: BackgroundCheckpoints }>()
const ended = (id: number) => parentPort?.postMessage({ type: 'ended', id } satisfies CheckpointerReply)

const add = (id: number, path: string, intervalMs: number) => {
  // Opened read-write, never created: a file whose owner closed and deleted it before this
  // thread got to it (a short-lived owner) must not be left behind empty, or its WAL. It then
  // fails to open, which costs nothing: the writer's backstop checkpoints.
  const url = pathToFileURL(path)
  url.searchParams.set('mode', 'rw')
  let db: DatabaseSync
  try {
    // No busy wait: a PASSIVE checkpoint that finds the file busy simply does less, and the
    // next one goes on.
    db = new DatabaseSync(url, { timeout: 0 })
  } catch {
    ended(id)
    return
  }
  files.set(id, { db, checkpoints: checkpointsHere(db, intervalMs) })
}

const remove = (id: number) => {
  const file = files.get(id)
  if (file === undefined) return
  files.delete(id)
  file.checkpoints.stop()
  file.db.close()
  ended(id)
}

parentPort?.on('message', (request: CheckpointerRequest) => {
  if (request.type === 'add') add(request.id, request.path, request.intervalMs)
  else if (request.type === 'remove') remove(request.id)
  else {
    for (const id of [...files.keys()]) remove(id)
    parentPort?.postMessage({ type: 'closed' } satisfies CheckpointerReply)
    parentPort?.close()
  }
})
