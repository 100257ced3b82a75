import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { describe, it } from 'node:test'
import { createLogger } from './logger.ts'

/** A real logger writing to memory, and the raw text of the lines it wrote. */
const capture = () => {
  const destination = new PassThrough()
  const text: string[] = []
  destination.on('data', (chunk: Buffer) => text.push(chunk.toString()))
  const logger = createLogger({ level: 'debug', destination })
  const lines = async () => {
    await new Promise((resolve) => setImmediate(resolve))
    return text
      .join('')
      .split('\n')
      .filter((line) => line !== '')
  }
  return { logger, lines }
}

describe('createLogger', () => {
  it('writes a field named as one of the line’s own keys (event, level, time, service) as field_<name>, never as a second key', async () => {
    const { logger, lines } = capture()
    logger('error', 'projector.log_reset', {
      event: '"e9" of /x',
      level: 'debug',
      time: 5,
      service: 'other',
      topic: 't',
    })
    logger.fatal('herald.crashed', { event: 'x' })
    const [line, fatal] = await lines()
    for (const key of ['event', 'level', 'time', 'service'])
      assert.equal(line?.split(`"${key}":`).length, 2, `one "${key}" key in ${line}`)
    const parsed = JSON.parse(line ?? '') as Record<string, unknown>
    assert.deepEqual(
      {
        event: parsed.event,
        level: parsed.level,
        service: parsed.service,
        field_event: parsed.field_event,
        field_level: parsed.field_level,
        field_time: parsed.field_time,
        field_service: parsed.field_service,
        topic: parsed.topic,
      },
      {
        event: 'projector.log_reset',
        level: 'error',
        service: 'herald',
        field_event: '"e9" of /x',
        field_level: 'debug',
        field_time: 5,
        field_service: 'other',
        topic: 't',
      },
    )
    assert.equal(fatal?.split('"event":').length, 2, fatal)
  })
})
