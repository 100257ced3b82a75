import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { LogFields, Logger, LogLevel } from '../src/observability/index.ts'
import type { Batch, LogMessage } from '../src/ports/index.ts'
import {
  createDelivererHandler,
  type DeliverableConfiguration,
  type DeliveryOutcome,
  DeliveryRetryError,
} from './deliverer.ts'
import type { DeliveryChannels } from './delivery/index.ts'
import { type DeliveryCommand, deliveryIdFor, encodeDeliveryCommand } from './routing/index.ts'
import { anEvent } from './routing/test-fixtures.ts'

const capturingLogger = () => {
  const lines: { level: LogLevel; event: string; fields: LogFields }[] = []
  const logger: Logger = (level, event, fields = {}) => lines.push({ level, event, fields })
  return { lines, logger }
}

const commandFor = (eventId: string, configurationId: string, account = 'acme'): DeliveryCommand => ({
  deliveryId: deliveryIdFor(eventId, configurationId),
  account,
  endpoint: 'webhook',
  configurationId,
  event: anEvent({ id: eventId }),
  matchedSelectorIds: ['sel-1'],
  createdAt: '2026-11-22T10:00:00.000Z',
})

const batchOf = (values: Uint8Array[]): Batch => ({
  topic: 'notifications.deliveries',
  partition: 0,
  messages: values.map(
    (value, offset): LogMessage => ({
      topic: 'notifications.deliveries',
      partition: 0,
      offset,
      key: null,
      value,
      headers: {},
      timestamp: 0,
    }),
  ),
})

const commands = (...list: DeliveryCommand[]) => batchOf(list.map((c) => encodeDeliveryCommand(c).value))

const webhook = (id: string, url: string, enabled = true): DeliverableConfiguration => ({
  enabled,
  channel: {
    endpoint: 'webhook',
    id,
    account: 'acme',
    url,
    signingSecrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
  },
})

const configurations = new Map<string, DeliverableConfiguration>([
  ['ok', webhook('ok', 'https://ok.example/hook')],
  ['down', webhook('down', 'https://down.example/hook')],
  ['gone', webhook('gone', 'https://gone.example/hook')],
  ['off', webhook('off', 'https://off.example/hook', false)],
])

/** A channel port that answers by host, classifying as the channels do; records each call. */
const endpoints = (statusByHost: Record<string, () => number>) => {
  const calls: { host: string; deliveryId: string }[] = []
  const send: DeliveryChannels['send'] = async (delivery, configuration) => {
    const host = new URL(configuration.endpoint === 'webhook' ? configuration.url : 'https://other.example')
      .host
    calls.push({ host, deliveryId: delivery.deliveryId })
    const status = statusByHost[host]?.() ?? 200
    if (status < 300) return { ok: true, status, response: '', latencyMs: 1 }
    const kind = status === 410 ? 'gone' : status === 503 ? 'retriable' : 'permanent'
    return { ok: false, kind, code: 'http_status', status, error: `HTTP ${status}`, latencyMs: 1 }
  }
  return { calls, send }
}

const handlerWith = (
  send: DeliveryChannels['send'],
  logger: Logger = () => {},
  onOutcome?: (outcome: DeliveryOutcome) => void,
  onGone?: (command: DeliveryCommand) => void,
) =>
  createDelivererHandler({
    getConfiguration: (id) => configurations.get(id),
    send,
    uiUrl: null,
    logger,
    timeoutMs: 1000,
    ...(onOutcome === undefined ? {} : { onOutcome }),
    ...(onGone === undefined ? {} : { onGone }),
  })

