import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { filter, firstValueFrom, type Observable, take, timeout, toArray } from 'rxjs'
import { isExpectedRevisionConflict, isValidationError } from '../../src/errors/index.ts'
import { MAX_APPEND_BYTES } from '../../src/ports/event-store.ts'
import type {
  AppendResult,
  EventData,
  EventStore,
  ExpectedRevision,
  JsonObject,
  RecordedEvent,
  StreamAppend,
} from '../../src/ports/index.ts'

export interface EventStoreContractOptions {
  readonly name: string
  /** Called once; the store serves every test (they use their own streams) and is closed at the end. */
  readonly open: () => Promise<EventStore>
  /** How long to wait for an event a subscription should deliver. Default 5000 ms. */
  readonly deliveryTimeoutMs?: number
}

/**
 * The behaviour every EventStore adapter must show, registered as node:test suites. Only what
 * KurrentDB also guarantees is asserted: positions increase but need not be consecutive, a
 * subscription from the start may deliver other streams' (and system) events, event ids are UUIDs.
 *
 * @example
 * runEventStoreContract({ name: 'sqlite', open: async () => createSqliteEventStore({ path }) })
 */
export const runEventStoreContract = (options: EventStoreContractOptions): void => {
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? 5000

  describe(`EventStore contract: ${options.name}`, () => {
    let store: EventStore

    before(async () => {
      store = await options.open()
    })
    after(async () => {
      await store.close()
    })

    const newStream = (prefix: string): string => `${prefix}-${randomUUID()}`
    const newEvent = (data: JsonObject = {}, type = 'ContractTested'): EventData => ({
      id: randomUUID(),
      type,
      data,
    })
    const newEvents = (count: number): EventData[] => Array.from({ length: count }, (_, i) => newEvent({ i }))

    const assertConflict = async (
      attempt: Promise<unknown>,
      context: { stream: string; expected: ExpectedRevision; actual: number | 'no_stream' },
    ): Promise<void> => {
      await assert.rejects(attempt, (error: unknown) => {
        assert.ok(isExpectedRevisionConflict(error), `expected a conflict, got ${String(error)}`)
        assert.deepEqual(error.context, context)
        assert.equal(error.code, 'expected_revision_conflict')
        assert.equal(error.retriable, false)
        return true
      })
    }

    /** The first `count` events of the given streams that the source delivers. */
    const collect = (
      source: Observable<RecordedEvent>,
      streams: readonly string[],
      count: number,
    ): Promise<RecordedEvent[]> =>
      firstValueFrom(
        source.pipe(
          filter((e) => streams.includes(e.stream)),
          take(count),
          toArray(),
          timeout({ first: deliveryTimeoutMs }),
        ),
      )

    const assertIncreasing = (events: readonly RecordedEvent[]): void => {
      for (let i = 1; i < events.length; i++) {
        const [previous, current] = [events[i - 1], events[i]]
        assert.ok(previous && current && previous.position < current.position, `positions increase at ${i}`)
      }
    }

    describe('append', () => {
      it('appends to a new stream with no_stream', async () => {
        const stream = newStream('new')
        const events = [newEvent({ n: 1 }, 'First'), newEvent({ n: 2 }, 'Second')]
        const result = await store.append(stream, events, { expectedRevision: 'no_stream' })
        assert.equal(result.nextExpectedRevision, 1)
        assert.equal(typeof result.position, 'number')

        const read = await store.readStream(stream)
        assert.deepEqual(
          read.map((e) => [e.stream, e.revision, e.id, e.type, e.data]),
          [
            [stream, 0, events[0]?.id, 'First', { n: 1 }],
            [stream, 1, events[1]?.id, 'Second', { n: 2 }],
          ],
        )
        assertIncreasing(read)
        for (const e of read) assert.ok(Number.isFinite(e.recordedAt) && e.recordedAt > 0)
      })

      it('rejects no_stream on an existing stream', async () => {
        const stream = newStream('exists')
        await store.append(stream, [newEvent()], { expectedRevision: 'no_stream' })
        await assertConflict(store.append(stream, [newEvent()], { expectedRevision: 'no_stream' }), {
          stream,
          expected: 'no_stream',
          actual: 0,
        })
        assert.equal((await store.readStream(stream)).length, 1)
      })

      it('appends at the exact revision and rejects a stale one', async () => {
        const stream = newStream('exact')
        const first = await store.append(stream, [newEvent()], { expectedRevision: 'no_stream' })
        const second = await store.append(stream, newEvents(2), {
          expectedRevision: first.nextExpectedRevision,
        })
        assert.equal(second.nextExpectedRevision, 2)
        await assertConflict(store.append(stream, [newEvent()], { expectedRevision: 0 }), {
          stream,
          expected: 0,
          actual: 2,
        })
        await assertConflict(store.append(stream, [newEvent()], { expectedRevision: 5 }), {
          stream,
          expected: 5,
          actual: 2,
        })
        assert.deepEqual(
          (await store.readStream(stream)).map((e) => e.revision),
          [0, 1, 2],
        )
      })

      it('appends with any whether or not the stream exists', async () => {
        const stream = newStream('any')
        const created = await store.append(stream, [newEvent()], { expectedRevision: 'any' })
        assert.equal(created.nextExpectedRevision, 0)
        const extended = await store.append(stream, newEvents(2), { expectedRevision: 'any' })
        assert.equal(extended.nextExpectedRevision, 2)
        assert.equal((await store.readStream(stream)).length, 3)
      })

      it('rejects stream_exists on a missing stream and accepts it on an existing one', async () => {
        const stream = newStream('stream-exists')
        await assertConflict(store.append(stream, [newEvent()], { expectedRevision: 'stream_exists' }), {
          stream,
          expected: 'stream_exists',
          actual: 'no_stream',
        })
        assert.deepEqual(await store.readStream(stream), [])
        await store.append(stream, [newEvent()], { expectedRevision: 'no_stream' })
        const result = await store.append(stream, [newEvent()], { expectedRevision: 'stream_exists' })
        assert.equal(result.nextExpectedRevision, 1)
      })

      it('writes nothing twice when an append is retried with the same ids and expected revision', async () => {
        const stream = newStream('idempotent')
        const batch = newEvents(2)
        const first = await store.append(stream, batch, { expectedRevision: 'no_stream' })
        const retried = await store.append(stream, batch, { expectedRevision: 'no_stream' })
        assert.equal(retried.nextExpectedRevision, first.nextExpectedRevision)

        const next = [newEvent()]
        const second = await store.append(stream, next, { expectedRevision: 1 })
        assert.equal(second.nextExpectedRevision, 2)
        // Still a retry after the stream moved on: the original append's answer, not the head.
        assert.equal(
          (await store.append(stream, batch, { expectedRevision: 'no_stream' })).nextExpectedRevision,
          1,
        )
        assert.equal((await store.append(stream, next, { expectedRevision: 1 })).nextExpectedRevision, 2)

        assert.deepEqual(
          (await store.readStream(stream)).map((e) => e.id),
          [...batch, ...next].map((e) => e.id),
        )
      })

      it('writes nothing twice when an append with any is retried', async () => {
        const stream = newStream('idempotent-any')
        const one = [newEvent()]
        const two = newEvents(2)
        assert.equal((await store.append(stream, one, { expectedRevision: 'any' })).nextExpectedRevision, 0)
        assert.equal((await store.append(stream, one, { expectedRevision: 'any' })).nextExpectedRevision, 0)
        assert.equal((await store.append(stream, two, { expectedRevision: 'any' })).nextExpectedRevision, 2)
        assert.equal((await store.append(stream, two, { expectedRevision: 'any' })).nextExpectedRevision, 2)
        assert.equal((await store.append(stream, one)).nextExpectedRevision, 0)
        assert.deepEqual(
          (await store.readStream(stream)).map((e) => e.id),
          [...one, ...two].map((e) => e.id),
        )
      })

      it('treats a retry with a different expected revision as a conflict', async () => {
        const stream = newStream('retry-conflict')
        const batch = newEvents(2)
        await store.append(stream, batch, { expectedRevision: 'no_stream' })
        await assertConflict(store.append(stream, batch, { expectedRevision: 0 }), {
          stream,
          expected: 0,
          actual: 1,
        })
        assert.equal((await store.readStream(stream)).length, 2)
      })

      it('lets exactly one of several concurrent appends with the same expected revision win', async () => {
        const stream = newStream('race')
        await store.append(stream, [newEvent()], { expectedRevision: 'no_stream' })
        const contenders = Array.from({ length: 10 }, () => [newEvent()])
        const outcomes = await Promise.allSettled(
          contenders.map((events) => store.append(stream, events, { expectedRevision: 0 })),
        )
        const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []))
        assert.equal(won.length, 1, 'exactly one winner')
        for (const o of outcomes) {
          if (o.status === 'rejected') assert.ok(isExpectedRevisionConflict(o.reason), String(o.reason))
        }
        const read = await store.readStream(stream)
        assert.equal(read.length, 2)
        assert.equal(read[1]?.id, contenders[won[0] ?? -1]?.[0]?.id)
      })

      it('refuses a stream name, event id or type that is not well-formed Unicode, writing nothing', async () => {
        // Each would be stored as U+FFFD: 'x\uD800' and 'x\uDC00' would be one id, and the
        // second event's append taken for a retry of the first's.
        const stream = newStream('lone-surrogate')
        const refusals: readonly (readonly [string, EventData[], string])[] = [
          [`${stream}-\uD800`, [newEvent()], 'stream'],
          [stream, [{ ...newEvent(), id: 'x\uD800' }], 'events[0].id'],
          [stream, [newEvent(), { ...newEvent(), id: 'x\uDC00' }], 'events[1].id'],
          [stream, [newEvent({}, 'Typed\uDFFF')], 'events[0].type'],
        ]
        for (const [name, events, path] of refusals) {
          await assert.rejects(store.append(name, events), (error: unknown) => {
            assert.ok(isValidationError(error), String(error))
            assert.deepEqual(
              error.issues.map((i) => i.path),
              [path],
            )
            assert.match(error.message, /lone surrogate/)
            return true
          })
        }
        assert.deepEqual(await store.readStream(stream), [])
      })

      it('refuses an append holding more than MAX_APPEND_BYTES, naming its size, and takes one just under it', async () => {
        const stream = newStream('large')
        const big = 'x'.repeat(MAX_APPEND_BYTES)
        await assert.rejects(store.append(stream, [newEvent({ big })]), (error: unknown) => {
          assert.ok(isValidationError(error), String(error))
          assert.equal(error.retriable, false)
          assert.ok(
            error.issues.some((i) => i.path.startsWith('events')),
            JSON.stringify(error.issues),
          )
          return true
        })
        // Each under the limit, more than it together: KurrentDB counts the whole append.
        const half = 'x'.repeat(MAX_APPEND_BYTES / 2)
        await assert.rejects(
          store.append(stream, [newEvent({ half }), newEvent({ half })]),
          isValidationError,
        )
        await assert.rejects(
          store.appendMany([{ stream, events: [newEvent({ half }), newEvent({ half })] }]),
          isValidationError,
        )
        assert.deepEqual(await store.readStream(stream), [])
        const fits = newEvent({ fits: 'x'.repeat(MAX_APPEND_BYTES - 4096) })
        await store.append(stream, [fits])
        assert.equal((await store.readStream(stream))[0]?.data.fits, fits.data.fits)
      })

      it('refuses system ($) stream names and event types, and the metadata key it keeps ids in, writing nothing', async () => {
        // KurrentDB writes such an event where readAll and subscribeToAll never show it.
        const stream = newStream('system')
        const refusals: readonly (readonly [string, EventData[], string])[] = [
          [`$${stream}`, [newEvent()], 'stream'],
          [stream, [newEvent({}, '$Typed')], 'events[0].type'],
          [
            stream,
            [{ ...newEvent(), metadata: { '$herald.id': 'spoofed' } }],
            'events[0].metadata.$herald.id',
          ],
        ]
        for (const [name, events, path] of refusals) {
          await assert.rejects(store.append(name, events), (error: unknown) => {
            assert.ok(isValidationError(error), String(error))
            assert.deepEqual(
              error.issues.map((i) => i.path),
              [path],
            )
            return true
          })
          await assert.rejects(
            store.appendMany([{ stream: name, events }]),
            (error: unknown) =>
              isValidationError(error) && error.issues.some((i) => i.path === `appends[0].${path}`),
          )
        }
        assert.deepEqual(await store.readStream(stream), [])
        assert.deepEqual(await store.readStream(`$${stream}`), [])
        // Other keys, `$` ones included, are the caller's.
        const kept = { ...newEvent(), metadata: { $correlationId: 'c', 'herald.id': 'x' } }
        await store.append(stream, [kept])
        assert.deepEqual((await store.readStream(stream))[0]?.metadata, kept.metadata)
      })
    })

    describe('appendMany', () => {
      const ids = (events: readonly { readonly id: string }[]): string[] => events.map((e) => e.id)

      it('appends to several streams in array order, answering per entry', async () => {
        const [fresh, existing, anyStream, exists] = ['many-a', 'many-b', 'many-c', 'many-d'].map(newStream)
        assert.ok(fresh && existing && anyStream && exists)
        const [existingFirst, existsFirst] = [newEvent(), newEvent()]
        const anchor = await store.append(existing, [existingFirst], { expectedRevision: 'no_stream' })
        await store.append(exists, [existsFirst], { expectedRevision: 'no_stream' })
        const batches = [newEvents(2), newEvents(1), newEvents(3), newEvents(1)]
        const [a, b, c, d] = batches
        assert.ok(a && b && c && d)

        const results = await store.appendMany([
          { stream: fresh, events: a, expectedRevision: 'no_stream' },
          { stream: existing, events: b, expectedRevision: anchor.nextExpectedRevision },
          { stream: anyStream, events: c },
          { stream: exists, events: d, expectedRevision: 'stream_exists' },
        ])
        assert.deepEqual(
          results.map((r) => r.nextExpectedRevision),
          [1, 1, 2, 1],
        )

        const read = await Promise.all([fresh, existing, anyStream, exists].map((s) => store.readStream(s)))
        assert.deepEqual(read.map(ids), [
          ids(a),
          ids([existingFirst, ...b]),
          ids(c),
          ids([existsFirst, ...d]),
        ])
        // Each entry's result is its own stream's last event.
        results.forEach((r, i) => {
          assert.equal(r.position, read[i]?.at(-1)?.position, `position of entry ${i}`)
        })
        // Entries are positioned in array order, each entry's events together.
        const written = (await store.readAll({ after: anchor.position })).filter((e) =>
          batches.some((batch) => batch.some((x) => x.id === e.id)),
        )
        assert.deepEqual(
          ids(written),
          batches.flat().map((e) => e.id),
        )
        assertIncreasing(written)
      })

      it('writes nothing for no entries', async () => {
        const marker = await store.append(newStream('many-empty'), [newEvent()])
        assert.deepEqual(await store.appendMany([]), [])
        assert.deepEqual(
          (await store.readAll({ after: marker.position })).filter((e) => e.stream.startsWith('many-empty')),
          [],
        )
      })

      it('writes nothing twice when retried, alone or among new entries', async () => {
        const [first, second, third] = ['many-retry-a', 'many-retry-b', 'many-retry-c'].map(newStream)
        assert.ok(first && second && third)
        const one: StreamAppend = { stream: first, events: newEvents(2), expectedRevision: 'no_stream' }
        const two: StreamAppend = { stream: second, events: newEvents(1) }
        const results = await store.appendMany([one, two])
        assert.deepEqual(await store.appendMany([one, two]), results)

        // Already written entries are not conflicts: they answer as before, and the new one is written.
        const later: StreamAppend = { stream: third, events: newEvents(1), expectedRevision: 'no_stream' }
        const mixed = await store.appendMany([two, later, one])
        assert.deepEqual(mixed[0], results[1])
        assert.deepEqual(mixed[2], results[0])
        assert.equal(mixed[1]?.nextExpectedRevision, 0)
        assert.deepEqual(ids(await store.readStream(first)), ids(one.events))
        assert.deepEqual(ids(await store.readStream(second)), ids(two.events))
        assert.deepEqual(ids(await store.readStream(third)), ids(later.events))
      })

      it('rejects the call with the conflict of the entry whose expected revision fails', async () => {
        const taken = newStream('many-taken')
        const fresh = newStream('many-after-conflict')
        await store.append(taken, newEvents(2), { expectedRevision: 'no_stream' })
        const stale: StreamAppend = { stream: taken, events: [newEvent()], expectedRevision: 'no_stream' }
        const following: StreamAppend = { stream: fresh, events: newEvents(1), expectedRevision: 'no_stream' }
        await assertConflict(store.appendMany([stale, following]), {
          stream: taken,
          expected: 'no_stream',
          actual: 1,
        })
        // No entry after the failing one is written.
        assert.deepEqual(await store.readStream(fresh), [])
        assert.equal((await store.readStream(taken)).length, 2)

        const fixed = await store.appendMany([{ ...stale, expectedRevision: 1 }, following])
        assert.deepEqual(
          fixed.map((r) => r.nextExpectedRevision),
          [2, 0],
        )
        assert.deepEqual(ids(await store.readStream(fresh)), ids(following.events))
      })

      it('checks every entry before writing any, and takes a stream once per call', async () => {
        const first = newStream('many-invalid')
        const second = newStream('many-invalid')
        const expectIssue = (path: string) => (error: unknown) => {
          assert.ok(isValidationError(error), String(error))
          assert.ok(
            error.issues.some((i) => i.path === path),
            `issue at ${path}: ${JSON.stringify(error.issues)}`,
          )
          return true
        }
        await assert.rejects(
          store.appendMany([
            { stream: first, events: [newEvent()] },
            { stream: first, events: [newEvent()] },
          ]),
          expectIssue('appends[1].stream'),
        )
        await assert.rejects(
          store.appendMany([
            { stream: first, events: [newEvent()] },
            { stream: second, events: [{ id: '', type: 't', data: {} }] },
          ]),
          expectIssue('appends[1].events[0].id'),
        )
        await assert.rejects(
          store.appendMany([{ stream: second, events: [] }]),
          expectIssue('appends[0].events'),
        )
        assert.deepEqual(await store.readStream(first), [])
        assert.deepEqual(await store.readStream(second), [])
      })
    })

    describe('readAll', () => {
      it('reads every stream after a checkpoint in position order, in pages', async () => {
        const first = newStream('all-a')
        const second = newStream('all-b')
        const anchor = await store.append(newStream('all-anchor'), [newEvent()])
        const a = newEvents(2)
        const b = newEvents(2)
        await store.append(first, a.slice(0, 1))
        await store.append(second, b)
        await store.append(first, a.slice(1))

        const mine = (events: readonly RecordedEvent[]) =>
          events.filter((e) => e.stream === first || e.stream === second)
        const all = mine(await store.readAll({ after: anchor.position }))
        assert.deepEqual(
          all.map((e) => e.id),
          [a[0]?.id, b[0]?.id, b[1]?.id, a[1]?.id],
        )
        const positions = all.map((e) => e.position)
        assert.deepEqual(
          positions,
          [...positions].sort((x, y) => x - y),
        )

        const page = await store.readAll({ after: anchor.position, maxCount: 2 })
        assert.equal(page.length, 2)
        const rest = await store.readAll({ after: page.at(-1)?.position ?? 0 })
        assert.ok(rest.every((e) => e.position > (page.at(-1)?.position ?? 0)))
        const last = all.at(-1)?.position ?? 0
        assert.ok(mine(await store.readAll({ after: last })).length === 0)
      })
    })

    describe('readAll and subscribeToAll by stream prefix', () => {
      // A run's own prefixes, so other tests' streams never match them.
      const run = randomUUID().slice(0, 8)
      const wanted = `kept-${run}-`
      const alsoWanted = `also-${run}-`
      const appendMixed = async () => {
        const kept = [`${wanted}1`, `${alsoWanted}1`, `${wanted}2`]
        const anchor = await store.append(newStream(`skipped-${run}`), [newEvent()])
        const written: RecordedEvent[] = []
        for (const stream of [
          kept[0],
          `skipped-${run}-1`,
          kept[1],
          `kept${run}-no-dash`,
          kept[2],
        ] as string[]) {
          await store.append(stream, [newEvent({ stream })])
          written.push(...(await store.readStream(stream)).slice(-1))
        }
        return { anchor, kept, written }
      }

      it('reads only the streams whose names start with one of the prefixes, paging by position', async () => {
        const { anchor, kept, written } = await appendMixed()
        const prefixes = [wanted, alsoWanted]
        const all = await store.readAll({ after: anchor.position, streamPrefixes: prefixes })
        assert.deepEqual(
          all.map((e) => e.stream),
          kept,
        )
        assertIncreasing(all)
        // Pages of one: each continues after the last event of the one before.
        const paged: RecordedEvent[] = []
        let after = anchor.position
        for (;;) {
          const page = await store.readAll({ after, maxCount: 1, streamPrefixes: prefixes })
          paged.push(...page)
          if (page.length < 1) break
          after = page[0]?.position ?? after
        }
        assert.deepEqual(
          paged.map((e) => e.id),
          all.map((e) => e.id),
        )
        // A checkpoint from an unfiltered read continues a filtered one.
        const skipped = written[1]
        assert.ok(skipped)
        const fromSkipped = await store.readAll({ after: skipped.position, streamPrefixes: prefixes })
        assert.deepEqual(
          fromSkipped.map((e) => e.stream),
          kept.slice(1),
        )
      })

      it('subscribes to only the streams whose names start with one of the prefixes', async () => {
        const anchor = await store.append(newStream(`anchor-${run}`), [newEvent()])
        const received = firstValueFrom(
          store
            .subscribeToAll({ after: anchor.position, streamPrefixes: [wanted, alsoWanted] })
            .pipe(take(3), toArray(), timeout({ first: deliveryTimeoutMs })),
        )
        const { kept } = await appendMixed()
        const events = await received
        assert.deepEqual(
          events.map((e) => e.stream),
          kept,
        )
        assertIncreasing(events)
      })

      it('gives the position of the last event, of the streams of the prefixes when asked', async () => {
        const { written } = await appendMixed()
        assert.equal(await store.lastPosition(), written[4]?.position)
        assert.equal(await store.lastPosition({ streamPrefixes: [wanted] }), written[4]?.position)
        assert.equal(await store.lastPosition({ streamPrefixes: [alsoWanted] }), written[2]?.position)
        assert.equal(await store.lastPosition({ streamPrefixes: [`none-${run}-`] }), undefined)
        await assert.rejects(store.lastPosition({ streamPrefixes: ['$et-'] }), isValidationError)
      })

      it('refuses prefixes that are empty, too many, or select system streams', async () => {
        for (const streamPrefixes of [[], [''], ['$et-'], Array.from({ length: 17 }, (_, i) => `p${i}`)]) {
          await assert.rejects(store.readAll({ streamPrefixes }), isValidationError)
          await assert.rejects(
            firstValueFrom(
              store.subscribeToAll({ streamPrefixes }).pipe(timeout({ first: deliveryTimeoutMs })),
            ),
            isValidationError,
          )
        }
      })
    })

    describe('deleteStreams', () => {
      it('deletes the streams still at their expected revision and says what became of each', async () => {
        const [gone, moved, kept, missing] = ['gone', 'moved', 'kept', 'missing'].map(newStream)
        for (const stream of [gone, moved, kept] as string[])
          await store.append(stream, newEvents(2), { expectedRevision: 'no_stream' })
        await store.append(moved as string, newEvents(1), { expectedRevision: 1 })

        const outcomes = await store.deleteStreams([
          { stream: gone as string, expectedRevision: 1 },
          { stream: moved as string, expectedRevision: 1 },
          { stream: missing as string, expectedRevision: 0 },
        ])
        assert.deepEqual(outcomes, ['deleted', 'changed', 'absent'])
        assert.deepEqual(await store.readStream(gone as string), [])
        assert.equal((await store.readStream(moved as string)).length, 3)
        assert.equal((await store.readStream(kept as string)).length, 2)
        // Deleted before: absent, whoever asks again.
        assert.deepEqual(await store.deleteStreams([{ stream: gone as string, expectedRevision: 1 }]), [
          'absent',
        ])
        assert.deepEqual(await store.deleteStreams([]), [])

        const fresh = newEvent()
        await store.append(gone as string, [fresh], { expectedRevision: 'no_stream' })
        assert.deepEqual(
          (await store.readStream(gone as string)).map((e) => e.id),
          [fresh.id],
        )
      })

      it('holds none of a deleted stream\u2019s events at any revision once it is begun again', async () => {
        // What a reader that kept a stream's state relies on: the event at the revision it kept
        // is another one (or none), so it can tell the stream it read from its successor.
        const stream = newStream('again')
        const old = newEvents(3)
        await store.append(stream, old, { expectedRevision: 'no_stream' })
        await store.deleteStreams([{ stream, expectedRevision: 2 }])
        assert.deepEqual(await store.readStream(stream, { fromRevision: 2 }), [])
        const fresh = newEvents(4)
        await store.append(stream, fresh, { expectedRevision: 'no_stream' })
        const oldIds = new Set(old.map((e) => e.id))
        for (const fromRevision of [0, 1, 2, 3])
          for (const event of await store.readStream(stream, { fromRevision }))
            assert.ok(!oldIds.has(event.id), `revision ${event.revision} from ${fromRevision}`)
        assert.deepEqual(
          (await store.readStream(stream)).map((e) => e.id),
          fresh.map((e) => e.id),
        )
      })

      it('refuses an entry without a stream or a revision, and a stream twice, deleting nothing', async () => {
        const stream = newStream('kept')
        await store.append(stream, newEvents(1), { expectedRevision: 'no_stream' })
        for (const deletes of [
          [{ stream: '', expectedRevision: 0 }],
          [{ stream, expectedRevision: -1 }],
          [{ stream, expectedRevision: 'any' }],
          [{ stream: '$stats-127.0.0.1:2113', expectedRevision: 0 }],
          [
            { stream, expectedRevision: 0 },
            { stream, expectedRevision: 0 },
          ],
        ]) {
          await assert.rejects(
            store.deleteStreams(deletes as never),
            (error: unknown) => isValidationError(error) && /deletes\[\d\]/.test(error.message),
            JSON.stringify(deletes),
          )
        }
        assert.equal((await store.readStream(stream)).length, 1)
      })
    })

    describe('readStream', () => {
      it('reads in revision order, from a revision, at most maxCount', async () => {
        const stream = newStream('read')
        const events = newEvents(5)
        await store.append(stream, events.slice(0, 2), { expectedRevision: 'no_stream' })
        await store.append(stream, events.slice(2), { expectedRevision: 1 })
        const ids = events.map((e) => e.id)

        const all = await store.readStream(stream)
        assert.deepEqual(
          all.map((e) => e.id),
          ids,
        )
        assert.deepEqual(
          all.map((e) => e.revision),
          [0, 1, 2, 3, 4],
        )
        assertIncreasing(all)
        assert.deepEqual(
          (await store.readStream(stream, { fromRevision: 3 })).map((e) => e.id),
          ids.slice(3),
        )
        assert.deepEqual(
          (await store.readStream(stream, { maxCount: 2 })).map((e) => e.id),
          ids.slice(0, 2),
        )
        assert.deepEqual(
          (await store.readStream(stream, { fromRevision: 1, maxCount: 3 })).map((e) => e.id),
          ids.slice(1, 4),
        )
        assert.deepEqual(await store.readStream(stream, { fromRevision: 5 }), [])
      })

      it('returns an empty array for a stream that does not exist', async () => {
        assert.deepEqual(await store.readStream(newStream('missing')), [])
      })

      it('round-trips data and metadata', async () => {
        const stream = newStream('metadata')
        const data = {
          text: 'héllo ✓ 日本',
          n: -1.5,
          big: 2 ** 52,
          flag: false,
          none: null,
          list: [1, 'two', { three: [] }],
        }
        const metadata = { correlationId: randomUUID(), causation: { id: 'x', chain: ['a', 'b'] } }
        await store.append(stream, [{ id: randomUUID(), type: 'WithMetadata', data, metadata }, newEvent()])
        const [withMetadata, without] = await store.readStream(stream)
        assert.deepEqual(withMetadata?.data, data)
        assert.deepEqual(withMetadata?.metadata, metadata)
        assert.deepEqual(without?.metadata, {})
      })
    })

    describe('subscribeToAll', () => {
      it('catches up from the start, then delivers live events', async () => {
        const stream = newStream('catch-up')
        const past = newEvents(3)
        await store.append(stream, past, { expectedRevision: 'no_stream' })
        const received = collect(store.subscribeToAll(), [stream], 5)
        // Appended while the subscription may still be catching up: it must not matter.
        await store.append(stream, newEvents(1), { expectedRevision: 2 })
        await sleep(20)
        await store.append(stream, newEvents(1), { expectedRevision: 3 })

        const events = await received
        assert.deepEqual(
          events.map((e) => e.revision),
          [0, 1, 2, 3, 4],
        )
        assert.deepEqual(
          events.slice(0, 3).map((e) => e.id),
          past.map((e) => e.id),
        )
        assertIncreasing(events)
      })

      it('from a checkpoint delivers only events after it', async () => {
        const stream = newStream('checkpoint')
        await store.append(stream, newEvents(2), { expectedRevision: 'no_stream' })
        const [, second] = await store.readStream(stream)
        assert.ok(second)
        const later = newEvents(2)
        const received = firstValueFrom(
          store.subscribeToAll({ after: second.position }).pipe(
            filter((e) => e.stream === stream),
            take(2),
            toArray(),
            timeout({ first: deliveryTimeoutMs }),
          ),
        )
        await store.append(stream, later, { expectedRevision: 1 })
        const events = await received
        assert.deepEqual(
          events.map((e) => e.id),
          later.map((e) => e.id),
        )
        for (const e of events) assert.ok(e.position > second.position)
      })

      it('delivers events of many parallel appenders once each, in increasing position', async () => {
        const streams = Array.from({ length: 8 }, () => newStream('parallel'))
        const perStream = 25
        const marker = newStream('marker')
        await store.append(marker, [newEvent()])
        const [checkpoint] = await store.readStream(marker)
        assert.ok(checkpoint)

        const appendAll = async (stream: string): Promise<void> => {
          let expectedRevision: ExpectedRevision = 'no_stream'
          for (let i = 0; i < perStream; i++) {
            const result: AppendResult = await store.append(stream, [newEvent({ i })], { expectedRevision })
            expectedRevision = result.nextExpectedRevision
          }
        }
        const delivered: RecordedEvent[] = []
        const appenders = streams.map(appendAll)
        // Subscribe while the appenders run, so catch-up and live delivery race.
        await sleep(5)
        const subscription = store
          .subscribeToAll({ after: checkpoint.position })
          .subscribe((e) => delivered.push(e))
        try {
          await Promise.all(appenders)
          const total = streams.length * perStream
          const deadline = Date.now() + deliveryTimeoutMs
          const ours = () => delivered.filter((e) => streams.includes(e.stream))
          while (ours().length < total && Date.now() < deadline) await sleep(10)
          await sleep(100) // time for a duplicate to show up, if one were coming
          const mine = ours()
          assert.equal(mine.length, total)
          assertIncreasing(delivered)
          for (const stream of streams) {
            assert.deepEqual(
              mine.filter((e) => e.stream === stream).map((e) => e.revision),
              Array.from({ length: perStream }, (_, i) => i),
            )
          }
        } finally {
          subscription.unsubscribe()
        }
      })

      it('stops delivering after unsubscribe', async () => {
        const stream = newStream('unsubscribe')
        await store.append(stream, [newEvent()], { expectedRevision: 'no_stream' })
        const [first] = await store.readStream(stream)
        assert.ok(first)
        const delivered: RecordedEvent[] = []
        const subscription = store
          .subscribeToAll({ after: first.position - 1 })
          .subscribe((e) => e.stream === stream && delivered.push(e))
        const deadline = Date.now() + deliveryTimeoutMs
        while (delivered.length === 0 && Date.now() < deadline) await sleep(5)
        assert.equal(delivered.length, 1)

        subscription.unsubscribe()
        await store.append(stream, newEvents(3), { expectedRevision: 0 })
        await sleep(300)
        assert.equal(delivered.length, 1)
        assert.ok(subscription.closed)
      })

      it('serves several subscriptions independently', async () => {
        const stream = newStream('fan-out')
        const a = collect(store.subscribeToAll(), [stream], 3)
        const b = collect(store.subscribeToAll(), [stream], 3)
        await store.append(stream, newEvents(3), { expectedRevision: 'no_stream' })
        const [fromA, fromB] = await Promise.all([a, b])
        assert.deepEqual(fromA, fromB)
      })
    })
  })
}
