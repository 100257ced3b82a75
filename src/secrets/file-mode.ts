import { statSync } from 'node:fs'
import type { Logger } from '../observability/index.ts'

/**
 * Warns, naming the file and its mode, when users other than the owner may read or write a
 * file holding a secret (`secret.key`, `admin-token`): one restored from a backup as 0644 is
 * still used, since refusing it would stop Herald for a permission it can tell the operator
 * to fix. Nothing is said of a file that cannot be examined: its reader reports that.
 *
 * @example
 * warnIfOpenToOthers(join(config.data_dir, 'secret.key'), logger)
 */
export const warnIfOpenToOthers = (path: string, logger: Logger): void => {
  let mode: number
  try {
    mode = statSync(path).mode & 0o777
  } catch {
    return
  }
  if ((mode & 0o077) === 0) return
  logger('warn', 'herald.file_mode_too_open', {
    file: path,
    mode: `0${mode.toString(8).padStart(3, '0')}`,
    hint: `other users may read or change this file, which holds a secret: chmod 600 ${path}`,
  })
}
