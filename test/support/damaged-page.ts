import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'

export interface DamagedPage {
  /**
   * Writes the page back as it was. SQLite keeps the copy it read until the file changes under
   * it, so another connection then writes to the file: every connection reads it again.
   */
  repair(): void
  /** Closes the file; call it once done, repaired or not. */
  close(): void
}

/**
 * Overwrites the root page of `table` in the SQLite file at `path` with garbage, as a failing
 * disk would: a read of the table then fails with SQLITE_CORRUPT ("database disk image is
 * malformed"), while a query touching no page of it (`SELECT 1`) still answers. The file must be
 * closed by whoever wrote it last, so its write-ahead log is in the file.
 *
 * @example
 * const damaged = damageTablePage('eventlog.sqlite', 'messages')
 * try { ...; damaged.repair() } finally { damaged.close() }
 */
export const damageTablePage = (path: string, table: string): DamagedPage => {
  const reader = new DatabaseSync(path, { readOnly: true })
  const { rootpage } = reader.prepare('SELECT rootpage FROM sqlite_master WHERE name = ?').get(table) as {
    rootpage: number
  }
  const { page_size: pageSize } = reader.prepare('PRAGMA page_size').get() as { page_size: number }
  reader.close()
  const at = (rootpage - 1) * pageSize
  const fd = openSync(path, 'r+')
  const page = Buffer.alloc(pageSize)
  readSync(fd, page, 0, pageSize, at)
  writeSync(fd, Buffer.alloc(pageSize, 0xff), 0, pageSize, at)
  return {
    repair: () => {
      writeSync(fd, page, 0, pageSize, at)
      const other = new DatabaseSync(path)
      other.exec('PRAGMA user_version = 1')
      other.close()
    },
    close: () => closeSync(fd),
  }
}
