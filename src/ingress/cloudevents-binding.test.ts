import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  dataFromBody,
  eventFromBinary,
  HTTP_HEADER_PREFIX,
  KAFKA_HEADER_PREFIX,
  kafkaMode,
  mediaType,
  prefixedAttributes,
  toKafkaMessage,
} from './cloudevents-binding.ts'
import { parseFrame } from './wire-format.ts'

describe('CloudEvents Kafka binding', () => {
  it('tells the modes apart by their headers', () => {
    assert.deepEqual(kafkaMode({}), { mode: 'structured' })
    assert.deepEqual(kafkaMode({ 'content-type': 'application/cloudevents+json; charset=utf-8' }), {
      mode: 'structured',
    })
    assert.deepEqual(kafkaMode({ ce_specversion: '1.0', ce_id: 'e1', 'content-type': 'application/json' }), {
      mode: 'binary',
      attributes: { specversion: '1.0', id: 'e1' },
      contentType: 'application/json',
    })
    // Header names in another case are binary mode too, as their attributes are read.
    assert.deepEqual(kafkaMode({ CE_SPECVERSION: '1.0', Ce_Id: 'e1', 'content-type': 'application/json' }), {
      mode: 'binary',
      attributes: { specversion: '1.0', id: 'e1' },
      contentType: 'application/json',
    })
    assert.equal(kafkaMode({ 'content-type': 'application/cloudevents-batch+json' }).mode, 'unsupported')
    assert.equal(kafkaMode({ 'content-type': 'application/cloudevents+avro' }).mode, 'unsupported')
    // A structured content type wins over stray ce_ headers.
    assert.equal(
      kafkaMode({ 'content-type': 'application/cloudevents+json', ce_specversion: '1.0' }).mode,
      'structured',
    )
  })

  it('reads binary-mode data by its content type', () => {
    assert.deepEqual(dataFromBody('', new TextEncoder().encode('{"a":1}')), { ok: true, data: { a: 1 } })
    assert.deepEqual(dataFromBody('application/vnd.x+json', '[1]'), { ok: true, data: [1] })
    assert.deepEqual(dataFromBody('text/plain', 'hello'), { ok: true, data: 'hello' })
    assert.deepEqual(dataFromBody('application/json', ''), { ok: true, data: undefined })
    const octets = dataFromBody('application/octet-stream', new Uint8Array([1]))
    assert.equal(octets.ok === false && octets.code, 'content_type_unsupported')
    const notJson = dataFromBody('application/json', '{')
    assert.equal(notJson.ok === false && notJson.code, 'payload_undecodable')
    const notUtf8 = dataFromBody('text/plain', new Uint8Array([0xc3, 0x28]))
    assert.equal(notUtf8.ok === false && notUtf8.code, 'payload_undecodable')
  })

  it('names attributes the same from Kafka and HTTP headers', () => {
    const kafka = prefixedAttributes(
      { ce_id: 'e1', CE_Source: '/s', ce_: 'x', other: 'y' },
      KAFKA_HEADER_PREFIX,
    )
    const http = prefixedAttributes(
      new Headers({ 'ce-id': 'e1', 'ce-source': '/s', other: 'y' }),
      HTTP_HEADER_PREFIX,
    )
    assert.deepEqual(kafka, { id: 'e1', source: '/s' })
    assert.deepEqual(http, kafka)
    assert.deepEqual(eventFromBinary(kafka, 'application/json', { a: 1 }), {
      id: 'e1',
      source: '/s',
      datacontenttype: 'application/json',
      data: { a: 1 },
    })
  })

  it('reads the same attributes however many distinct header names producers have sent', () => {
    // Past the remembered names, each name is worked out afresh: same answers, no growth.
    for (let i = 0; i < 3_000; i++) {
      const attributes = prefixedAttributes(
        { [`ce_x${i}`]: String(i), [`X-Other-${i}`]: 'y', ce_id: 'e1', CE_Level: 'info' },
        KAFKA_HEADER_PREFIX,
      )
      assert.deepEqual(attributes, { [`x${i}`]: String(i), id: 'e1', level: 'info' })
    }
  })

  it('encodes both modes so that reading them back gives the event', () => {
    const attribute = fc.string({ minLength: 1, maxLength: 20 })
    const event = fc.record(
      {
        specversion: fc.constant('1.0'),
        id: attribute,
        source: attribute,
        type: attribute,
        account: attribute,
        subject: attribute,
        data: fc.jsonValue(),
      },
      { requiredKeys: ['specversion', 'id', 'source', 'type', 'account'] },
    )
    fc.assert(
      fc.property(
        event,
        fc.option(fc.integer({ min: 1, max: 2 ** 31 - 1 }), { nil: undefined }),
        (e, schemaId) => {
          for (const mode of ['structured', 'binary'] as const) {
            const message = toKafkaMessage(e, schemaId === undefined ? { mode } : { mode, schemaId })
            assert.equal(message.key, e.account)
            const frame = parseFrame(message.value)
            const body = frame.kind === 'framed' ? frame.payload : message.value
            if (schemaId !== undefined && message.value.length > 0)
              assert.ok(frame.kind === 'framed' && frame.schemaId === schemaId)
            const headers = message.headers ?? {}
            const read = kafkaMode(headers)
            const text = new TextDecoder().decode(body)
            const back =
              read.mode === 'binary'
                ? eventFromBinary(
                    read.attributes,
                    read.contentType,
                    text === '' ? undefined : JSON.parse(text),
                  )
                : JSON.parse(text)
            assert.equal(read.mode, mode)
            assert.deepEqual(back, JSON.parse(JSON.stringify(e)))
          }
        },
      ),
      { numRuns: 500 },
    )
  })

  it('normalises media types', () => {
    assert.equal(mediaType(' Application/JSON ; charset=utf-8'), 'application/json')
    assert.equal(mediaType(undefined), '')
  })
})
