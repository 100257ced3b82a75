import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import fc from 'fast-check'
import { yieldToLoop } from '../cooperative.ts'
import { isRetriable, NotFoundError, UnavailableError } from '../errors/index.ts'
import { applyMutation, type Json, mutationsOf } from '../events/catalog/arbitraries.ts'
import {
  decodeEngineEvent,
  type EngineEvent,
  encodeLogEvent,
  envelopeSchema,
  lookupEventType,
} from '../events/index.ts'
import { generateActivity } from '../generator/index.ts'
import type { LogMessage, OutgoingMessage } from '../ports/event-log.ts'
import { toKafkaMessage } from './cloudevents-binding.ts'
import { createIngressDecoder, type IngressResult } from './decode.ts'
import { createEmbeddedSchemaRegistry } from './embedded-registry.ts'
import type { PayloadDecoder, SchemaRegistry } from './schema-registry.ts'
import { heraldSubjects } from './subjects.ts'
import { encodeFrame } from './wire-format.ts'

const TOPICS = {
  events: 'engine.events',
  deliveries: 'notifications.deliveries',
  outcomes: 'notifications.outcomes',
  metrics: 'reports.metrics',
}
const events: readonly EngineEvent[] = [
  ...generateActivity({ seed: 7, accounts: 3, count: 300, clock: () => Date.UTC(2026, 10, 22) }),
]
const encoder = new TextEncoder()

const asLogMessage = (m: OutgoingMessage, offset = 0): LogMessage => ({
  topic: TOPICS.events,
  partition: 0,
  offset,
  key: m.key,
  value: m.value,
  headers: m.headers ?? {},
  timestamp: 0,
})

const message = (value: Uint8Array, headers: Record<string, string> = {}): LogMessage =>
  asLogMessage({ key: 'acme', value, headers })

const countingRegistry = (registry: SchemaRegistry) => {
  const calls: number[] = []
  return {
    calls,
    registry: {
      decoderFor: (id: number) => {
        calls.push(id)
        return registry.decoderFor(id)
      },
    },
  }
}

const only = async (decode: (m: LogMessage[]) => Promise<IngressResult[]>, m: LogMessage) => {
  const [result] = await decode([m])
  assert.ok(result)
  return result
}

