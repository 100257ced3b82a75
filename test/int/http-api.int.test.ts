import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Hono } from 'hono'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import { ACCOUNT_NAME_RULE } from '../../src/access/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import {
  createDeliveryLog,
  createDeliveryReadModel,
  createDeliveryRoutes,
} from '../../src/deliveries/index.ts'
import {
  type AppEnv,
  authorize,
  chainAuthenticators,
  createAdminTokenAuthenticator,
  createExternalAuthorizer,
  createHttpApp,
  type HttpAppOptions,
} from '../../src/http/index.ts'
import { createIngressDecoder, type IngressEvent } from '../../src/ingress/index.ts'
import { createMetrics, type Logger, silentLogger } from '../../src/observability/index.ts'
import type { EventLog, LogMessage } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import { createReportGraphqlRoutes } from '../../src/reports/index.ts'
import { damageTablePage } from '../support/damaged-page.ts'
import { eventually } from '../support/eventually.ts'

const TOKEN = 'test-admin-token-0123456789'
const auth = { authorization: `Bearer ${TOKEN}` }
const event = (id: string, extra: Record<string, unknown> = {}) => ({
  specversion: '1.0',
  id,
  source: '/engine',
  type: 'user.image.analysis.completed',
  account: 'acme',
  data: { digest: 'sha256:1' },
  ...extra,
})

