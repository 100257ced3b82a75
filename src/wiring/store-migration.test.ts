import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { LogFields, LogLevel } from '../observability/index.ts'
import { logReadModelUpgrade, logStoreMigration } from './store-migration.ts'

const collecting = () => {
  const lines: { level: LogLevel; event: string; fields?: LogFields }[] = []
  return {
    lines,
    logger: (level: LogLevel, event: string, fields?: LogFields) => {
      lines.push({ level, event, ...(fields === undefined ? {} : { fields }) })
    },
  }
}

describe('the logs of a file brought up to date as it opens', () => {
  it('names the event store file, how many events it copies and how long it took', () => {
    const { lines, logger } = collecting()
    const tell = logStoreMigration(logger, 'data/eventstore.sqlite')
    tell({ stage: 'started', events: 900 })
    tell({ stage: 'finished', events: 900, ms: 12 })
    assert.deepEqual(
      lines.map(({ level, event, fields }) => [level, event, fields?.path, fields?.events, fields?.ms]),
      [
        ['info', 'event_store.migrating', 'data/eventstore.sqlite', 900, undefined],
        ['info', 'event_store.migrated', 'data/eventstore.sqlite', 900, 12],
      ],
    )
  })

  it('names the delivery read model file, its version, the rows it copies and how long it took', () => {
    const { lines, logger } = collecting()
    const tell = logReadModelUpgrade(logger, 'data/deliveries-view.sqlite')
    tell({ stage: 'started', fromVersion: 2, deliveries: 40, attempts: 55 })
    tell({ stage: 'finished', fromVersion: 2, deliveries: 40, attempts: 55, ms: 7 })
    assert.deepEqual(
      lines.map(({ level, event, fields }) => ({ level, event, ...fields, message: undefined })),
      [
        {
          level: 'info',
          event: 'delivery_read_model.upgrading',
          path: 'data/deliveries-view.sqlite',
          fromVersion: 2,
          deliveries: 40,
          attempts: 55,
          message: undefined,
        },
        {
          level: 'info',
          event: 'delivery_read_model.upgraded',
          path: 'data/deliveries-view.sqlite',
          fromVersion: 2,
          deliveries: 40,
          attempts: 55,
          ms: 7,
          message: undefined,
        },
      ],
    )
    assert.match(String(lines[0]?.fields?.message), /copied once/)
  })
})
