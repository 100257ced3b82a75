import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { NotFoundError } from '../errors/index.ts'
import {
  type DeliveryCommand,
  type DeliveryState,
  DeliveryStateError,
  decide,
  evolve,
  initialState,
  type NewDeliveryEvent,
} from './delivery.ts'
import { type DeliveryEvent, decodeDeliveryEvent } from './events.ts'

const ID = 'a'.repeat(64)
const T0 = Date.parse('2026-11-22T10:00:00.000Z')

const request: Extract<DeliveryCommand, { type: 'RequestDelivery' }>['request'] = {
  deliveryId: ID,
  account: 'acme',
  endpoint: 'webhook',
  configurationId: 'cfg-1',
  event: {
    specversion: '1.0',
    id: 'e1',
    source: '/engine',
    type: 'user.image.analysis.completed',
    account: 'acme',
    data: { digest: 'sha256:ab' },
  },
  matchedSelectorIds: ['sel-1'],
  createdAt: '2026-11-22T09:59:59.000Z',
}

/** Decodes what `decide` produced, as the store would hand it back, and folds it in. */
const fold = (state: DeliveryState, events: readonly NewDeliveryEvent[]): DeliveryState =>
  events.reduce((s, e) => {
    const decoded = decodeDeliveryEvent(e)
    assert.ok(decoded.ok, JSON.stringify(decoded))
    return evolve(s, decoded.value as DeliveryEvent)
  }, state)

/** given(commands).when(command).yields(events): each given command is decided and folded in. */
const given = (...commands: DeliveryCommand[]) => {
  const state = commands.reduce((s, c) => fold(s, decide(c, s)), initialState)
  return {
    state,
    when: (command: DeliveryCommand) => ({
      yields: (expected: readonly { type: string; data: Record<string, unknown> }[]) =>
        assert.deepEqual(decide(command, state), expected),
      throws: (error: new (...args: never[]) => Error) => assert.throws(() => decide(command, state), error),
    }),
  }
}

const requested: DeliveryCommand = { type: 'RequestDelivery', request, now: T0 }
const attempt = (
  n: number,
  resolution: Extract<DeliveryCommand, { type: 'RecordAttempt' }>['resolution'],
  status: number | null = 503,
  /** The replays when the attempt began. */
  replays = 0,
): DeliveryCommand => ({
  type: 'RecordAttempt',
  deliveryId: ID,
  attempt: n,
  replays,
  details:
    resolution.outcome === 'skipped'
      ? null
      : {
          ok: resolution.outcome === 'sent',
          status,
          latencyMs: 12,
          code: resolution.outcome === 'sent' ? null : 'http_status',
          error: resolution.outcome === 'sent' ? null : `HTTP ${status}`,
          response: resolution.outcome === 'sent' ? 'ok' : null,
        },
  resolution,
  now: T0 + n * 1000,
})
const failed = (n: number) =>
  attempt(n, {
    outcome: 'failed',
    reason: 'http_status',
    nextAttemptAt: T0 + n * 1000 + 5000,
    retryAfterMs: null,
  })

