/** The checkpointing thread's entry (see `sqlite-checkpointer.ts`). */
import { DatabaseSync } from 'node:sqlite'
import { pathToFileURL } from 'node:url'
import { parentPort, workerData } from 'node:worker_threads'

const { path, intervalMs } = workerData as { path: string; intervalMs: number }
// Opened read-write, never created: a thread that starts after its file was closed and
// deleted (a short-lived owner) must not leave an empty database, or its WAL, behind. It
// then fails to open and ends, which costs nothing: the writer's backstop checkpoints.
const url = pathToFileURL(path)
url.searchParams.set('mode', 'rw')
// No busy wait: a PASSIVE checkpoint that finds the file busy simply does less, and the next
// one goes on.
const db = new DatabaseSync(url, { timeout: 0 })
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)')
const timer = setInterval(() => {
  try {
    checkpoint.get()
  } catch {
    // Busy or locked: the next tick tries again.
  }
}, intervalMs)

parentPort?.once('message', () => {
  clearInterval(timer)
  db.close()
  parentPort?.close()
})