describe('createDelivererHandler', () => {
  it('delivers every command of a batch', async () => {
    const { calls, send } = endpoints({})
    const { lines, logger } = capturingLogger()
    await handlerWith(send, logger)(commands(commandFor('e1', 'ok'), commandFor('e2', 'ok')))
    assert.deepEqual(
      calls.map((c) => c.deliveryId),
      [deliveryIdFor('e1', 'ok'), deliveryIdFor('e2', 'ok')],
    )
    assert.equal(lines.filter((l) => l.event === 'delivery.webhook.sent').length, 2)
  })

  it('logs and skips final failures, missing and disabled configurations', async () => {
    const { calls, send } = endpoints({ 'gone.example': () => 410 })
    const { lines, logger } = capturingLogger()
    const outcomes: DeliveryOutcome[] = []
    const gone: string[] = []
    await handlerWith(
      send,
      logger,
      (o) => outcomes.push(o),
      (c) => gone.push(c.configurationId),
    )(
      commands(
        commandFor('e1', 'gone'),
        commandFor('e2', 'off'),
        commandFor('e3', 'unknown'),
        commandFor('e4', 'ok', 'globex'),
      ),
    )
    assert.deepEqual(
      calls.map((c) => c.host),
      ['gone.example'],
    )
    assert.deepEqual(
      // Configurations are served concurrently, so their lines come in any order.
      lines.map((l) => `${l.event} ${l.fields.reason ?? l.fields.status}`).sort(),
      [
        'delivery.webhook.rejected 410',
        'delivery.webhook.skipped configuration_disabled',
        'delivery.webhook.skipped configuration_mismatch',
        'delivery.webhook.skipped configuration_missing',
      ],
    )
    assert.deepEqual(outcomes.sort(), ['rejected', 'skipped', 'skipped', 'skipped'])
    assert.deepEqual(gone, ['gone'], '410 asks for the configuration to be disabled')
  })

  it('logs and skips undecodable commands', async () => {
    const { calls, send } = endpoints({})
    const { lines, logger } = capturingLogger()
    await handlerWith(
      send,
      logger,
    )(batchOf([new TextEncoder().encode('{}'), encodeDeliveryCommand(commandFor('e1', 'ok')).value]))
    assert.equal(calls.length, 1)
    assert.equal(lines[0]?.event, 'delivery.command_invalid')
    assert.equal(lines[0]?.fields.offset, 0)
  })

  it('rejects a batch with a retriable failure, and on retry sends only what did not succeed', async () => {
    let downStatus = 503
    const { calls, send } = endpoints({ 'down.example': () => downStatus })
    const handler = handlerWith(send)
    const batch = commands(commandFor('e1', 'down'), commandFor('e2', 'ok'), commandFor('e3', 'down'))

    await assert.rejects(handler(batch), (error: unknown) => {
      assert.ok(error instanceof DeliveryRetryError)
      assert.equal(error.retriable, true)
      // e3 waits behind e1 for its configuration, keeping that endpoint's order.
      assert.deepEqual(error.context.deliveryIds, [deliveryIdFor('e1', 'down'), deliveryIdFor('e3', 'down')])
      return true
    })
    assert.deepEqual(
      calls.map((c) => c.deliveryId).sort(),
      [deliveryIdFor('e1', 'down'), deliveryIdFor('e2', 'ok')].sort(),
    )

    downStatus = 200
    calls.length = 0
    await handler(batch)
    assert.deepEqual(
      calls.map((c) => c.deliveryId),
      [deliveryIdFor('e1', 'down'), deliveryIdFor('e3', 'down')],
    )
  })

  it('delivers to different configurations concurrently, within the bound', async () => {
    let inFlight = 0
    let peak = 0
    const send: DeliveryChannels['send'] = async () => {
      inFlight++
      peak = Math.max(peak, inFlight)
      await new Promise((resolve) => setTimeout(resolve, 10))
      inFlight--
      return { ok: true, status: 200, response: '', latencyMs: 10 }
    }
    const many = new Map(
      Array.from({ length: 6 }, (_, i) => [`c${i}`, webhook(`c${i}`, `https://c${i}.example/hook`)]),
    )
    const handler = createDelivererHandler({
      getConfiguration: (id) => many.get(id),
      send,
      uiUrl: null,
      logger: () => {},
      timeoutMs: 1000,
      concurrency: 3,
    })
    await handler(commands(...[...many.keys()].flatMap((id) => [commandFor('a', id), commandFor('b', id)])))
    assert.equal(peak, 3)
  })
})
