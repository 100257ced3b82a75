/**
 * The delivery read model's fold, the `delivery-fold` thread's work (issue 6):
 * `npx node test/bench/delivery-fold.bench.ts [--deliveries N] [--configurations K]
 * [--commit E] [--lag L] [--rounds R] [--event-bytes B]` (defaults 30,000, 100, 40, 1,000, 3;
 * events of about 300 bytes, or padded to about B).
 * The embedded delivery store (a file) is filled once as the deliverer fills it: requests in
 * batches (`requestMany`), and each delivery's attempt with its success appended together `L`
 * deliveries after its request, one store commit per turn. Each round then folds that log from
 * position 0 into a new read-model file, `E` store events a transaction, each in a turn of its
 * own (see `paced`: live, the fold commits what one store commit appended), on the event loop
 * with the fold thread's settings (it checkpoints its own file between folds). Printed per
 * delivery: µs of CPU (this thread's, and the whole process's), of wall, KiB written and read
 * (mostly WAL frames and their checkpoints, and pages missing from SQLite's cache), and the
 * same for reading the log alone in the same pages, which the fold includes. Figures are
 * printed, never asserted.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { MessageChannel } from 'node:worker_threads'
import { lastValueFrom, Observable, takeWhile } from 'rxjs'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { createDeliveryReadModel, DELIVERY_STREAM_PREFIX } from '../../src/deliveries/index.ts'
import type { EventStore, RecordedEvent } from '../../src/ports/index.ts'
import { optionalPositiveWholeNumber, positiveWholeNumber, wholeNumber } from './args.ts'
import { fillDeliveryLog } from './delivery-log-fill.ts'

const { values } = parseArgs({
  options: {
    deliveries: { type: 'string', default: '30000' },
    configurations: { type: 'string', default: '100' },
    commit: { type: 'string', default: '40' },
    lag: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    'event-bytes': { type: 'string' },
  },
})
const DELIVERIES = positiveWholeNumber('--deliveries', values.deliveries)
const COMMIT = positiveWholeNumber('--commit', values.commit)
const LAG = wholeNumber('--lag', values.lag, 0)
const ROUNDS = positiveWholeNumber('--rounds', values.rounds)
const EVENT_BYTES = optionalPositiveWholeNumber('--event-bytes', values['event-bytes'])
const CONFIGURATIONS = positiveWholeNumber('--configurations', values.configurations)
const ORIGIN = 'bench-instance'
const dir = mkdtempSync(join(tmpdir(), 'herald-bench-fold-'))
const storePath = join(dir, 'deliveries.sqlite')
const out = (line: string) => process.stdout.write(`${line}\n`)

interface Figures {
  readonly thread: number
  readonly process: number
  readonly wall: number
  /** KiB handed to write(2) and read(2) by the process (`/proc/self/io`'s wchar, rchar): pages, cached or not. */
  readonly written: number
  readonly read: number
}

const io = (): { wchar: number; rchar: number } => {
  const fields = new Map(
    readFileSync('/proc/self/io', 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(': ') as [string, string]),
  )
  return { wchar: Number(fields.get('wchar')), rchar: Number(fields.get('rchar')) }
}

const measure = async (work: () => Promise<void>): Promise<Figures> => {
  const thread = process.threadCpuUsage()
  const all = process.cpuUsage()
  const before = io()
  const started = performance.now()
  await work()
  const wall = performance.now() - started
  const t = process.threadCpuUsage(thread)
  const p = process.cpuUsage(all)
  const after = io()
  return {
    written: (after.wchar - before.wchar) / 1_024 / DELIVERIES,
    read: (after.rchar - before.rchar) / 1_024 / DELIVERIES,
    thread: (t.user + t.system) / DELIVERIES,
    process: (p.user + p.system) / DELIVERIES,
    wall: (wall * 1_000) / DELIVERIES,
  }
}

const show = (f: Figures) =>
  `${f.thread.toFixed(1)} µs CPU (${f.process.toFixed(1)} process), ${f.wall.toFixed(1)} µs wall, ` +
  `${f.written.toFixed(1)} KiB written, ${f.read.toFixed(1)} read`

/**
 * The store's log `COMMIT` events at a time, as the folding thread reads it when told of each
 * store commit by a message: a page is read and folded in a message's turn, its transaction
 * committed at the end of that turn (the model's immediate), and the next page is asked for by
 * `next` (the fold: once that commit is done; `eager`: once the page is read), so the model's
 * checkpoint timer runs between two transactions. (The store's own catch-up reads page after
 * page in one immediate after another, with a transaction open across the timers.)
 */
const paced = (store: EventStore, { eager = false } = {}) => {
  const { port1, port2 } = new MessageChannel()
  const next = () => port2.postMessage(null)
  const source: Pick<EventStore, 'subscribeToAll'> = {
    subscribeToAll: (options) =>
      new Observable<RecordedEvent>((subscriber) => {
        let after = options?.after ?? 0
        port1.on('message', () => {
          store.readAll({ after, maxCount: COMMIT, streamPrefixes: [DELIVERY_STREAM_PREFIX] }).then(
            (page) => {
              for (const event of page) {
                after = event.position
                subscriber.next(event)
              }
              if (page.length < COMMIT) subscriber.complete()
              else if (eager) setImmediate(next)
            },
            (error: unknown) => subscriber.error(error),
          )
        })
        next()
        return () => port1.close()
      }),
  }
  return { source, next }
}

/** Reads the log from the start as `fold` does, folding nothing. */
const readOnly = (last: number) => {
  const store = createSqliteEventStore({ path: storePath })
  const { source } = paced(store, { eager: true })
  return measure(async () => {
    await lastValueFrom(source.subscribeToAll({ after: 0 }).pipe(takeWhile((e) => e.position < last, true)))
  }).finally(() => store.close())
}

const fold = async (
  round: number,
  last: number,
): Promise<{ figures: Figures; bytes: number; commits: number }> => {
  const store = createSqliteEventStore({ path: storePath })
  const path = join(dir, `view-${round}.sqlite`)
  const view = createDeliveryReadModel({ path, newId: () => ORIGIN, checkpointHere: true })
  const { source, next } = paced(store)
  let commits = 0
  view.onChange(() => {
    commits++
    next()
  })
  let figures: Figures
  try {
    figures = await measure(async () => {
      view.follow(source)
      await view.waitFor(last)
    })
  } finally {
    await view.close()
    await store.close()
  }
  return { figures, bytes: statSync(path).size, commits }
}

try {
  const filled = performance.now()
  const last = await fillDeliveryLog({
    path: storePath,
    deliveries: DELIVERIES,
    configurations: CONFIGURATIONS,
    commit: COMMIT,
    lag: LAG,
    eventBytes: EVENT_BYTES,
    origin: ORIGIN,
  })
  out(
    `\n## Delivery fold: ${DELIVERIES} deliveries, ${CONFIGURATIONS} configurations, ` +
      `${COMMIT} events a transaction, attempts ${LAG} deliveries behind their requests, ` +
      `${EVENT_BYTES === undefined ? 'events of about 300 bytes' : `events padded to about ${EVENT_BYTES} bytes`}\n`,
  )
  out(`log filled in ${((performance.now() - filled) / 1_000).toFixed(1)} s, ${last} events`)
  for (let round = 1; round <= ROUNDS; round++) {
    const read = await readOnly(last)
    const { figures, bytes, commits } = await fold(round, last)
    out(
      `round ${round}: fold ${show(figures)} per delivery; reading alone ${show(read)}; ` +
        `${commits} commits, view file ${(bytes / 1_048_576).toFixed(1)} MiB`,
    )
  }
} finally {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
}