describe('createIngressDecoder', () => {
  const registry = createEmbeddedSchemaRegistry({ subjects: heraldSubjects(TOPICS) })
  const decoder = createIngressDecoder({ registry })
  const decode = (m: LogMessage[]) => decoder.decodeBatch(m)
  let envelopeId: number
  const typeId = (type: string) => registry.latestId(`${TOPICS.events}-${type}`)
  const dataId = (type: string) => registry.latestId(`${TOPICS.events}-${type}-data`)

  before(async () => {
    envelopeId = await registry.latestId(`${TOPICS.events}-value`)
  })

  it('reads every mode and framing into the event the contract makes of it', async () => {
    const modes = fc.constantFrom('structured', 'binary') as fc.Arbitrary<'structured' | 'binary'>
    const framings = fc.constantFrom('plain', 'envelope', 'type')
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...events), modes, framings, async (event, mode, framing) => {
        const schemaId =
          framing === 'plain'
            ? undefined
            : mode === 'binary'
              ? await dataId(event.type)
              : framing === 'envelope'
                ? envelopeId
                : await typeId(event.type)
        const outgoing = toKafkaMessage(event, schemaId === undefined ? { mode } : { mode, schemaId })
        const result = await only(decode, asLogMessage(outgoing))
        const expected = decodeEngineEvent(JSON.parse(JSON.stringify(event)))
        assert.ok(expected.ok)
        assert.deepEqual(result, { ok: true, event: expected.value })
      }),
      { numRuns: 300 },
    )
  })

  it('decodes a batch in slices of the event loop, to the same results, other work running between', async () => {
    const messages = events
      .slice(0, 50)
      .map((e, i) => asLogMessage(toKafkaMessage(e, { mode: 'structured' }), i))
    const between: number[] = []
    let decoded = 0
    const sliced = createIngressDecoder({
      registry,
      slice: {
        due: () => decoded++ % 10 === 9,
        pause: () => {
          setImmediate(() => between.push(decoded))
          return yieldToLoop()
        },
      },
    })
    assert.deepEqual(await sliced.decodeBatch(messages), await decoder.decodeBatch(messages))
    assert.deepEqual(between, [10, 20, 30, 40, 50])
  })

  it('says the data of a framed binary-mode value is JSON once decoded, whatever type its header named', async () => {
    const event = events.find((e) => e.type === 'user.image.analysis.completed') as EngineEvent
    const outgoing = toKafkaMessage(event, { mode: 'binary', schemaId: await dataId(event.type) })
    for (const contentType of ['application/avro', 'application/vnd.schemaregistry.v1+json']) {
      const result = await only(
        decode,
        asLogMessage({ ...outgoing, headers: { ...outgoing.headers, 'content-type': contentType } }),
      )
      assert.ok(result.ok)
      assert.equal(result.event.datacontenttype, 'application/json', contentType)
      assert.deepEqual(result.event.data, JSON.parse(JSON.stringify(event.data)))
    }
  })

  it('lets the contract stand in for Herald’s own schemas without changing any verdict', async () => {
    // The same registry with every decoder checking its writer schema itself.
    const checking = createIngressDecoder({
      registry: {
        decoderFor: async (id) => {
          const { deferred: _, ...decoder } = await registry.decoderFor(id)
          return decoder as PayloadDecoder
        },
      },
    })
    const types = [...new Set(events.map((e) => e.type))]
    const mutated = fc.constantFrom(...events).chain((event) => {
      const plain = JSON.parse(JSON.stringify(event)) as Record<string, Json>
      const dataSchema = lookupEventType(event.type)?.schema
      assert.ok(dataSchema)
      const mutations = [
        ...mutationsOf(plain, envelopeSchema),
        ...mutationsOf(plain.data as Json, dataSchema).map((m) => ({ ...m, path: ['data', ...m.path] })),
      ]
      return fc.record({
        event: fc.oneof(
          fc.constant(plain as Json),
          fc.constantFrom(...mutations).map((m) => applyMutation(plain, m)),
        ),
        framing: fc.constantFrom('envelope', 'type', 'data'),
        schemaType: fc.oneof(fc.constant(event.type), fc.constantFrom(...types)),
      })
    })
    await fc.assert(
      fc.asyncProperty(mutated, async ({ event, framing, schemaType }) => {
        const record = event as Record<string, Json>
        if (typeof record !== 'object' || record === null) return
        const json = (value: unknown) => encoder.encode(JSON.stringify(value))
        let m: LogMessage
        if (framing === 'data') {
          const outgoing = toKafkaMessage({ ...record, data: null } as unknown as EngineEvent, {
            mode: 'binary',
          })
          m = asLogMessage({
            ...outgoing,
            value: encodeFrame(await dataId(schemaType), json(record.data)),
            headers: { ...outgoing.headers, 'content-type': 'application/json' },
          })
        } else {
          const id = framing === 'envelope' ? envelopeId : await typeId(schemaType)
          m = message(encodeFrame(id, json(event)))
        }
        assert.deepEqual(await only(decode, m), await only((b) => checking.decodeBatch(b), m))
      }),
      { numRuns: 1_500 },
    )
  })

  it('checks a payload against any schema that is not Herald’s own, however the contract judges it', async () => {
    const own = createEmbeddedSchemaRegistry({ subjects: heraldSubjects(TOPICS) })
    const event = events.find((e) => e.type === 'user.image.analysis.completed') as EngineEvent
    // A producer's stricter schema: the event contract accepts the event, this schema does not.
    const strict = await own.register('engine.events-strict', {
      type: 'JSON',
      schema: JSON.stringify({ type: 'object', required: ['partner_ticket'] }),
    })
    const result = await only(
      (b) => createIngressDecoder({ registry: own }).decodeBatch(b),
      message(encodeFrame(strict, encoder.encode(JSON.stringify(event)))),
    )
    assert.equal(result.ok === false && result.failure.code, 'schema_invalid')
    assert.match(result.ok ? '' : result.failure.message, /partner_ticket/)
  })

  it('names what is wrong with a framed event in the contract’s words, as for one not framed', async () => {
    const event = events.find((e) => e.type === 'user.checks.tag.vulnerabilities.update') as EngineEvent
    const plain = JSON.parse(JSON.stringify(event)) as Record<string, unknown>
    const data = plain.data as { added: Record<string, unknown>[] }
    const finding = data.added[0] ?? {
      id: 'CVE-1',
      package: 'p',
      version: '1',
      type: 'rpm',
      fix_version: null,
      kev: false,
    }
    const badSeverity = { ...plain, data: { ...data, added: [{ ...finding, severity: 'CRIT' }] } }
    const json = (value: unknown) => encoder.encode(JSON.stringify(value))
    const structured = (value: unknown, id: number) => message(encodeFrame(id, json(value)))
    const cases: [string, Record<string, unknown>, LogMessage][] = [
      ['an extension named Foo', { ...plain, Foo: 'x' }, structured({ ...plain, Foo: 'x' }, envelopeId)],
      [
        'data_base64',
        { ...plain, data_base64: 'AA==' },
        structured({ ...plain, data_base64: 'AA==' }, envelopeId),
      ],
      ['a severity of a finding', badSeverity, structured(badSeverity, await typeId(event.type))],
    ]
    const binary = toKafkaMessage({ ...badSeverity, data: null } as unknown as EngineEvent, {
      mode: 'binary',
    })
    cases.push([
      'a severity of a finding, binary mode',
      badSeverity,
      asLogMessage({
        ...binary,
        value: encodeFrame(await dataId(event.type), json(badSeverity.data)),
        headers: { ...binary.headers, 'content-type': 'application/json' },
      }),
    ])
    for (const [because, value, framed] of cases) {
      const contract = decodeEngineEvent(value)
      assert.ok(!contract.ok, because)
      const result = await only(decode, framed)
      assert.ok(!result.ok, because)
      assert.equal(result.failure.code, 'schema_invalid', because)
      assert.deepEqual(result.failure.issues, contract.issues, because)
    }
  })

  it('names a framed event the contract accepts by what its writer schema refuses, in the contract’s path style', async () => {
    const event = events.find((e) => e.type === 'user.image.analysis.completed') as EngineEvent
    const other = events.find((e) => e.type === 'user.checks.tag.vulnerabilities.update') as EngineEvent
    const result = await only(
      decode,
      message(encodeFrame(await typeId(other.type), encoder.encode(JSON.stringify(event)))),
    )
    assert.ok(!result.ok)
    assert.equal(result.failure.code, 'schema_invalid')
    assert.deepEqual(result.failure.issues[0], { path: 'type', message: `must be "${other.type}"` })
  })

  it('names why each kind of bad message is refused', async () => {
    const event = events.find((e) => e.type === 'user.image.analysis.completed') as EngineEvent
    const json = (value: unknown) => encoder.encode(JSON.stringify(value))
    const framed = async (type: string, value: unknown) => encodeFrame(await typeId(type), json(value))
    const cases: [string, LogMessage][] = [
      ['wire_format_invalid', message(new Uint8Array([0, 0, 1]))],
      ['schema_not_found', message(encodeFrame(424_242, json(event)))],
      ['schema_not_found', message(encodeFrame(-3, json(event)))],
      ['payload_undecodable', message(new Uint8Array([0xc3, 0x28]))],
      ['payload_undecodable', message(encoder.encode('{"id": '))],
      ['payload_undecodable', message(encodeFrame(envelopeId, encoder.encode('not json')))],
      ['schema_invalid', message(await framed(event.type, { ...event, data: { digest: 42 } }))],
      ['schema_invalid', message(await framed(event.type, { ...event, type: 'user.image.analysis.failed' }))],
      [
        'content_type_unsupported',
        message(json(event), { 'content-type': 'application/cloudevents-batch+json' }),
      ],
      ['content_type_unsupported', message(json(event), { 'content-type': 'application/cloudevents+xml' })],
      [
        'content_type_unsupported',
        message(new Uint8Array([1, 2]), {
          ce_specversion: '1.0',
          ce_id: 'x',
          'content-type': 'application/octet-stream',
        }),
      ],
      ['event_type_unknown', message(json({ ...event, type: 'com.example.unknown' }))],
      ['event_invalid', message(json({ ...event, account: undefined }))],
      ['event_invalid', message(json({ ...event, data: { digest: 42 } }))],
      ['event_invalid', message(new Uint8Array(), { ce_specversion: '1.0' })],
      // CloudEvents forbids control characters and lone surrogates in string attributes.
      ['event_invalid', message(json({ ...event, id: 's\ud800' }))],
      // Framed, the writer schema (Herald's own) refuses it first.
      ['schema_invalid', message(await framed(event.type, { ...event, subject: 'a\u0000b' }))],
      [
        'event_invalid',
        message(json(event.data), {
          ce_specversion: '1.0',
          ce_id: 'x',
          ce_source: '/engine',
          ce_type: event.type,
          ce_account: 'acme',
          ce_subject: 'a\u0085b',
        }),
      ],
    ]
    const results = await decode(cases.map(([, m]) => m))
    assert.deepEqual(
      results.map((r) => (r.ok ? 'ok' : r.failure.code)),
      cases.map(([code]) => code),
    )
    for (const result of results) {
      assert.ok(!result.ok)
      assert.ok(result.failure.issues.length > 0)
      assert.ok(result.failure.message.length > 0)
    }
  })

  it('refuses an event whose attribute or content-type header was no UTF-8 text, naming it; other headers are not judged', async () => {
    const event = events[0] as EngineEvent
    const binary = {
      ce_specversion: '1.0',
      ce_id: 'e\uFFFD1',
      ce_source: '/engine',
      ce_type: event.type,
      ce_account: event.account,
      'content-type': 'application/json',
    }
    const value = encoder.encode(JSON.stringify(event.data))
    const bad = (names: string[]): LogMessage => ({ ...message(value, binary), undecodableHeaders: names })
    const [attribute, contentType, other, sent] = await decode([
      bad(['CE_ID']),
      bad(['content-type']),
      bad(['traceparent']),
      message(value, binary),
    ])
    assert.ok(attribute && !attribute.ok)
    assert.equal(attribute.failure.code, 'payload_undecodable')
    assert.deepEqual(attribute.failure.issues, [{ path: 'CE_ID', message: 'is not UTF-8 text' }])
    assert.ok(contentType && !contentType.ok)
    assert.equal(contentType.failure.code, 'payload_undecodable')
    assert.ok(other?.ok, 'a header Herald does not read')
    assert.ok(sent?.ok, 'U+FFFD sent as such is text')
    assert.equal(sent.event.id, 'e\uFFFD1')
  })

  it('refuses an event of Herald’s own types or sources as event_reserved unless it is as Herald emits it', async () => {
    const json = (value: unknown) => message(encoder.encode(JSON.stringify(value)))
    const disabled = {
      specversion: '1.0',
      id: 'sys-1',
      source: '/herald/deliverer',
      type: 'system.notifications.configuration_disabled',
      account: 'admin',
      data: {
        configuration_id: '7d9f4a3e-1b2c-4d5e-8f90-a1b2c3d4e5f6',
        account: 'acme',
        endpoint: 'webhook',
        reason: 'sustained_failure',
        failing_since: '2026-11-20T00:00:00.000Z',
      },
    }
    const test = {
      specversion: '1.0',
      id: 'test-1',
      source: '/herald/notifications/test',
      type: 'com.ibm.cloud.compliance.test',
      account: 'acme',
      data: { action: 'test', summary: 'Test event from Herald' },
    }
    const analysed = events.find((e) => e.type === 'user.image.analysis.completed') as EngineEvent
    const cases: [string, string[], LogMessage][] = [
      // As Herald emits them: the deliverer's on the admin account, a test event on any.
      ['ok', [], json(disabled)],
      ['ok', [], json(test)],
      ['event_reserved', ['account'], json({ ...disabled, account: 'acme' })],
      ['event_reserved', ['source', 'account'], json({ ...disabled, source: '/engine', account: 'acme' })],
      ['event_reserved', ['source'], json({ ...test, type: analysed.type, data: analysed.data })],
      ['event_reserved', ['source'], json({ ...analysed, source: '/herald' })],
      ['ok', [], json({ ...analysed, source: '/heraldry' })],
    ]
    const results = await createIngressDecoder().decodeBatch(cases.map(([, , m]) => m))
    assert.deepEqual(
      results.map((r) => (r.ok ? ['ok', []] : [r.failure.code, r.failure.issues.map((i) => i.path)])),
      cases.map(([code, paths]) => [code, paths]),
    )
  })

  it('judges any bytes under any headers without throwing, one result per message', async () => {
    const headers = fc.dictionary(
      fc.constantFrom('content-type', 'ce_specversion', 'ce_id', 'ce_type', 'ce_source', 'ce_account', 'x'),
      fc.oneof(
        fc.string(),
        fc.constantFrom('1.0', 'application/json', 'application/cloudevents+json', 'text/plain'),
      ),
    )
    const value = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 40 }).map((b) => encodeFrame(envelopeId, b)),
      fc.uint8Array({ maxLength: 8 }).map((b) => Uint8Array.of(0, ...b)),
      fc.json().map((j) => encoder.encode(j)),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(value, headers), { maxLength: 20 }), async (pairs) => {
        const results = await decode(pairs.map(([v, h]) => message(v, h)))
        assert.equal(results.length, pairs.length)
        for (const r of results) assert.ok(r.ok ? r.event.id !== undefined : r.failure.code.length > 0)
      }),
      { numRuns: 1_000 },
    )
  })

  it('asks the registry once per schema id, known or not', async () => {
    const counting = countingRegistry(registry)
    const cached = createIngressDecoder({ registry: counting.registry })
    const event = events[0] as EngineEvent
    const good = message(encodeFrame(envelopeId, encoder.encode(JSON.stringify(event))))
    const bad = message(encodeFrame(9_999, encoder.encode('{}')))
    for (let i = 0; i < 3; i++) await cached.decodeBatch([good, bad, good, bad])
    assert.deepEqual(counting.calls.sort(), [envelopeId, 9_999].sort())
  })

  it('asks the registry about 8 ids at most at once, over batches decoded at the same time', async () => {
    let now = 0
    let most = 0
    const slow = {
      decoderFor: async (id: number) => {
        most = Math.max(most, ++now)
        await new Promise((resolve) => setTimeout(resolve, 2))
        now--
        return registry.decoderFor(id)
      },
    }
    const decoding = createIngressDecoder({ registry: slow })
    const unknown = (from: number) =>
      Array.from({ length: 50 }, (_, i) => message(encodeFrame(from + i, encoder.encode('{}'))))
    const batches = await Promise.all([
      decoding.decodeBatch(unknown(20_000)),
      decoding.decodeBatch(unknown(30_000)),
    ])
    for (const results of batches)
      assert.ok(results.every((r) => !r.ok && r.failure.code === 'schema_not_found'))
    assert.equal(most, 8)
  })

  it('rejects the batch, retriably, when the registry cannot answer — no message is blamed', async () => {
    let down = true
    const flaky = {
      decoderFor: async (id: number) => {
        if (down) throw new UnavailableError('registry down')
        return registry.decoderFor(id)
      },
    }
    const decoding = createIngressDecoder({ registry: flaky })
    const good = message(encodeFrame(envelopeId, encoder.encode(JSON.stringify(events[0]))))
    await assert.rejects(decoding.decodeBatch([good]), (error: unknown) => isRetriable(error))
    down = false
    const [result] = await decoding.decodeBatch([good])
    assert.equal(result?.ok, true)
  })

  it('treats an unexpected registry failure as unavailable, and a NotFoundError as the message’s fault', async () => {
    const broken = createIngressDecoder({
      registry: {
        decoderFor: async (id) => {
          if (id === 1) throw new NotFoundError('no')
          throw new TypeError('boom')
        },
      },
    })
    const [result] = await broken.decodeBatch([message(encodeFrame(1, encoder.encode('{}')))])
    assert.equal(result?.ok === false && result.failure.code, 'schema_not_found')
    await assert.rejects(
      broken.decodeBatch([message(encodeFrame(2, encoder.encode('{}')))]),
      UnavailableError,
    )
  })

  it('refuses every framed value when there is no registry', async () => {
    const plain = createIngressDecoder()
    const [result] = await plain.decodeBatch([message(encodeFrame(1, encoder.encode('{}')))])
    assert.equal(result?.ok === false && result.failure.code, 'schema_not_found')
  })
})

