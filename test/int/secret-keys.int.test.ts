import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { ConfigError } from '../../src/errors/index.ts'
import { createAdminTokenAuthenticator, createHttpApp } from '../../src/http/index.ts'
import { createMetrics, type LogFields, type Logger } from '../../src/observability/index.ts'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import { wireIngress } from '../../src/wiring/ingress.ts'
import { wireNotifications } from '../../src/wiring/notifications.ts'
import { eventually } from '../support/eventually.ts'
import { unusedWarehouse } from '../support/unused-warehouse.ts'
import { startWebhookReceiver } from '../support/webhook-receiver.ts'

const ADMIN = `admin-${randomBytes(12).toString('hex')}`
const BASE = '/v1/notifications/endpoints/webhook/configurations'
const PASSWORD = 'Sup3rSecretPassw0rd-XYZ'
type Json = Record<string, unknown>

const newKey = (): string => randomBytes(32).toString('base64')
const idOf = (key: string): string =>
  createHash('sha256').update(Buffer.from(key.trim(), 'base64')).digest('hex').slice(0, 8)

interface Line {
  readonly level: string
  readonly event: string
  readonly fields: LogFields
}

/**
 * Herald started and stopped on one data directory, as an operator would across restarts,
 * with the encryption key given, generated, lost, restored and rotated.
 */
