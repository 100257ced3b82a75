import type { DatabaseSync } from 'node:sqlite'
import { translateSqliteError } from '../../adapters/sqlite-errors.ts'
import { openSqliteFile, runTransaction } from '../../adapters/sqlite-file.ts'

/**
 * The notes of late events (`MetricsSchedule.projected`: each account's earliest instant of
 * events stored after metric boundaries they fall before were recorded) that the schedule has
 * not corrected yet, kept on disk. The projector commits those events once they are stored,
 * so a note kept only in memory would be lost with the process, and the points recorded
 * without them would stay wrong.
 */
export interface LateNotes {
  /** Every account's note, in milliseconds. */
  read(): Map<string, number>
  /** Sets each account's note (a number) or removes it (`undefined`), at once, on disk when it returns. */
  write(changes: ReadonlyMap<string, number | undefined>): void
  close(): void
}

const NAME = 'metric corrections file'

/**
 * `LateNotes` in a SQLite file of this process's (`data_dir/metric-corrections.sqlite`), one
 * row per account. Each write is synced before it returns (`synchronous = FULL`): the schedule
 * writes a note before the projector's batch is committed, and a note lost to a power cut would
 * leave points wrong for good. Writes are rare (only events stored with a time before a boundary
 * already recorded make notes), so the sync costs little.
 *
 * @example
 * const notes = openLateNotes(join(config.data_dir, 'metric-corrections.sqlite'))
 * startMetricsSchedule({ ..., notes })
 */
export const openLateNotes = (path: string): LateNotes => {
  let db: DatabaseSync | undefined
  try {
    db = openSqliteFile(path, { synchronous: 'FULL' })
    db.exec('CREATE TABLE IF NOT EXISTS late_notes (account TEXT PRIMARY KEY, at INTEGER NOT NULL) STRICT')
  } catch (error) {
    if (db?.isOpen) db.close()
    throw translateSqliteError(error, NAME, 'open')
  }
  const opened = db
  const statements = {
    all: opened.prepare('SELECT account, at FROM late_notes'),
    set: opened.prepare(
      'INSERT INTO late_notes (account, at) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET at = excluded.at',
    ),
    remove: opened.prepare('DELETE FROM late_notes WHERE account = ?'),
  }
  return {
    read: () => {
      try {
        const notes = new Map<string, number>()
        for (const row of statements.all.iterate()) notes.set(String(row.account), Number(row.at))
        return notes
      } catch (error) {
        throw translateSqliteError(error, NAME, 'read')
      }
    },
    write: (changes) => {
      if (changes.size === 0) return
      try {
        runTransaction(opened, () => {
          for (const [account, at] of changes)
            if (at === undefined) statements.remove.run(account)
            else statements.set.run(account, Math.floor(at))
        })
      } catch (error) {
        throw translateSqliteError(error, NAME, 'write')
      }
    },
    close: () => {
      if (opened.isOpen) opened.close()
    },
  }
}