describe('createIngressDecoder: what it already knows', () => {
  const structured = (event: EngineEvent, offset = 0) => {
    const published = encodeLogEvent(event)
    return { published, message: asLogMessage(published, offset) }
  }

  it('hands the consumers of one value one result, decoding it once', async () => {
    const decoder = createIngressDecoder({ keepDecoded: true })
    const { message } = structured(events[0] as EngineEvent)
    const [first] = await decoder.decodeBatch([message])
    // Another consumer handed the same value (the embedded log's tail) with the same headers.
    const [second] = await decoder.decodeBatch([{ ...message, offset: 0 }])
    assert.equal(second, first)
    // The same bytes under other headers are read again, by what those headers say.
    const [batch] = await decoder.decodeBatch([
      { ...message, headers: { 'content-type': 'application/cloudevents-batch+json' } },
    ])
    assert.equal(batch?.ok === false && batch.failure.code, 'content_type_unsupported')
  })

  it('gives a remembered event as decoding its bytes would, for every event of the generator', async () => {
    const decoder = createIngressDecoder({ keepDecoded: true })
    const fresh = createIngressDecoder()
    for (const [i, event] of events.entries()) {
      const { published, message } = structured(event, i)
      decoder.remember(published, event)
      const [remembered] = await decoder.decodeBatch([message])
      assert.equal(remembered?.ok && remembered.event, event, 'the remembered event itself')
      const [read] = await fresh.decodeBatch([asLogMessage(published, i)])
      assert.deepStrictEqual(read, remembered, `event ${i} (${event.type}) read from its bytes`)
    }
  })

  it('does not remember an event its JSON text does not hold exactly, nor for a contract of its own', async () => {
    const event = events.find((e) => e.type === 'herald.report.image.analyzed') as EngineEvent
    const inexact: Record<string, EngineEvent> = {
      'a number too large for JSON': { ...event, data: { ...event.data, extra: Number.POSITIVE_INFINITY } },
      '-0': { ...event, data: { ...event.data, extra: [-0] } },
      'an undefined member': { ...event, data: { ...event.data, extra: { deep: undefined } } },
    } as unknown as Record<string, EngineEvent>
    const decoder = createIngressDecoder({ keepDecoded: true })
    for (const [what, e] of Object.entries(inexact)) {
      const { published, message } = structured(e)
      decoder.remember(published, e)
      const [result] = await decoder.decodeBatch([message])
      assert.ok(result?.ok, what)
      assert.notEqual(result.event, e, `${what}: read from the bytes`)
      assert.notDeepStrictEqual(result.event, e, `${what}: which hold something else`)
    }
    const own = createIngressDecoder({ keepDecoded: true, decodeEvent: (input) => decodeEngineEvent(input) })
    const { published, message } = structured(event)
    own.remember(published, event)
    const [result] = await own.decodeBatch([message])
    assert.ok(result?.ok)
    assert.notEqual(result.event, event, 'a contract of its own judges every message')
  })

  it('keeps nothing by default (a Kafka consumer, whose values no other consumer is handed)', async () => {
    const decoder = createIngressDecoder()
    const event = events[0] as EngineEvent
    const { published, message } = structured(event)
    decoder.remember(published, event)
    const [first] = await decoder.decodeBatch([message])
    assert.ok(first?.ok)
    assert.notEqual(first.event, event, 'read from the bytes, not the event it was told of')
    assert.deepStrictEqual(first.event, event)
    const [second] = await decoder.decodeBatch([{ ...message, offset: 0 }])
    assert.notEqual(second, first, 'the same value is read again')
    assert.deepStrictEqual(second, first)
  })
})