describe('encryption keys across restarts', () => {
  const dirs: string[] = []
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })
  const dataDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-secret-keys-'))
    dirs.push(dir)
    return dir
  }

  /**
   * Herald's notifications on `dir`, as `herald start` composes them (the embedded log and
   * store, the HTTP API), logging into `lines`; `stop` closes all of it. No warehouse: chDB
   * takes one folder per process, and these tests start many.
   */
  const start = async (dir: string, env: Record<string, string>, lines: Line[]) => {
    const logger: Logger = (level, event, fields = {}) => lines.push({ level, event, fields })
    const config = loadConfig({
      env: { HERALD_DATA_DIR: dir, HERALD_OUTBOUND_ALLOWLIST: '127.0.0.1', ...env },
    })
    const log = createSqliteEventLog({ path: join(dir, 'eventlog.sqlite'), idlePollMs: 25 })
    await log.createTopics(Object.values(config.event_log.topics).map((topic) => ({ topic, partitions: 1 })))
    const store = createSqliteEventStore({ path: join(dir, 'eventstore.sqlite'), pollIntervalMs: 20 })
    const ingress = await wireIngress({ config, warehouse: unusedWarehouse, logger })
    const outbound = createOutboundGuard({ allowlist: config.outbound.allowlist })
    const closeRest = async () => {
      await ingress.close()
      outbound.close()
      await log.close()
      await store.close()
    }
    const metrics = createMetrics()
    let notifications: Awaited<ReturnType<typeof wireNotifications>>
    try {
      notifications = await wireNotifications({
        config,
        log,
        store,
        logger,
        metrics,
        clock: Date.now,
        outbound,
        ingress,
      })
    } catch (error) {
      await closeRest()
      throw error
    }
    const app = createHttpApp({
      log,
      eventsTopic: config.event_log.topics.events,
      warehouse: unusedWarehouse,
      readiness: {},
      authenticate: createAdminTokenAuthenticator(ADMIN),
      requireAuth: true,
      metrics,
      logger,
      graphiql: false,
      mounts: notifications.mounts,
    })
    return {
      call: async (method: string, path: string, body?: unknown) => {
        const response = await app.request(path, {
          method,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        })
        const text = await response.text()
        return { status: response.status, text, json: (text.startsWith('{') ? JSON.parse(text) : {}) as Json }
      },
      stop: async () => {
        await Promise.all(notifications.consumers.map((c) => c.stop()))
        await notifications.close()
        await closeRest()
      },
    }
  }

  /** What `starting` failed with; one that started is stopped again, and the start-up is what fails. */
  const refused = async (starting: ReturnType<typeof start>): Promise<never> => {
    const started = await starting
    await started.stop()
    throw new Error('started')
  }

  /** The key ids of every sealed value the configuration store holds (the history included). */
  const storedKeyIds = (dir: string): string[] => {
    const db = new DatabaseSync(join(dir, 'eventstore.sqlite'), { readOnly: true })
    try {
      const rows = db.prepare('SELECT data FROM events').all() as { data: string }[]
      return [
        ...new Set(
          rows.flatMap((r) => [...String(r.data).matchAll(/enc:v1:([0-9a-f]{8})/g)].map((m) => m[1] ?? '')),
        ),
      ]
    } finally {
      db.close()
    }
  }

  const eventCount = (dir: string): number => {
    const db = new DatabaseSync(join(dir, 'eventstore.sqlite'), { readOnly: true })
    try {
      return Number((db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n)
    } finally {
      db.close()
    }
  }

  /** A webhook configuration with a password, created under whatever key Herald uses. */
  const createConfiguration = async (dir: string, env: Record<string, string>, url: string) => {
    const herald = await start(dir, env, [])
    try {
      const created = await herald.call('POST', BASE, { url, username: 'bot', password: PASSWORD })
      assert.equal(created.status, 201, created.text)
      return String(created.json.uuid)
    } finally {
      await herald.stop()
    }
  }

  it('refuses to start when secret.key is gone but stored secrets were sealed with it, naming its key id, and generates none', async () => {
    const receiver = await startWebhookReceiver()
    const dir = dataDir()
    const keyFile = join(dir, 'secret.key')
    try {
      const id = await createConfiguration(dir, {}, receiver.url)
      const key = readFileSync(keyFile, 'utf8')
      assert.deepEqual(storedKeyIds(dir), [idOf(key)])

      // Lost (a volume restored without it): no new key replaces it.
      renameSync(keyFile, `${keyFile}.aside`)
      await assert.rejects(refused(start(dir, {}, [])), (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error))
        assert.deepEqual(
          error.issues.map((i) => i.path),
          ['secrets.encryption_key'],
        )
        assert.match(error.message, new RegExp(`${keyFile} is missing`))
        assert.match(error.message, new RegExp(`key id ${idOf(key)} \\(1 configuration\\)`))
        assert.match(
          error.message,
          /put the file back, or set secrets\.encryption_key or list the key in secrets\.previous_keys/,
        )
        assert.ok(!error.message.includes(key.trim()))
        return true
      })
      assert.ok(!existsSync(keyFile), 'no key was generated')

      // Back in place: Herald starts and opens the secret.
      renameSync(`${keyFile}.aside`, keyFile)
      const herald = await start(dir, {}, [])
      try {
        const test = await herald.call('POST', `${BASE}/${id}/test`)
        assert.equal(test.status, 200, test.text)
      } finally {
        await herald.stop()
      }
    } finally {
      await receiver.close()
    }
  })

  it('refuses a configured key that leaves out the key in secret.key while stored secrets use it, saying to list it in previous_keys', async () => {
    const receiver = await startWebhookReceiver()
    const dir = dataDir()
    const keyFile = join(dir, 'secret.key')
    try {
      const id = await createConfiguration(dir, {}, receiver.url)
      const fileKey = readFileSync(keyFile, 'utf8').trim()
      const configured = newKey()
      await assert.rejects(
        refused(start(dir, { HERALD_SECRETS__ENCRYPTION_KEY: configured }, [])),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError, String(error))
          assert.match(error.message, new RegExp(`the key in ${keyFile} \\(key id ${idOf(fileKey)}\\)`))
          assert.match(error.message, /list it in secrets\.previous_keys/)
          assert.ok(!error.message.includes(fileKey) && !error.message.includes(configured))
          return true
        },
      )

      // Listed: Herald starts and opens the secret with it.
      const herald = await start(
        dir,
        { HERALD_SECRETS__ENCRYPTION_KEY: configured, HERALD_SECRETS__PREVIOUS_KEYS: fileKey },
        [],
      )
      try {
        const test = await herald.call('POST', `${BASE}/${id}/test`)
        assert.equal(test.status, 200, test.text)
      } finally {
        await herald.stop()
      }
    } finally {
      await receiver.close()
    }
  })

  it('starts with configured keys that open none of some stored secrets, logging an error naming the key ids and configurations, never a value', async () => {
    const receiver = await startWebhookReceiver()
    const dir = dataDir()
    try {
      const lost = newKey()
      const id = await createConfiguration(dir, { HERALD_SECRETS__ENCRYPTION_KEY: lost }, receiver.url)
      const lines: Line[] = []
      const herald = await start(dir, { HERALD_SECRETS__ENCRYPTION_KEY: newKey() }, lines)
      try {
        const unknown = lines.filter((l) => l.event === 'secrets.key_unknown')
        assert.equal(unknown.length, 1, JSON.stringify(lines.map((l) => l.event)))
        assert.equal(unknown[0]?.level, 'error')
        assert.equal(unknown[0]?.fields.key_id, idOf(lost))
        assert.deepEqual(unknown[0]?.fields.configurations, [id])
        assert.match(String(unknown[0]?.fields.hint), /secrets\.previous_keys/)
        const text = JSON.stringify(lines)
        assert.ok(!text.includes(PASSWORD) && !text.includes(lost))
      } finally {
        await herald.stop()
      }
    } finally {
      await receiver.close()
    }
  })

  it('rotates: a start with the new key current and the old one listed seals every stored secret again, after which the old key can be dropped', async () => {
    const receiver = await startWebhookReceiver()
    const dir = dataDir()
    const keyFile = join(dir, 'secret.key')
    try {
      // Secrets sealed with the generated key, a signing secret replaced lately among them.
      const id = await createConfiguration(dir, {}, receiver.url)
      const old = readFileSync(keyFile, 'utf8').trim()
      const replacing = await start(dir, {}, [])
      try {
        const put = await replacing.call('PUT', `${BASE}/${id}`, {
          signing_secret: `whsec_${randomBytes(32).toString('base64')}`,
        })
        assert.equal(put.status, 200, put.text)
      } finally {
        await replacing.stop()
      }

      // The new key current, the old one listed (the file may go, its key being listed).
      unlinkSync(keyFile)
      const current = newKey()
      const rotating = { HERALD_SECRETS__ENCRYPTION_KEY: current, HERALD_SECRETS__PREVIOUS_KEYS: old }
      const lines: Line[] = []
      const herald = await start(dir, rotating, lines)
      try {
        const inUse = await eventually(() => {
          const line = lines.find((l) => l.event === 'secrets.keys_in_use')
          assert.ok(line, JSON.stringify(lines.map((l) => l.event)))
          return line
        })
        // Said as it begins, with how much is due, and before it ends.
        const events = lines.map((l) => l.event)
        assert.ok(events.indexOf('secrets.resealing') >= 0, JSON.stringify(events))
        assert.ok(events.indexOf('secrets.resealing') < events.indexOf('secrets.resealed'))
        assert.deepEqual(lines.find((l) => l.event === 'secrets.resealing')?.fields, {
          key_id: idOf(current),
          configurations: 1,
          previous_key_ids: [idOf(old)],
        })
        assert.deepEqual(lines.find((l) => l.event === 'secrets.resealed')?.fields, {
          key_id: idOf(current),
          configurations: 1,
          secrets: 2,
        })
        assert.deepEqual(inUse.fields, {
          current_key_id: idOf(current),
          previous_key_ids: [idOf(old)],
          in_use: { [idOf(current)]: 1 },
          unused_previous_key_ids: [idOf(old)],
        })
      } finally {
        await herald.stop()
      }
      const events = eventCount(dir)

      // Started again the same way: nothing left to re-seal, nothing appended.
      const again: Line[] = []
      const restarted = await start(dir, rotating, again)
      try {
        await eventually(() => assert.ok(again.some((l) => l.event === 'secrets.keys_in_use')))
        assert.ok(!again.some((l) => l.event === 'secrets.resealed' || l.event === 'secrets.resealing'))
      } finally {
        await restarted.stop()
      }
      assert.equal(eventCount(dir), events)

      // The old key dropped: every secret still opens.
      const dropped: Line[] = []
      const after = await start(dir, { HERALD_SECRETS__ENCRYPTION_KEY: current }, dropped)
      try {
        assert.ok(!dropped.some((l) => l.event === 'secrets.key_unknown'))
        const test = await after.call('POST', `${BASE}/${id}/test`)
        assert.equal(test.status, 200, test.text)
        const sent = receiver.received.at(-1)
        assert.equal(
          sent?.headers.authorization,
          `Basic ${Buffer.from(`bot:${PASSWORD}`).toString('base64')}`,
        )
        // Signed with the new signing secret and the one it replaced, which still signs.
        assert.equal(String(sent?.headers['webhook-signature']).split(' ').length, 2)
      } finally {
        await after.stop()
      }
    } finally {
      await receiver.close()
    }
  })

  it('re-seals at a start with notifications off as well, since the configuration API still stores secrets', async () => {
    const dir = dataDir()
    const keyFile = join(dir, 'secret.key')
    await createConfiguration(dir, {}, 'https://127.0.0.1:9/hook')
    const old = readFileSync(keyFile, 'utf8').trim()
    unlinkSync(keyFile)
    const current = newKey()
    const lines: Line[] = []
    const herald = await start(
      dir,
      {
        HERALD_NOTIFICATIONS__ENABLED: 'false',
        HERALD_SECRETS__ENCRYPTION_KEY: current,
        HERALD_SECRETS__PREVIOUS_KEYS: old,
      },
      lines,
    )
    try {
      const inUse = await eventually(() => {
        const line = lines.find((l) => l.event === 'secrets.keys_in_use')
        assert.ok(line, JSON.stringify(lines.map((l) => l.event)))
        return line
      })
      assert.ok(lines.some((l) => l.event === 'notifications.disabled'))
      assert.deepEqual(inUse.fields.unused_previous_key_ids, [idOf(old)])
    } finally {
      await herald.stop()
    }
    assert.deepEqual(storedKeyIds(dir).includes(idOf(current)), true)
  })

  it('generates a key for a store with no secret in it, and keeps it', async () => {
    const dir = dataDir()
    const keyFile = join(dir, 'secret.key')
    const herald = await start(dir, {}, [])
    await herald.stop()
    const key = readFileSync(keyFile, 'utf8')
    // A key no secret was sealed with may be lost: another one is generated.
    unlinkSync(keyFile)
    const again = await start(dir, {}, [])
    await again.stop()
    assert.notEqual(readFileSync(keyFile, 'utf8'), key)
  })
})
