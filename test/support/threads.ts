import { readdirSync, readFileSync } from 'node:fs'

/**
 * The names of this process's threads, as `top -H` and `ps -L` show them (from
 * `/proc/self/task/<tid>/comm`; at most 15 characters each).
 *
 * @example
 * assert.ok(threadNames().includes('wal-checkpoint'))
 */
export const threadNames = (): string[] =>
  readdirSync('/proc/self/task').map((tid) => {
    try {
      return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()
    } catch {
      return '' // ended between the listing and the read
    }
  })