describe('delivery aggregate', () => {
  it('records a request once, however often the command comes', () => {
    given()
      .when(requested)
      .yields([{ type: 'DeliveryRequested', data: { ...request, at: '2026-11-22T10:00:00.000Z' } }])
    given(requested).when(requested).yields([])
    const { state } = given(requested)
    assert.equal(state.status, 'pending')
    assert.equal(state.nextAttemptAt, '2026-11-22T10:00:00.000Z')
  })

  it('records an attempt with its answer, then how it ended', () => {
    given(requested)
      .when(attempt(1, { outcome: 'sent' }, 200))
      .yields([
        {
          type: 'DeliveryAttempted',
          data: {
            deliveryId: ID,
            attempt: 1,
            at: '2026-11-22T10:00:01.000Z',
            ok: true,
            status: 200,
            latencyMs: 12,
            code: null,
            error: null,
            response: 'ok',
          },
        },
        { type: 'DeliverySucceeded', data: { deliveryId: ID, attempt: 1, at: '2026-11-22T10:00:01.000Z' } },
      ])
  })

  it('counts retriable failures of the round and schedules the next attempt', () => {
    const { state } = given(requested, failed(1), failed(2))
    assert.equal(state.status, 'retrying')
    assert.equal(state.attempts, 2)
    assert.equal(state.roundFailures, 2)
    assert.equal(state.nextAttemptAt, '2026-11-22T10:00:07.000Z')
  })

  it('settles on a refusal, a skip or exhausted retries, and refuses to record more', () => {
    for (const resolution of [
      { outcome: 'rejected', reason: 'http_status' },
      { outcome: 'skipped', reason: 'configuration_disabled' },
      { outcome: 'dead_lettered', reason: 'http_status' },
    ] as const) {
      const { state } = given(requested, attempt(1, resolution))
      assert.equal(state.status, resolution.outcome)
      assert.equal(state.nextAttemptAt, null)
      given(requested, attempt(1, resolution)).when(failed(2)).throws(DeliveryStateError)
    }
    given(requested, attempt(1, { outcome: 'skipped', reason: 'configuration_missing' }))
      .when(attempt(2, { outcome: 'sent' }))
      .throws(DeliveryStateError)
  })

  it('refuses an attempt recorded already (another deliverer got there first)', () => {
    given(requested, failed(1)).when(failed(1)).throws(DeliveryStateError)
    given().when(failed(1)).throws(NotFoundError)
  })

  it('replays a settled delivery from the start of the schedule, keeping the attempt count', () => {
    const replay: DeliveryCommand = {
      type: 'ReplayDelivery',
      deliveryId: ID,
      by: 'acme/read-write',
      now: T0 + 60_000,
    }
    const dead = given(requested, failed(1), attempt(2, { outcome: 'dead_lettered', reason: 'http_status' }))
    dead.when(replay).yields([
      {
        type: 'DeliveryReplayed',
        data: { deliveryId: ID, at: '2026-11-22T10:01:00.000Z', by: 'acme/read-write' },
      },
    ])
    const { state } = given(
      requested,
      failed(1),
      attempt(2, { outcome: 'dead_lettered', reason: 'x' }),
      replay,
    )
    assert.deepEqual(
      {
        status: state.status,
        attempts: state.attempts,
        roundFailures: state.roundFailures,
        replays: state.replays,
      },
      { status: 'pending', attempts: 2, roundFailures: 0, replays: 1 },
    )
    // The next attempt after a replay is attempt 3.
    given(requested, failed(1), attempt(2, { outcome: 'dead_lettered', reason: 'x' }), replay)
      .when(attempt(3, { outcome: 'sent' }, 200, 1))
      .yields(
        decide(attempt(3, { outcome: 'sent' }, 200, 1), {
          ...initialState,
          status: 'pending',
          attempts: 2,
          replays: 1,
        }),
      )
    // Waiting for its first attempt already: nothing to replay. Unknown: not found.
    given(requested).when(replay).yields([])
    given().when(replay).throws(NotFoundError)
  })

  it('replays a delivery as listed only while it is still so', () => {
    const replay = (listed?: { status: 'dead_lettered' | 'sent'; replays: number }): DeliveryCommand => ({
      type: 'ReplayDelivery',
      deliveryId: ID,
      by: 'acme/read-write',
      now: T0 + 60_000,
      ...(listed === undefined ? {} : { listed }),
    })
    const dead = [requested, failed(1), attempt(2, { outcome: 'dead_lettered', reason: 'x' })]
    const listed = { status: 'dead_lettered', replays: 0 } as const
    const replayed = (state: DeliveryState, command: DeliveryCommand) => decide(command, state).length === 1
    assert.ok(replayed(given(...dead).state, replay(listed)))
    // Listed as a dead letter, then replayed by someone else and sent: not replayed again.
    const sentSince = given(...dead, replay(), attempt(3, { outcome: 'sent' }, 200, 1))
    sentSince.when(replay(listed)).yields([])
    // Dead-lettered again after that replay: the same status, but not the listing's round.
    const deadAgain = given(...dead, replay(), attempt(3, { outcome: 'dead_lettered', reason: 'x' }, null, 1))
    deadAgain.when(replay(listed)).yields([])
    assert.ok(replayed(deadAgain.state, replay({ status: 'dead_lettered', replays: 1 })))
    // Without a listing, a replay of one delivery by its id takes it as it is.
    assert.ok(replayed(sentSince.state, replay()))
  })

  it('records an attempt that was in flight when the delivery was replayed as an attempt only: the replay’s round goes on', () => {
    const replay: DeliveryCommand = {
      type: 'ReplayDelivery',
      deliveryId: ID,
      by: 'acme/read-write',
      now: T0 + 60_000,
    }
    const answered = (n: number, resolution: Parameters<typeof attempt>[1]) => {
      const events = decide(attempt(n, resolution), { ...initialState, status: 'retrying', attempts: n - 1 })
      return events.filter((e) => e.type === 'DeliveryAttempted')
    }
    // The last attempt of the schedule, begun before the replay: its dead letters would undo it.
    for (const resolution of [
      { outcome: 'dead_lettered', reason: 'timeout' },
      { outcome: 'failed', reason: 'timeout', nextAttemptAt: T0 + 99_000, retryAfterMs: null },
      { outcome: 'rejected', reason: 'http_status' },
      { outcome: 'sent' },
    ] as const) {
      const midway = given(requested, failed(1), failed(2), failed(3), replay)
      midway.when(attempt(4, resolution)).yields(answered(4, resolution))
      const { state } = given(requested, failed(1), failed(2), failed(3), replay, attempt(4, resolution))
      assert.deepEqual(
        {
          status: state.status,
          attempts: state.attempts,
          roundFailures: state.roundFailures,
          nextAttemptAt: state.nextAttemptAt,
          replays: state.replays,
        },
        {
          status: 'pending',
          attempts: 4,
          roundFailures: 0,
          nextAttemptAt: '2026-11-22T10:01:00.000Z',
          replays: 1,
        },
        resolution.outcome,
      )
    }
    // Nothing was sent (the configuration was off): nothing to record.
    given(requested, failed(1), replay)
      .when(attempt(2, { outcome: 'skipped', reason: 'configuration_disabled' }))
      .yields([])
    // The replay's own first attempt settles it as usual.
    given(
      requested,
      failed(1),
      failed(2),
      failed(3),
      replay,
      attempt(4, { outcome: 'dead_lettered', reason: 'x' }),
    )
      .when(attempt(5, { outcome: 'sent' }, 200, 1))
      .yields(
        decide(attempt(5, { outcome: 'sent' }, 200, 1), {
          ...initialState,
          status: 'pending',
          attempts: 4,
          replays: 1,
        }),
      )
  })
})
