/**
 * How fast this machine runs right now: `npx node test/bench/calibration.ts`, and the first line
 * of the delivery and reports benchmarks. The same machine ran the same benchmark at half the
 * speed from one session to the next (an outbound request took 31–33 µs one day, 65–80 the
 * next), so a figure is only comparable with one taken at a similar calibration.
 *
 * The workload is fixed and of the kinds Herald's hot paths do, on the calling thread: JSON
 * parsed and written, HMAC-SHA256 signatures, rows inserted into an indexed SQLite table in
 * memory. The figure is the fastest of five runs, in ms: lower is faster. It is measured before
 * a benchmark starts its own threads, so what it sees of the machine is what else runs there.
 */
import { createHmac } from 'node:crypto'
import { DatabaseSync } from 'node:sqlite'

const EVENT = JSON.stringify({
  specversion: '1.0',
  id: 'evt-00000000-0000-4000-8000-000000000000',
  source: '/engine/analyzer',
  type: 'user.image.analysis.completed',
  account: 'account-7',
  time: '2026-11-22T10:00:00.000Z',
  data: {
    imageDigest: 'sha256:0f3c9a1d7e5b2c4a6f8e0d1c3b5a79685f4e3d2c1b0a99887766554433221100',
    tags: ['registry.example.com/team/app:1.2.3', 'registry.example.com/team/app:latest'],
    vulnerabilities: Array.from({ length: 8 }, (_, i) => ({ id: `CVE-2026-${1000 + i}`, severity: 'high' })),
  },
})
const KEY = Buffer.alloc(32, 7)

const runOnce = (): number => {
  const started = performance.now()
  let length = 0
  for (let i = 0; i < 5_000; i++) {
    const event = JSON.parse(EVENT) as { id: string }
    event.id = `evt-${i}`
    const body = JSON.stringify(event)
    length += createHmac('sha256', KEY).update(body).digest('base64').length
  }
  const db = new DatabaseSync(':memory:')
  db.exec(
    'CREATE TABLE t (id TEXT PRIMARY KEY, account TEXT, body TEXT); CREATE INDEX t_account ON t (account, id)',
  )
  const insert = db.prepare('INSERT INTO t VALUES (?, ?, ?)')
  db.exec('BEGIN')
  for (let i = 0; i < 5_000; i++) insert.run(`k-${(i * 7919) % 5_000}-${i}`, `account-${i % 9}`, EVENT)
  db.exec('COMMIT')
  db.close()
  if (length === 0) throw new Error('the calibration workload did nothing')
  return performance.now() - started
}

/** The fastest of five runs of the fixed workload, in ms (after one unmeasured run). */
export const calibrate = (): number => {
  runOnce()
  return Math.min(...Array.from({ length: 5 }, runOnce))
}

/** The line a benchmark prints first. */
export const calibrationLine = (): string =>
  `machine calibration: ${calibrate().toFixed(0)} ms for the fixed workload of test/bench/calibration.ts (lower is faster; compare figures taken at a similar calibration)\n`

if (import.meta.main) process.stdout.write(calibrationLine())
