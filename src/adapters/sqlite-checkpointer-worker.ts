/** The checkpointing thread's entry (see `sqlite-checkpointer.ts`). */
import { DatabaseSync } from 'node:sqlite'
import { parentPort, workerData } from 'node:worker_threads'

const { path, intervalMs } = workerData as { path: string; intervalMs: number }
// No busy wait: a PASSIVE checkpoint that finds the file busy simply does less, and the next
// one goes on.
const db = new DatabaseSync(path, { timeout: 0 })
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
