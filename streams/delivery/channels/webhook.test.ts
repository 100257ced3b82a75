import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, before, describe, it } from 'node:test'
import { createSqliteEventStore } from '../../../src/adapters/sqlite-event-store/index.ts'
import {
  createDeliveryLog,
  createDeliveryReadModel,
  type DeliveryLog,
  type DeliveryReadModel,
  type StoredDelivery,
} from '../../../src/deliveries/index.ts'
import type { CloudEvent } from '../../../src/events/index.ts'
import type { EventStore } from '../../../src/ports/index.ts'
import { channelDelivery } from '../attempt.ts'
import type { ChannelDelivery } from './channel.ts'
import { anEvent } from './test-fixtures.ts'
import { webhookBody, webhookChannelPayload } from './webhook.ts'

const CREATED_AT = '2026-11-22T10:00:00.000Z'

describe('a webhook body from the event as the read model stores it', () => {
  let dir: string
  let store: EventStore
  let view: DeliveryReadModel
  let deliveries: DeliveryLog
  let n = 0

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'herald-webhook-body-'))
    store = createSqliteEventStore({ path: join(dir, 'deliveries.sqlite') })
    view = createDeliveryReadModel({ path: join(dir, 'view.sqlite'), newId: randomUUID })
    view.follow(store)
    deliveries = createDeliveryLog({ store, clock: Date.now, newId: randomUUID, origin: view.instanceId })
  })
  after(async () => {
    await view.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
  })

  /** Requests a delivery of `event` and reads it back as the scheduler does. */
  const stored = async (event: CloudEvent): Promise<StoredDelivery> => {
    const deliveryId = (++n).toString(16).padStart(64, '0')
    await view.waitFor(
      await deliveries.request({
        deliveryId,
        account: event.account,
        endpoint: 'webhook',
        configurationId: 'cfg-1',
        event,
        matchedSelectorIds: ['sel-1'],
        createdAt: CREATED_AT,
      }),
    )
    const row = view.get(deliveryId)
    assert.ok(row)
    return row
  }

  /** The body as it was made before the text was carried: the payload parsed, then written out. */
  const writtenOut = (delivery: ChannelDelivery, uiUrl: string | null) => {
    const { eventText: _, ...parsed } = delivery
    return JSON.stringify(webhookChannelPayload(parsed, uiUrl))
  }

  const events: [string, CloudEvent][] = [
    ['with a time', anEvent()],
    ['without a time', (({ time: _, ...rest }) => rest)(anEvent({ id: 'evt-no-time' }))],
    [
      'with a time as sent, not in the canonical form',
      anEvent({ id: 'evt-offset', time: '2026-11-22T11:00:00+01:00' }),
    ],
    [
      'with escapes, non-ASCII text, integer-like and __proto__ keys in its data',
      anEvent({
        id: 'evt/odd "id"',
        subject: 'ünïcödé ✓ \u2028 line',
        data: JSON.parse(
          '{"b":1,"2":"two","1":["\\"quoted\\"","tab\\t"],"__proto__":{"x":null},"time":"nested"}',
        ),
      }),
    ],
  ]

  for (const [name, event] of events)
    it(`is byte for byte the payload written out, for an event ${name}`, async () => {
      const delivery = channelDelivery(await stored(event))
      assert.equal(delivery.eventText?.text, JSON.stringify(delivery.event))
      for (const uiUrl of [null, 'https://herald.example.com/ui/']) {
        const body = webhookBody(delivery, uiUrl)
        assert.equal(body, writtenOut(delivery, uiUrl))
        // And it is the event the producer sent, as `data`.
        assert.deepEqual(JSON.parse(body).data, JSON.parse(JSON.stringify(event)))
      }
    })

  it('takes a time stored as null for none: the payload’s timestamp is when the router decided', async () => {
    const row = await stored(anEvent({ id: 'evt-null-time' }))
    // A file holding such an event (an older version's, or written by hand): the time is null.
    const file = new DatabaseSync(join(dir, 'view.sqlite'))
    try {
      file.exec(`UPDATE requests SET event = json_set(event, '$.time', json('null')) WHERE seq = ${row.seq}`)
    } finally {
      file.close()
    }
    const delivery = channelDelivery(view.get(row.deliveryId) as StoredDelivery)
    assert.equal(delivery.eventText?.time, null)
    const body = webhookBody(delivery)
    assert.equal(body, writtenOut(delivery, null))
    assert.equal(JSON.parse(body).timestamp, CREATED_AT)
  })

  it('parses the stored event only when something reads it', async () => {
    const row = await stored(anEvent({ id: 'evt-lazy' }))
    const parse = JSON.parse
    let parsed = 0
    JSON.parse = (...args: Parameters<typeof JSON.parse>) => {
      parsed++
      return parse(...args)
    }
    try {
      const delivery = channelDelivery(view.get(row.deliveryId) as StoredDelivery)
      const before = parsed
      webhookBody(delivery, 'https://herald.example.com/')
      assert.equal(parsed, before, 'the body is made without parsing the event')
    } finally {
      JSON.parse = parse
    }
  })
})
