import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { WebhookConfiguration } from '../src/notifications/index.ts'
import type { LogFields, Logger, LogLevel } from '../src/observability/index.ts'
import type { Batch, LogMessage } from '../src/ports/index.ts'
import { createDelivererHandler, type DeliveryOutcome, DeliveryRetryError } from './deliverer.ts'
import type { Fetch } from './delivery/index.ts'
import { type DeliveryCommand, deliveryIdFor, encodeDeliveryCommand } from './routing/index.ts'
import { anEvent, aWebhookConfiguration } from './routing/test-fixtures.ts'

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

const configurations = new Map<string, WebhookConfiguration>([
  ['ok', aWebhookConfiguration({ id: 'ok', url: 'https://ok.example/hook' })],
  ['down', aWebhookConfiguration({ id: 'down', url: 'https://down.example/hook' })],
  ['gone', aWebhookConfiguration({ id: 'gone', url: 'https://gone.example/hook' })],
  ['off', aWebhookConfiguration({ id: 'off', url: 'https://off.example/hook', enabled: false })],
])

/** Answers by host; counts calls per webhook-id. */
const endpoints = (statusByHost: Record<string, () => number>) => {
  const calls: { host: string; deliveryId: string }[] = []
  const fetch: Fetch = async (input, init) => {
    const host = new URL(String(input)).host
    calls.push({ host, deliveryId: new Headers(init?.headers).get('webhook-id') ?? '' })
    return new Response(null, { status: statusByHost[host]?.() ?? 200 })
  }
  return { calls, fetch }
}

const handlerWith = (
  fetch: Fetch,
  logger: Logger = () => {},
  onOutcome?: (outcome: DeliveryOutcome) => void,
) =>
  createDelivererHandler({
    getConfiguration: (id) => configurations.get(id),
    fetch,
    clock: () => 0,
    logger,
    timeoutMs: 1000,
    ...(onOutcome === undefined ? {} : { onOutcome }),
  })

describe('createDelivererHandler', () => {
  it('delivers every command of a batch', async () => {
    const { calls, fetch } = endpoints({})
    const { lines, logger } = capturingLogger()
    await handlerWith(fetch, logger)(commands(commandFor('e1', 'ok'), commandFor('e2', 'ok')))
    assert.deepEqual(
      calls.map((c) => c.deliveryId),
      [deliveryIdFor('e1', 'ok'), deliveryIdFor('e2', 'ok')],
    )
    assert.equal(lines.filter((l) => l.event === 'delivery.webhook.sent').length, 2)
  })

  it('logs and skips final failures, missing and disabled configurations', async () => {
    const { calls, fetch } = endpoints({ 'gone.example': () => 410 })
    const { lines, logger } = capturingLogger()
    const outcomes: DeliveryOutcome[] = []
    await handlerWith(fetch, logger, (o) => outcomes.push(o))(
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
        'delivery.webhook.skipped account_mismatch',
        'delivery.webhook.skipped configuration_disabled',
        'delivery.webhook.skipped configuration_missing',
      ],
    )
    assert.deepEqual(outcomes.sort(), ['rejected', 'skipped', 'skipped', 'skipped'])
  })

  it('logs and skips undecodable commands', async () => {
    const { calls, fetch } = endpoints({})
    const { lines, logger } = capturingLogger()
    await handlerWith(
      fetch,
      logger,
    )(batchOf([new TextEncoder().encode('{}'), encodeDeliveryCommand(commandFor('e1', 'ok')).value]))
    assert.equal(calls.length, 1)
    assert.equal(lines[0]?.event, 'delivery.command_invalid')
    assert.equal(lines[0]?.fields.offset, 0)
  })

  it('rejects a batch with a retriable failure, and on retry sends only what did not succeed', async () => {
    let downStatus = 503
    const { calls, fetch } = endpoints({ 'down.example': () => downStatus })
    const handler = handlerWith(fetch)
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
    const fetch: Fetch = async () => {
      inFlight++
      peak = Math.max(peak, inFlight)
      await new Promise((resolve) => setTimeout(resolve, 10))
      inFlight--
      return new Response(null, { status: 200 })
    }
    const many = new Map(
      Array.from({ length: 6 }, (_, i) => [`c${i}`, aWebhookConfiguration({ id: `c${i}` })]),
    )
    const handler = createDelivererHandler({
      getConfiguration: (id) => many.get(id),
      fetch,
      clock: () => 0,
      logger: () => {},
      timeoutMs: 1000,
      concurrency: 3,
    })
    await handler(commands(...[...many.keys()].flatMap((id) => [commandFor('a', id), commandFor('b', id)])))
    assert.equal(peak, 3)
  })
})
