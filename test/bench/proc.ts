import { readFileSync } from 'node:fs'

/**
 * A process's or thread's name and CPU time so far (user + system, ms) from its `/proc` stat
 * file (`/proc/<pid>/stat`, `/proc/<pid>/task/<tid>/stat`): utime and stime are its 14th and
 * 15th fields, counted after the name in parentheses, in clock ticks of 10 ms.
 *
 * @example
 * procStat(`/proc/${pid}/task/${pid}/stat`).cpuMs // the event loop's CPU
 */
export const procStat = (statPath: string): { name: string; cpuMs: number } => {
  const stat = readFileSync(statPath, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return {
    name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
    cpuMs: (Number(fields[11]) + Number(fields[12])) * 10,
  }
}
