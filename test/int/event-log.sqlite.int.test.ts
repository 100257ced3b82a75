import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after } from 'node:test'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { runEventLogContract } from '../contracts/event-log.contract.ts'

const dir = mkdtempSync(join(tmpdir(), 'herald-eventlog-'))
after(() => rmSync(dir, { recursive: true, force: true }))

runEventLogContract({
  name: 'embedded SQLite',
  open: async () => createSqliteEventLog({ path: join(dir, 'eventlog.sqlite'), idlePollMs: 100 }),
})
