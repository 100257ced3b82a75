import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { describe, it } from 'node:test'
import { HeraldError } from './errors/index.ts'
import { kafkaLogLines } from './herald.ts'
import { createLogger, type LogLevel } from './observability/index.ts'

/** A real logger (pino) writing to memory, and the JSON lines it wrote. */
const capture = (level: LogLevel = 'debug') => {
  const destination = new PassThrough()
  const text: string[] = []
  destination.on('data', (chunk: Buffer) => text.push(chunk.toString()))
  const logger = createLogger({ level, destination })
  const lines = () =>
    text
      .join('')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
  return { logger, lines }
}

describe('the Kafka event log’s lines in Herald’s log', () => {
  it('carry the text of the error that made a handler, a commit or a metadata request fail', async () => {
    const { logger, lines } = capture()
    const log = kafkaLogLines(logger)
    log({
      level: 'error',
      event: 'kafka_event_log.handler_failed',
      message: 'batch failed; retrying',
      fields: {
        groupId: 'herald-router',
        error: new HeraldError('event_store_unavailable', 'store down: disk full'),
      },
    })
    log({
      level: 'warn',
      event: 'kafka_event_log.commit_failed',
      message: 'could not commit',
      fields: { groupId: 'herald-router', error: new Error('The coordinator is not aware of this member') },
    })
    await new Promise((resolve) => setImmediate(resolve))
    const [failed, commit] = lines()
    assert.equal(failed?.error, 'store down: disk full')
    assert.equal(failed?.groupId, 'herald-router')
    assert.equal(failed?.message, 'batch failed; retrying')
    assert.equal(commit?.error, 'The coordinator is not aware of this member')
  })
})