describe('HTTP API on the embedded log and chDB', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-http-'))
  let log: EventLog
  let warehouse: Warehouse
  let app: ReturnType<typeof createHttpApp>
  let appOptions: HttpAppOptions
  let down = false
  const errorsLogged: string[] = []
  // The engine-event consumers' decoder on the embedded log, told of each event published: what
  // it was told, by value.
  const decoder = createIngressDecoder({ keepDecoded: true })
  const remembered = new Map<Uint8Array, IngressEvent>()
  const logger: Logger = (level, name) => {
    if (level === 'error') errorsLogged.push(name)
  }

  const logged = async (): Promise<LogMessage[]> => {
    const messages: LogMessage[] = []
    const consumer = await log.consume(
      { groupId: `read-${Math.random()}`, topics: ['engine.events'] },
      async (b) => {
        messages.push(...b.messages)
      },
    )
    await new Promise((resolve) => setTimeout(resolve, 200))
    await consumer.stop()
    return messages
  }

  before(async () => {
    log = createSqliteEventLog({ path: join(dir, 'log.sqlite'), idlePollMs: 50 })
    await log.createTopics([{ topic: 'engine.events', partitions: 1 }])
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
    appOptions = {
      log,
      eventsTopic: 'engine.events',
      rememberEvent: (message, event) => {
        remembered.set(message.value, event)
        decoder.remember(message, event)
      },
      warehouse,
      readiness: {
        event_log: () => log.ping(),
        warehouse: async () => {
          if (down) throw new Error('connection refused')
        },
      },
      authenticate: createAdminTokenAuthenticator(TOKEN),
      requireAuth: true,
      metrics: createMetrics(),
      logger,
      graphiql: true,
      maxIngestBytes: 4096,
    }
    app = createHttpApp(appOptions)
  })
  after(async () => {
    await log.close()
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('reports an unavailable port on /ready with 503', async () => {
    down = true
    const response = await app.request('/ready')
    down = false
    assert.equal(response.status, 503)
    const body = (await response.json()) as { checks: Record<string, { status: string; error?: string }> }
    assert.deepEqual(body.checks.warehouse, { status: 'unavailable', error: 'connection refused' })
    assert.equal(body.checks.event_log?.status, 'ok')
  })

  it('answers ingest on a log whose disk is full with a retriable 503 logging SQLITE_FULL, and /ready 503 naming the log until a write succeeds', async () => {
    // A log that may not grow past the pages it has once its topic exists: a real full disk.
    const path = join(dir, 'full-log.sqlite')
    const setUp = createSqliteEventLog({ path })
    await setUp.createTopics([{ topic: 'engine.events', partitions: 1 }])
    await setUp.close()
    const full = createSqliteEventLog({ path, maxPageCount: 1 })
    const failures: Record<string, unknown>[] = []
    try {
      const fullApp = createHttpApp({
        ...appOptions,
        log: full,
        readiness: { ...appOptions.readiness, event_log: () => full.ping() },
        maxIngestBytes: 1024 * 1024,
        logger: (level, name, fields) => {
          if (level === 'error' && name === 'http.request_failed') failures.push({ ...fields })
        },
      })
      const ingest = (events: unknown[]) =>
        fullApp.request('/v1/events', {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/cloudevents-batch+json' },
          body: JSON.stringify(events),
        })
      const readiness = async () => {
        const response = await fullApp.request('/ready')
        const body = (await response.json()) as { checks: Record<string, { status: string; error?: string }> }
        return { status: response.status, eventLog: body.checks.event_log }
      }
      assert.equal((await readiness()).status, 200)

      const response = await ingest(Array.from({ length: 200 }, (_, i) => event(`full-${i}`)))
      assert.equal(response.status, 503)
      const problem = (await response.json()) as { code: string; detail: string }
      assert.equal(problem.code, 'unavailable')
      assert.match(problem.detail, /SQLITE_FULL/)
      assert.equal(failures.length, 1)
      assert.match(String(failures[0]?.error), /event log publish: SQLITE_FULL/)

      const down = await readiness()
      assert.equal(down.status, 503)
      assert.equal(down.eventLog?.status, 'unavailable')
      assert.match(String(down.eventLog?.error), /the last write failed with SQLITE_FULL/)

      // One event still fits in the pages the file has: the log takes writes again.
      assert.equal((await ingest([event('fits')])).status, 202)
      assert.deepEqual(await readiness(), { status: 200, eventLog: { status: 'ok' } })
    } finally {
      await full.close()
    }
  })

  it('answers ingest with a retriable 503 when the log cannot sync its write-ahead log, and /ready names the log', async () => {
    const path = join(dir, 'unsynced-log.sqlite')
    const setUp = createSqliteEventLog({ path })
    await setUp.createTopics([{ topic: 'engine.events', partitions: 1 }])
    await setUp.close()
    // No checkpoint thread: its connection would make a new log file at the path.
    const unsynced = createSqliteEventLog({ path, checkpointIntervalMs: 0 })
    // The log file is deleted before the first sync opens it: SQLite writes on to the file it
    // has open, and the sync finds nothing at the path (ENOENT), as after any failed sync.
    unlinkSync(`${path}-wal`)
    const failures: Record<string, unknown>[] = []
    const notReady: Record<string, unknown>[] = []
    try {
      const unsyncedApp = createHttpApp({
        ...appOptions,
        log: unsynced,
        readiness: { ...appOptions.readiness, event_log: () => unsynced.ping() },
        logger: (level, name, fields) => {
          if (level === 'error' && name === 'http.request_failed') failures.push({ ...fields })
          if (name === 'http.not_ready') notReady.push({ level, ...fields })
        },
      })
      // The log's loss shows before anything is written: SQLite would write on without an error.
      // The answer is public: it says why, but where the data is kept only the server log says.
      const lost =
        'event log: its write-ahead log was deleted while open: commits since the last checkpoint would be lost with the process'
      const before = await unsyncedApp.request('/ready')
      assert.equal(before.status, 503)
      const beforeBody = (await before.json()) as {
        checks: Record<string, { status: string; error?: string }>
      }
      assert.equal(beforeBody.checks.event_log?.error, lost)
      assert.deepEqual(notReady, [
        {
          level: 'warn',
          check: 'event_log',
          error: `event log: its write-ahead log ${path}-wal was deleted while open: commits since the last checkpoint would be lost with the process`,
        },
      ])

      const response = await unsyncedApp.request('/v1/events', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify(event('unsynced')),
      })
      assert.equal(response.status, 503)
      const problem = (await response.json()) as { code: string; detail: string }
      assert.equal(problem.code, 'unavailable')
      assert.equal(
        problem.detail,
        'event log publish: the write-ahead log could not be synced to disk (ENOENT)',
      )
      assert.equal(failures.length, 1)

      const ready = await unsyncedApp.request('/ready')
      assert.equal(ready.status, 503)
      const body = (await ready.json()) as { checks: Record<string, { status: string; error?: string }> }
      assert.deepEqual(body.checks.event_log, { status: 'unavailable', error: lost })
      // Logged once while the reason stays the same.
      assert.equal(notReady.length, 1)
    } finally {
      await unsynced.close()
    }
  })

  it('answers /ready 503 naming the log and SQLITE_CORRUPT while a consumer cannot read its next batch, and 200 once it reads again', async () => {
    const path = join(dir, 'damaged-log.sqlite')
    const setUp = createSqliteEventLog({ path })
    await setUp.createTopics([{ topic: 'engine.events', partitions: 1 }])
    await setUp.publish('engine.events', [{ key: 'acme', value: new TextEncoder().encode('{}') }])
    await setUp.close()
    // The page of the messages table is damaged (as by a failing disk) before the log reads it.
    const damaged = damageTablePage(path, 'messages')
    const unreadable = createSqliteEventLog({
      path,
      idlePollMs: 20,
      retryBackoffMs: { min: 10, max: 40 },
      checkpointIntervalMs: 0,
    })
    const handled: number[] = []
    const consumer = await unreadable.consume(
      { groupId: 'herald-router', topics: ['engine.events'] },
      async (batch) => {
        handled.push(...batch.messages.map((m) => m.offset))
      },
    )
    try {
      const unreadableApp = createHttpApp({
        ...appOptions,
        log: unreadable,
        readiness: { ...appOptions.readiness, event_log: () => unreadable.ping() },
      })
      const readiness = async () => {
        const response = await unreadableApp.request('/ready')
        const body = (await response.json()) as { checks: Record<string, { status: string; error?: string }> }
        return { status: response.status, eventLog: body.checks.event_log }
      }
      await eventually(async () => assert.equal((await readiness()).status, 503))
      assert.deepEqual((await readiness()).eventLog, {
        status: 'unavailable',
        error:
          'event log: reading engine.events partition 0 for group herald-router failed with SQLITE_CORRUPT (database disk image is malformed) and no read of it has succeeded since',
      })

      // The page is repaired: the consumer's next read succeeds, and the log is ready again.
      damaged.repair()
      await eventually(() => assert.deepEqual(handled, [0]))
      assert.deepEqual(await readiness(), { status: 200, eventLog: { status: 'ok' } })
    } finally {
      damaged.close()
      await consumer.stop()
      await unreadable.close()
    }
  })

  it('answers 401 with a problem for a missing or wrong token', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: `Basic ${TOKEN}` }]) {
      const response = await app.request('/v1/events', { method: 'POST', headers })
      assert.equal(response.status, 401)
      assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="herald"')
      const problem = (await response.json()) as { type: string; status: number; code: string }
      assert.deepEqual(
        [problem.type, problem.status, problem.code],
        ['urn:herald:problem:unauthorized', 401, 'unauthorized'],
      )
    }
  })

  it('with require_auth off, takes a request without a token as the admin, and still checks a token sent', async () => {
    const READER = 'acme-reader-token-0123456789'
    const open = createHttpApp({
      ...appOptions,
      requireAuth: false,
      authenticate: chainAuthenticators(
        async (token) => (token === READER ? { account: 'acme', role: 'read-only' } : undefined),
        createAdminTokenAuthenticator(TOKEN),
      ),
    })
    const publish = (id: string, headers: Record<string, string>) =>
      open.request('/v1/events', {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify(event(id, { account: 'globex' })),
      })
    // Anonymous: the admin, who may publish for any account.
    assert.equal((await publish('open-anonymous', {})).status, 202)
    // A non-bearer scheme (a proxy's) is not a Herald token: anonymous too.
    assert.equal((await publish('open-basic', { authorization: 'Basic dXNlcjpwdw==' })).status, 202)
    assert.equal((await publish('open-admin', auth)).status, 202)
    const wrong = await publish('open-wrong', { authorization: 'Bearer not-a-token-of-herald' })
    assert.equal(wrong.status, 401)
    // A malformed bearer token is a wrong one too, not anonymous.
    for (const authorization of ['Bearer', 'Bearer wrong token', 'bearer  '])
      assert.equal((await publish('open-malformed', { authorization })).status, 401, authorization)
    assert.equal(wrong.headers.get('www-authenticate'), 'Bearer realm="herald"')
    // A read-only token of acme acts as itself, not as the admin.
    assert.equal((await publish('open-reader', { authorization: `Bearer ${READER}` })).status, 403)
    const ids = (await logged()).map((m) => JSON.parse(new TextDecoder().decode(m.value)).id as string)
    assert.deepEqual(
      ids.filter((id) => id.startsWith('open-')),
      ['open-anonymous', 'open-basic', 'open-admin'],
    )
  })

  it('accepts binary-mode CloudEvents from ce- headers', async () => {
    const response = await app.request('/v1/events', {
      method: 'POST',
      headers: {
        ...auth,
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': 'binary-1',
        'ce-source': '/engine',
        'ce-type': 'user.image.analysis.completed',
        'ce-account': 'acme',
        'ce-level': 'warning',
      },
      body: JSON.stringify({ digest: 'sha256:1' }),
    })
    assert.equal(response.status, 202)
    const stored = (await logged()).map((m) => JSON.parse(new TextDecoder().decode(m.value)))
    const binary = stored.find((e) => e.id === 'binary-1')
    assert.deepEqual(binary, {
      specversion: '1.0',
      id: 'binary-1',
      source: '/engine',
      type: 'user.image.analysis.completed',
      account: 'acme',
      level: 'warning',
      // Filled from the event catalog, as for every accepted event.
      resourcetype: 'image_tag',
      datacontenttype: 'application/json',
      data: { digest: 'sha256:1' },
    })
  })

  it('tells the consumers’ decoder each event it publishes, which the log hands them as published', async () => {
    const body = JSON.stringify([event('told-1'), event('told-2', { level: 'error', team: 'blue' })])
    const response = await app.request('/v1/events', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/cloudevents-batch+json' },
      body,
    })
    assert.equal(response.status, 202)
    // Every message of the log it was told of (the earlier tests' binary-mode events too).
    const told = (await logged()).filter((m) => remembered.has(m.value))
    assert.deepEqual(
      told.map((m) => remembered.get(m.value)?.id).filter((id) => id?.startsWith('told-')),
      ['told-1', 'told-2'],
    )
    const results = await decoder.decodeBatch(told)
    const fresh = await createIngressDecoder().decodeBatch(told)
    results.forEach((result, i) => {
      const message = told[i] as LogMessage
      assert.equal(
        result.ok && result.event,
        remembered.get(message.value),
        'the event it was told, not read again',
      )
      assert.deepStrictEqual(result, fresh[i], 'which is what reading the bytes gives')
    })
  })

  it('percent-decodes ce- header values, as the HTTP binding encodes them, and names a broken one', async () => {
    const headers = {
      ...auth,
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': 'binary-2',
      'ce-source': '/engine',
      'ce-type': 'user.image.analysis.completed',
      'ce-account': 'acme',
      'ce-subject': 'docker.io/acme/api%3A1.2%20%E2%80%94%20%22prod%22%2050%25',
    }
    const body = JSON.stringify({ digest: 'sha256:1' })
    const response = await app.request('/v1/events', { method: 'POST', headers, body })
    assert.equal(response.status, 202)
    const stored = (await logged()).map((m) => JSON.parse(new TextDecoder().decode(m.value)))
    assert.equal(stored.find((e) => e.id === 'binary-2')?.subject, 'docker.io/acme/api:1.2 — "prod" 50%')

    const broken = await app.request('/v1/events', {
      method: 'POST',
      headers: { ...headers, 'ce-id': 'binary-3', 'ce-subject': 'api%E2%80' },
      body,
    })
    assert.equal(broken.status, 400)
    const problem = (await broken.json()) as { errors: { path: string }[] }
    assert.deepEqual(
      problem.errors.map((e) => e.path),
      ['ce-subject'],
    )
  })

  it('names a binary-mode event’s issues by the header or body that carries them', async () => {
    const binary = (headers: Record<string, string>, body: string) =>
      app.request('/v1/events', {
        method: 'POST',
        headers: {
          ...auth,
          'content-type': 'application/json',
          'ce-specversion': '1.0',
          'ce-source': '/engine',
          'ce-type': 'user.image.analysis.completed',
          ...headers,
        },
        body,
      })
    const response = await binary({ 'ce-id': 'binary-4', 'ce-level': 'loud' }, JSON.stringify({ digest: 5 }))
    assert.equal(response.status, 400)
    const problem = (await response.json()) as { errors: { path: string }[] }
    assert.deepEqual(
      problem.errors.map((e) => e.path),
      ['ce-account', 'ce-level', '(body).digest'],
    )
    const bytes = await binary(
      { 'ce-id': 'binary-5', 'ce-account': 'acme', 'content-type': 'application/octet-stream' },
      'bytes',
    )
    // Binary data would need data_base64, which Herald does not take: the media type is refused.
    assert.equal(bytes.status, 415)
    assert.match(((await bytes.json()) as { detail: string }).detail, /application\/octet-stream/)
  })

  it('refuses unknown media types, bad JSON and oversized bodies with problems', async () => {
    const text = await app.request('/v1/events', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'text/plain' },
      body: 'x',
    })
    assert.equal(text.status, 415)
    const badJson = await app.request('/v1/events', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/cloudevents+json' },
      body: '{"id":',
    })
    assert.equal(badJson.status, 400)
    assert.equal(((await badJson.json()) as { errors: { path: string }[] }).errors[0]?.path, '(body)')
    // Bytes that are not UTF-8 are refused, as on Kafka, not replaced: two ids differing only
    // in them would otherwise become one event, and the second be dropped as a repeat.
    const [before, after] = JSON.stringify(event('inv-X')).split('X') as [string, string]
    const notUtf8 = await app.request('/v1/events', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/cloudevents+json' },
      body: Buffer.concat([Buffer.from(before), Buffer.from([0xff]), Buffer.from(after)]),
    })
    assert.equal(notUtf8.status, 400)
    assert.deepEqual(((await notUtf8.json()) as { errors: unknown }).errors, [
      { path: '(body)', message: 'is not valid UTF-8' },
    ])
    const big = await app.request('/v1/events', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify(event('big', { data: 'x'.repeat(5000) })),
    })
    assert.equal(big.status, 413)
  })

  it('refuses a query parameter on ingest, which takes none, publishing nothing', async () => {
    const end = async () => (await log.lag('nobody', ['engine.events']))[0]?.end
    const before = await end()
    const response = await app.request('/v1/events?account=globex', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify(event('with-query')),
    })
    assert.equal(response.status, 400)
    assert.deepEqual(((await response.json()) as { errors: unknown }).errors, [
      { path: 'account', message: 'is not a known query parameter; this route takes none' },
    ])
    assert.equal(await end(), before)
  })

  it('refuses an event nested too deeply with a 400 naming it, publishing nothing of its request', async () => {
    // Written out by hand: JSON.stringify itself cannot write data this deep. Larger than
    // this suite's body limit, so through an app of its own, without it, on the same log.
    const deepText = `${'['.repeat(6_000)}1${']'.repeat(6_000)}`
    const { maxIngestBytes: _, ...withoutLimit } = appOptions
    const roomy = createHttpApp(withoutLimit)
    const end = async () => (await log.lag('nobody', ['engine.events']))[0]?.end
    const before = await end()
    const single = await roomy.request('/v1/events', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify(event('deep-1', { data: undefined })).replace(
        /}$/,
        `,"data":{"digest":"sha256:1","deep":${deepText}}}`,
      ),
    })
    assert.equal(single.status, 400)
    assert.deepEqual(((await single.json()) as { errors: unknown }).errors, [
      { path: 'data', message: 'is nested more than 64 levels deep' },
    ])
    // A thousand levels could be written out, but SQLite's JSON functions stop there: the
    // delivery read model failed on it (and its process with it) until it was refused here.
    const thousand = await roomy.request('/v1/events', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify(event('deep-1000', { data: undefined })).replace(
        /}$/,
        `,"data":{"digest":"sha256:1","deep":${'['.repeat(1_000)}1${']'.repeat(1_000)}}}`,
      ),
    })
    assert.equal(thousand.status, 400)
    const batch = await roomy.request('/v1/events', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/cloudevents-batch+json' },
      body: `[${JSON.stringify(event('deep-2'))},${JSON.stringify(event('deep-3', { data: undefined })).replace(/}$/, `,"data":{"digest":"sha256:1","deep":${deepText}}}`)}]`,
    })
    assert.equal(batch.status, 400)
    assert.deepEqual(((await batch.json()) as { errors: unknown }).errors, [
      { path: '[1].data', message: 'is nested more than 64 levels deep' },
    ])
    assert.equal(await end(), before)
  })

  it('refuses a GraphQL query nested too deeply for the parser with a 400 naming it, not a 500', async () => {
    // Within the default token limit, how deep the parser gets before the stack runs out
    // depends on what V8 has compiled; with the limit raised, 100,000 levels always exhaust it.
    const { maxIngestBytes: _, ...withoutLimit } = appOptions
    const failures: string[] = []
    const roomy = createHttpApp({
      ...withoutLimit,
      logger: (level, name) => {
        if (level === 'error') failures.push(name)
      },
      mounts: [
        {
          path: '/v1/deep-graphql',
          app: createReportGraphqlRoutes({
            warehouse,
            graphiql: false,
            logger: silentLogger,
            endpoint: '/v1/deep-graphql',
            limits: { maxTokens: 1_000_000 },
          }),
        },
      ],
    })
    const depth = 100_000
    const response = await roomy.request('/v1/deep-graphql', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{${'metrics {'.repeat(depth)}id${'}'.repeat(depth)}}` }),
    })
    assert.equal(response.status, 400)
    const body = (await response.json()) as { data?: unknown; errors: Record<string, unknown>[] }
    assert.equal('data' in body, false)
    assert.deepEqual(body.errors, [
      { message: 'the query is nested too deeply to be processed', extensions: { code: 'query_too_deep' } },
    ])
    assert.deepEqual(failures, [])
  })

  it('answers a recursion too deep for the stack anywhere but in reading a body as a 500, logged', async () => {
    const failures: { name: string; error: unknown }[] = []
    const descend = (n: number): number => (n === 0 ? 0 : 1 + descend(n - 1))
    const recursing = new Hono<AppEnv>().get('/', (c) => c.json({ depth: descend(10_000_000) }))
    const withRoute = createHttpApp({
      ...appOptions,
      logger: (level, name, fields) => {
        if (level === 'error') failures.push({ name, error: fields?.error })
      },
      mounts: [{ path: '/v1/recursing', app: recursing }],
    })
    const response = await withRoute.request('/v1/recursing', { headers: auth })
    assert.equal(response.status, 500)
    const body = (await response.json()) as Record<string, unknown>
    assert.equal(body.code, 'internal')
    assert.equal(body.detail, 'an internal error occurred; see the server log')
    assert.equal('errors' in body, false)
    assert.deepEqual(failures, [
      { name: 'http.request_failed', error: 'RangeError: Maximum call stack size exceeded' },
    ])
  })

  it('logs a failed request with its cause chain, the stack of an internal error, and no configured secret', async () => {
    const failures: Record<string, unknown>[] = []
    const SECRET = 'Zq7HttpSecret'
    const failing = new Hono<AppEnv>()
      .get('/internal', () => {
        throw new Error(`query failed at http://user:${SECRET}@db:8123`, {
          cause: new Error(`socket hang up (${SECRET})`),
        })
      })
      .get('/authorized', authorize('listNotificationEndpoints'), (c) => c.json({ ok: true }))
    // A port nothing listens on (fetch refuses to try port 9 and others as unsafe).
    const closed = createServer().listen(0, '127.0.0.1')
    await once(closed, 'listening')
    const { port } = closed.address() as AddressInfo
    closed.close()
    await once(closed, 'close')
    const withRoutes = createHttpApp({
      ...appOptions,
      authorizer: createExternalAuthorizer({ endpoint: `http://127.0.0.1:${port}/decide`, timeoutMs: 2_000 }),
      hideSecrets: (text) => text.split(SECRET).join('[redacted]'),
      logger: (level, name, fields) => {
        if (level === 'error' && name === 'http.request_failed') failures.push({ ...fields })
      },
      mounts: [{ path: '/v1/failing', app: failing }],
    })
    assert.equal((await withRoutes.request('/v1/failing/internal', { headers: auth })).status, 500)
    assert.equal((await withRoutes.request('/v1/failing/authorized', { headers: auth })).status, 503)
    assert.equal(failures.length, 2)
    const [internal, unavailable] = failures
    assert.equal(internal?.error, 'Error: query failed at http://user:[redacted]@db:8123')
    assert.deepEqual(internal?.causes, ['Error: socket hang up ([redacted])'])
    assert.match(
      String(internal?.stack),
      /^Error: query failed at http:\/\/user:\[redacted\]@db:8123\n\s+at /,
    )
    assert.equal(internal?.status, 500)
    assert.match(String(unavailable?.error), /the external authorizer gave no usable answer \(unreachable\)/)
    assert.equal(unavailable?.status, 503)
    // fetch's own error, then the socket's: the address and errno an operator needs.
    assert.match(
      JSON.stringify(unavailable?.causes),
      new RegExp(`fetch failed.*ECONNREFUSED 127\\.0\\.0\\.1:${port}`),
    )
    assert.equal(unavailable?.stack, undefined)
    assert.doesNotMatch(JSON.stringify(failures), new RegExp(SECRET))
  })

  it('refuses a JSON route’s body of another media type with a 415 problem naming both; ingest keeps its modes', async () => {
    const query = JSON.stringify({ query: '{ metrics { results { id } } }' })
    const plain = await app.request('/v1/reports/graphql', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'text/plain' },
      body: query,
    })
    assert.equal(plain.status, 415)
    assert.equal(plain.headers.get('content-type'), 'application/problem+json')
    assert.equal(
      ((await plain.json()) as { detail: string }).detail,
      'send application/json, text/json, or another type ending in +json; got "text/plain"',
    )
    const json = await app.request('/v1/reports/graphql', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json; charset=utf-8' },
      body: query,
    })
    assert.equal(json.status, 200)

    const unlabelled = await app.request('/v1/events', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'text/plain' },
      body: JSON.stringify(event('plain-1')),
    })
    assert.equal(unlabelled.status, 415)
    assert.equal(
      ((await unlabelled.json()) as { detail: string }).detail,
      'send application/cloudevents+json, application/cloudevents-batch+json, or binary mode with ce-* headers; got "text/plain"',
    )
    // Binary mode's data is JSON when no content type is given, as the binding says.
    const binary = await app.request('/v1/events', {
      method: 'POST',
      headers: {
        ...auth,
        'ce-specversion': '1.0',
        'ce-id': 'binary-untyped-1',
        'ce-source': '/engine',
        'ce-type': 'user.image.analysis.completed',
        'ce-account': 'acme',
      },
      body: new TextEncoder().encode(JSON.stringify({ digest: 'sha256:1' })),
    })
    assert.equal(binary.status, 202, await binary.text())
  })

  it('refuses an oversized body on every route, not only ingest, with a 413 problem', async () => {
    const body = JSON.stringify({ query: `{ metrics { results { id } } } # ${'x'.repeat(5000)}` })
    for (const headers of [{ 'content-length': String(body.length) }, {}]) {
      const response = await app.request('/v1/reports/graphql', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', ...headers },
        body,
      })
      assert.equal(response.status, 413)
      assert.equal(response.headers.get('content-type'), 'application/problem+json')
      assert.equal(((await response.json()) as { code: string }).code, 'payload_too_large')
    }
  })

  it('answers a method a path does not take with 405 and Allow, and an unknown path with 404', async () => {
    for (const [method, path, allow] of [
      ['GET', '/v1/events', 'POST'],
      ['DELETE', '/v1/reports/graphql', 'GET, HEAD, POST'],
      ['POST', '/health', 'GET, HEAD'],
    ] as const) {
      const response = await app.request(path, { method, headers: auth })
      assert.equal(response.status, 405, `${method} ${path}`)
      assert.equal(response.headers.get('allow'), allow)
      assert.equal(response.headers.get('content-type'), 'application/problem+json')
      const body = (await response.json()) as { code: string; instance?: string }
      assert.equal(body.code, 'method_not_allowed')
      // As every other problem does, it names the path it is about.
      assert.equal(body.instance, path)
    }
    // HEAD is answered wherever GET is, as Allow says.
    assert.equal((await app.request('/health', { method: 'HEAD', headers: auth })).status, 200)
    const unknown = await app.request('/v1/nothing/here', { headers: auth })
    assert.equal(unknown.status, 404)
    assert.equal(unknown.headers.get('allow'), null)
    assert.equal(((await unknown.json()) as { instance?: string }).instance, '/v1/nothing/here')
    const long = await app.request(`/v1/${'n'.repeat(10_000)}`, { headers: auth })
    assert.equal(long.status, 404)
    assert.equal(
      ((await long.json()) as { detail: string }).detail,
      `no route for GET /v1/${'n'.repeat(60)}…`,
    )
  })

  it('answers the bulk replay’s path 405 for a GET, and Allow names its literal route, not the id route beside it', async () => {
    const store = createSqliteEventStore({ path: ':memory:' })
    const view = createDeliveryReadModel({ path: ':memory:', newId: () => 'http-api-view' })
    const withDeliveries = createHttpApp({
      ...appOptions,
      mounts: [
        {
          path: '/v1/notifications',
          app: createDeliveryRoutes({
            view,
            log: createDeliveryLog({
              store,
              clock: Date.now,
              newId: () => 'unused',
              origin: view.instanceId,
            }),
            replayLimit: 10,
          }),
        },
      ],
    })
    try {
      for (const [method, allow] of [
        ['GET', 'POST'],
        ['PUT', 'POST'],
      ] as const) {
        const response = await withDeliveries.request('/v1/notifications/deliveries/replay', {
          method,
          headers: auth,
        })
        assert.equal(response.status, 405, method)
        assert.equal(response.headers.get('allow'), allow, method)
      }
      // A filter in the URL of the bulk replay is refused, not ignored for the body's default.
      const inUrl = await withDeliveries.request('/v1/notifications/deliveries/replay?status=sent', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: '{}',
      })
      assert.equal(inUrl.status, 400)
      assert.deepEqual(
        ((await inUrl.json()) as { errors: { path: string }[] }).errors.map((e) => e.path),
        ['status'],
      )
      // An id route still takes its own methods.
      const id = 'a'.repeat(64)
      assert.equal(
        (await withDeliveries.request(`/v1/notifications/deliveries/${id}`, { headers: auth })).status,
        404,
      )
      const put = await withDeliveries.request(`/v1/notifications/deliveries/${id}`, {
        method: 'PUT',
        headers: auth,
      })
      assert.equal(put.headers.get('allow'), 'GET, HEAD')
    } finally {
      await view.close()
      await store.close()
    }
  })

  it('writes nothing of a batch with one invalid event', async () => {
    const before = (await logged()).length
    const response = await app.request('/v1/events', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/cloudevents-batch+json' },
      body: JSON.stringify([event('ok-1'), event('ok-2', { time: 'noon' })]),
    })
    assert.equal(response.status, 400)
    const problem = (await response.json()) as { errors: { path: string; message: string }[] }
    assert.deepEqual(
      problem.errors.map((e) => e.path),
      ['[1].time'],
    )
    assert.equal((await logged()).length, before)
  })

  it('refuses ids that differ only in a lone surrogate, or that hold a control character, naming each, publishing nothing', async () => {
    // Accepted, "s\ud800" and "s\udc00" were one event downstream (the processed-id window
    // hashes UTF-8, where each becomes U+FFFD): 202 for both, the second skipped as a repeat.
    const before = (await logged()).length
    const batch = await app.request('/v1/events', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/cloudevents-batch+json' },
      body: JSON.stringify([event('s\ud800'), event('s\udc00'), event('ok', { subject: 'a\u0007b' })]),
    })
    assert.equal(batch.status, 400)
    const problem = (await batch.json()) as { errors: { path: string; message: string }[] }
    assert.deepEqual(
      problem.errors.map((e) => e.path),
      ['[0].id', '[1].id', '[2].subject'],
    )
    assert.match(problem.errors[0]?.message ?? '', /surrogate/)
    assert.match(problem.errors[2]?.message ?? '', /control character/)
    // In binary mode, a percent-encoded control character in a ce- header, named by its header.
    const binary = await app.request('/v1/events', {
      method: 'POST',
      headers: {
        ...auth,
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': 'binary-ctl',
        'ce-source': '/engine',
        'ce-type': 'user.image.analysis.completed',
        'ce-account': 'acme',
        'ce-subject': 'a%00b',
      },
      body: JSON.stringify({ digest: 'sha256:1' }),
    })
    assert.equal(binary.status, 400)
    assert.deepEqual(
      ((await binary.json()) as { errors: { path: string }[] }).errors.map((e) => e.path),
      ['ce-subject'],
    )
    assert.equal((await logged()).length, before)
  })

  it('refuses an event whose account is not an account name, naming it, publishing nothing and labelling no metric with it', async () => {
    const end = async () => (await log.lag('nobody', ['engine.events']))[0]?.end
    const before = await end()
    const refused = async (init: { headers: Record<string, string>; body: string }, path: string) => {
      const response = await app.request('/v1/events', { method: 'POST', ...init })
      assert.equal(response.status, 400, init.body.slice(0, 80))
      const problem = (await response.json()) as { code: string; errors: unknown }
      assert.equal(problem.code, 'validation_failed')
      assert.deepEqual(problem.errors, [{ path, message: ACCOUNT_NAME_RULE }], init.body.slice(0, 80))
    }
    const structured = { ...auth, 'content-type': 'application/cloudevents+json' }
    const batch = { ...auth, 'content-type': 'application/cloudevents-batch+json' }
    await refused(
      { headers: structured, body: JSON.stringify(event('nul-1', { account: 'acme\u0000' })) },
      'account',
    )
    // The valid event of the batch is not published either.
    await refused(
      { headers: batch, body: JSON.stringify([event('nul-2'), event('nul-3', { account: 'acme\u0000' })]) },
      '[1].account',
    )
    await refused(
      {
        headers: {
          ...auth,
          'content-type': 'application/json',
          'ce-specversion': '1.0',
          'ce-id': 'nul-4',
          'ce-source': '/engine',
          'ce-type': 'user.image.analysis.completed',
          'ce-account': 'acme%00',
        },
        body: JSON.stringify({ digest: 'sha256:1' }),
      },
      'ce-account',
    )
    // 3,000 characters: as long as this suite's 4 KiB body limit lets through.
    for (const account of ['a'.repeat(3_000), 'a'.repeat(129), 'acmé', '.acme', '-acme', ''])
      await refused(
        { headers: structured, body: JSON.stringify(event('bad-account', { account })) },
        'account',
      )
    assert.equal(await end(), before, 'nothing was published')

    const metrics = await (await app.request('/metrics')).text()
    assert.ok(!metrics.includes('\u0000'), 'no NUL in /metrics')
    // Where accounts are labelled, only account names are.
    const labelledApp = createHttpApp({ ...appOptions, metrics: createMetrics({ accountSeriesLimit: 10 }) })
    await labelledApp.request('/v1/events', {
      method: 'POST',
      headers: structured,
      body: JSON.stringify(event('nul-5', { account: 'acme\u0000' })),
    })
    await labelledApp.request('/v1/events', {
      method: 'POST',
      headers: structured,
      body: JSON.stringify(event('labelled-1')),
    })
    const labelledText = await (await labelledApp.request('/metrics')).text()
    assert.ok(!labelledText.includes('\u0000'), 'no NUL in /metrics')
    const labelled = [...labelledText.matchAll(/^herald_events_ingested_total\{account="([^"]*)"\}/gm)].map(
      (m) => m[1],
    )
    assert.deepEqual(labelled, ['acme'])
  })

  it('names no account on /metrics by default; with metrics.account_series_limit, that many and the rest as _other', async () => {
    const accounts = ['acme', 'globex', 'initech', 'umbrella']
    const post = (target: ReturnType<typeof createHttpApp>, id: string, account: string) =>
      target.request('/v1/events', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify(event(id, { account })),
      })
    const anonymous = createHttpApp({ ...appOptions, metrics: createMetrics() })
    for (const account of accounts)
      assert.equal((await post(anonymous, `anon-${account}`, account)).status, 202)
    const text = await (await anonymous.request('/metrics')).text()
    assert.match(text, /^herald_events_ingested_total 4$/m)
    for (const account of accounts) assert.ok(!text.includes(account), `/metrics names ${account}`)

    const capped = createHttpApp({ ...appOptions, metrics: createMetrics({ accountSeriesLimit: 2 }) })
    for (const account of accounts) assert.equal((await post(capped, `cap-${account}`, account)).status, 202)
    const series = (await (await capped.request('/metrics')).text())
      .split('\n')
      .filter((line) => line.startsWith('herald_events_ingested_total{'))
      .sort()
    assert.deepEqual(series, [
      'herald_events_ingested_total{account="_other"} 2',
      'herald_events_ingested_total{account="acme"} 1',
      'herald_events_ingested_total{account="globex"} 1',
    ])
  })

  it('serves GraphQL errors with codes and GraphiQL to browsers', async () => {
    const response = await app.request('/v1/reports/graphql', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ events(limit: 0) { pageInfo { count } } }' }),
    })
    const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] }
    assert.equal(body.errors[0]?.extensions.code, 'validation_failed')
    // A browser opening the URL sends no token: the page (no data) is served all the same,
    // with the header its queries need ready to fill in; the queries themselves need a token.
    const page = await app.request('/v1/reports/graphql', { headers: { accept: 'text/html' } })
    assert.equal(page.status, 200)
    const html = await page.text()
    assert.match(html, /graphiql/i)
    assert.match(html, /Bearer &lt;your API token&gt;|Bearer <your API token>/)
    const tokenless = await app.request('/v1/reports/graphql?query=%7B%20metrics%20%7B%20id%20%7D%20%7D')
    assert.equal(tokenless.status, 401)
    const posted = await app.request('/v1/reports/graphql', {
      method: 'POST',
      headers: { accept: 'text/html', 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ metrics { results { id } } }' }),
    })
    assert.equal(posted.status, 401)
  })

  it('refuses a GraphQL request whose query, variables or operation name has the wrong type with a 400 naming it', async () => {
    const post = async (body: unknown) => {
      const response = await app.request('/v1/reports/graphql', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      return {
        status: response.status,
        type: response.headers.get('content-type'),
        json: await response.json(),
      }
    }
    for (const [body, path] of [
      [{ query: 5 }, 'query'],
      [{ query: { kind: 'Document', definitions: [] } }, 'query'],
      [{ query: '{ metrics { results { id } } }', variables: [1] }, 'variables'],
      [{ query: '{ metrics { results { id } } }', operationName: 5 }, 'operationName'],
    ] as const) {
      const answer = await post(body)
      assert.equal(answer.status, 400, JSON.stringify(answer.json))
      assert.equal(answer.type, 'application/problem+json')
      assert.deepEqual(
        (answer.json as { errors: { path: string }[] }).errors.map((e) => e.path),
        [path],
      )
    }
    assert.deepEqual(errorsLogged, [])
  })

  it('refuses GraphQL parameters it would ignore, and anything but a query, with a 400 naming them', async () => {
    const METRICS = '{ metrics { results { id } } }'
    const send = async (method: 'GET' | 'POST', search: string, body?: unknown) => {
      const response = await app.request(`/v1/reports/graphql${search}`, {
        method,
        headers: { ...auth, accept: 'application/json', 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      return { status: response.status, json: (await response.json()) as Record<string, unknown> }
    }
    const paths = (json: Record<string, unknown>) => (json.errors as { path: string }[]).map((e) => e.path)
    for (const [body, expected] of [
      [{ query: METRICS, varibles: { a: 1 } }, ['varibles']],
      [[{ query: METRICS }], ['(body)']],
      ['{ metrics { results { id } } }', ['(body)']],
    ] as const) {
      const answer = await send('POST', '', body)
      assert.equal(answer.status, 400, JSON.stringify(answer.json))
      assert.deepEqual(paths(answer.json), expected)
    }
    const inUrl = await send('POST', `?query=${encodeURIComponent(METRICS)}`, { query: METRICS })
    assert.equal(inUrl.status, 400)
    assert.deepEqual(paths(inUrl.json), ['?query'])
    const typo = await send('GET', `?query=${encodeURIComponent(METRICS)}&operation=x`)
    assert.equal(typo.status, 400)
    assert.deepEqual(paths(typo.json), ['?operation'])
    // A parameter given twice, as on every /v1 route: which one is meant cannot be told.
    const EVENTS = '{ events { results { id } } }'
    const twice = await send(
      'GET',
      `?query=${encodeURIComponent(METRICS)}&query=${encodeURIComponent(EVENTS)}`,
    )
    assert.equal(twice.status, 400, JSON.stringify(twice.json))
    assert.deepEqual(twice.json.errors, [{ path: '?query', message: 'is given more than once' }])
    const variables = await send(
      'GET',
      `?query=${encodeURIComponent(METRICS)}&variables=%7B%7D&variables=%7B%7D`,
    )
    assert.deepEqual(paths(variables.json), ['?variables'])
    // Every GraphQL over HTTP parameter is taken, in the body and in a GET's URL.
    const whole = { query: METRICS, variables: {}, operationName: null, extensions: {} }
    assert.equal((await send('POST', '', whole)).status, 200)
    assert.equal((await send('GET', `?query=${encodeURIComponent(METRICS)}&variables=%7B%7D`)).status, 200)
    // The reports are read-only: a mutation is refused before it runs, over POST as over GET.
    for (const method of ['POST', 'GET'] as const) {
      const mutation = 'mutation { metrics { results { id } } }'
      const answer =
        method === 'POST'
          ? await send(method, '', { query: mutation })
          : await send(method, `?query=${encodeURIComponent(mutation)}`)
      assert.equal(answer.status, 400, `${method} ${JSON.stringify(answer.json)}`)
      const [error] = answer.json.errors as { message: string; extensions?: { code?: string } }[]
      assert.equal(error?.message, 'the reports API answers queries only, not a mutation')
      assert.equal(error?.extensions?.code, 'validation_failed')
    }
    assert.deepEqual(errorsLogged, [])
  })

  it('refuses a GraphQL variable of the wrong type with a 400 naming it, rather than answering an internal error', async () => {
    const response = await app.request('/v1/reports/graphql', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'query ($l: Int) { metrics(limit: $l) { results { id } } }',
        variables: { l: 'abc' },
      }),
    })
    const body = (await response.json()) as {
      data?: unknown
      errors: { message: string; extensions?: { code?: string } }[]
    }
    assert.equal(body.data, undefined)
    assert.match(body.errors[0]?.message ?? '', /\$l.*Int cannot represent/)
    // Refused before anything ran, as the query limits refuse one: a 400 with a code.
    assert.equal(response.status, 400)
    assert.equal(body.errors[0]?.extensions?.code, 'validation_failed')
    assert.deepEqual(errorsLogged, [])
  })

  it('answers a root that throws something unexpected with a GraphQL internal error, logging what it threw once', async () => {
    const secret = 'password=hunter2'
    // What the warehouse throws, and what the log must say of it.
    const thrown: [string, () => unknown, RegExp][] = [
      ['an Error', () => new TypeError(`cannot read ${secret}`), /^TypeError: cannot read password=hunter2$/],
      ['a string', () => `cannot reach ${secret}`, /^cannot reach password=hunter2$/],
      ['undefined', () => undefined, /^undefined$/],
      ['an object of no Error', () => ({ reason: secret }), /reason: 'password=hunter2'/],
      ['an object of no prototype', () => Object.create(null), /null prototype/],
      ['an Error without a message', () => new Error(), /^Error$/],
      [
        'an Error whose extensions getter throws',
        () =>
          Object.defineProperty(new Error(`query failed: ${secret}`), 'extensions', {
            get: () => {
              throw new TypeError('no extensions here')
            },
          }),
        /^Error: query failed: password=hunter2$/,
      ],
      [
        'an Error whose message getter throws',
        () =>
          Object.defineProperty(new Error(secret), 'message', {
            get: () => {
              throw new TypeError('no message here')
            },
          }),
        /^\[object Error\] that cannot be printed$/,
      ],
      [
        'an Error with a path of its own',
        () => Object.assign(new Error(`located: ${secret}`), { path: ['somewhere'] }),
        /^Error: located: password=hunter2$/,
      ],
      [
        'an object whose toJSON throws',
        () => ({
          detail: secret,
          toJSON: () => {
            throw new Error('not JSON')
          },
        }),
        /detail: 'password=hunter2'/,
      ],
    ]
    for (const [what, toThrow, logged] of thrown) {
      const failures: { name: string; fields: Record<string, unknown> }[] = []
      const failing = createHttpApp({
        ...appOptions,
        // The report's own query fails; the projection lag every answer carries is still read.
        warehouse: {
          ...warehouse,
          query: async (sql, params) => {
            if (sql.includes('projection_progress')) return warehouse.query(sql, params)
            throw toThrow()
          },
        },
        logger: (level, name, fields = {}) => {
          if (level === 'error') failures.push({ name, fields })
        },
      })
      const response = await failing.request('/v1/reports/graphql', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ events(limit: 1) { results { id } } }' }),
      })
      const text = await response.text()
      assert.equal(response.status, 200, `${what}: ${text}`)
      assert.doesNotMatch(text, /hunter2|TypeError/, what)
      const body = JSON.parse(text) as { data: unknown; errors: unknown; extensions: Record<string, unknown> }
      assert.equal(body.data, null, what)
      assert.deepEqual(
        body.errors,
        [{ message: 'internal error', path: ['events'], extensions: { code: 'internal' } }],
        what,
      )
      assert.equal(typeof body.extensions.projectionLagSeconds, 'number', what)
      assert.deepEqual(
        failures.map((f) => [f.name, f.fields.path]),
        [['graphql.resolver_failed', ['events']]],
        what,
      )
      const fields = failures[0]?.fields ?? {}
      assert.match(String(fields.error), logged, what)
      // An Error's own stack, from where it was made.
      if (/^(Type)?Error(: |$)/.test(String(fields.error)))
        assert.match(String(fields.stack), /http-api\.int\.test\.ts/, what)
    }
  })

  it('answers a field whose value throws something unexpected while it is serialized with a GraphQL internal error, logged once', async () => {
    const failures: { name: string; fields: Record<string, unknown> }[] = []
    // An account whose value throws, while graphql-js turns it into a String, an Error with a
    // path of its own: graphql-js passes that on as it is, not as a GraphQLError.
    const unprintable = {
      valueOf: () => {
        throw Object.assign(new Error('account of password=hunter2'), { path: ['somewhere'] })
      },
    }
    const odd = createHttpApp({
      ...appOptions,
      warehouse: {
        ...warehouse,
        query: async <Row>(sql: string, params?: Parameters<Warehouse['query']>[1]) =>
          sql.includes('projection_progress')
            ? warehouse.query<Row>(sql, params)
            : ([
                { account: unprintable, vulnerability_id: 'CVE-2026-0001', tags: [], tag_count: 0 },
              ] as Row[]),
      },
      logger: (level, name, fields = {}) => {
        if (level === 'error') failures.push({ name, fields })
      },
    })
    const response = await odd.request('/v1/reports/graphql', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ tagsByVulnerability(limit: 1) { results { account } } }' }),
    })
    const text = await response.text()
    assert.equal(response.status, 200, text)
    assert.doesNotMatch(text, /hunter2|TypeError/)
    assert.deepEqual((JSON.parse(text) as { errors: unknown }).errors, [
      { message: 'internal error', extensions: { code: 'internal' } },
    ])
    assert.deepEqual(
      failures.map((f) => [f.name, f.fields.error]),
      [['graphql.resolver_failed', 'Error: account of password=hunter2']],
    )
    assert.match(String(failures[0]?.fields.stack), /http-api\.int\.test\.ts/)
  })

  it('counts requests in /metrics', async () => {
    const text = await (await app.request('/metrics')).text()
    assert.match(
      text,
      /herald_http_requests_total\{method="POST",route="\/v1\/events\/\*?",status="202"\} \d+|herald_http_requests_total\{[^}]*status="202"[^}]*\} \d+/,
    )
    assert.match(text, /herald_events_rejected_total \d+/)
  })
})
