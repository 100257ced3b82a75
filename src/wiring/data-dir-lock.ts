import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { HeraldError } from '../errors/index.ts'

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The embedded adapters keep consumer-group membership in process, so two Herald processes on
 * one data directory would both consume every partition. A pid file refuses the second one;
 * a file left by a process that died is taken over.
 */
export const lockDataDir = (dataDir: string, pid = process.pid): { release(): void } => {
  const file = join(dataDir, 'herald.pid')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o644)
      writeSync(fd, `${pid}\n`)
      closeSync(fd)
      return { release: () => rmSync(file, { force: true }) }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const holder = Number.parseInt(readFileSync(file, 'utf8'), 10)
      if (Number.isInteger(holder) && holder !== pid && isAlive(holder)) {
        throw new HeraldError(
          'data_dir_locked',
          `data directory ${dataDir} is in use by Herald process ${holder}; stop it or choose another HERALD_DATA_DIR`,
        )
      }
      rmSync(file, { force: true })
    }
  }
  throw new HeraldError('data_dir_locked', `could not lock data directory ${dataDir}`)
}
