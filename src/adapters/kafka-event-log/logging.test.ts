import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import kafkajs from 'kafkajs'
import { type KafkaLogEntry, kafkajsLogCreator } from './logging.ts'

describe('kafka event log logging', () => {
  it('routes kafkajs lines into the injected logger with their level and fields', () => {
    const entries: KafkaLogEntry[] = []
    const log = kafkajsLogCreator((e) => entries.push(e))(kafkajs.logLevel.INFO)
    log({
      namespace: 'Connection',
      level: kafkajs.logLevel.ERROR,
      label: 'ERROR',
      log: { timestamp: 'now', message: 'Connection error', logger: 'kafkajs', broker: 'b:9092' },
    })
    assert.deepEqual(entries, [
      {
        level: 'error',
        event: 'kafka_event_log.client',
        message: 'Connection error',
        fields: { namespace: 'Connection', broker: 'b:9092' },
      },
    ])
  })
})
