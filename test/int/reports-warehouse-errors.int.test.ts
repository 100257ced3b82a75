import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import { createProjectorHandler } from '../../projections/projector/index.ts'
import type { Principal } from '../../src/access/index.ts'
import { createChdbWarehouse, createHttpWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { encodeLogEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import { createHttpApp } from '../../src/http/index.ts'
import { createMetrics, type Logger, silentLogger } from '../../src/observability/index.ts'
import type { EventLog } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import { createMetricsRoutes } from '../../src/reports/index.ts'

const tokens: Record<string, Principal> = { reader: { account: 'acme', role: 'read-only' } }

/** A local port nothing listens on: a ClickHouse server that is down. */
const closedPort = async (): Promise<number> => {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * What the warehouse's adapters say of a failure names where the warehouse is (a ClickHouse
 * server's URL, chDB's data folder) and carries ClickHouse's own text. The reports answer a
 * client its code alone, GraphQL and REST alike, and keep the words for the server log.
 */
describe('report answers when the warehouse fails', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-reports-warehouse-errors-'))
  const folder = join(dir, 'warehouse')
  let warehouse: Warehouse
  let log: EventLog

  before(async () => {
    warehouse = await createChdbWarehouse({ path: folder })
    await migrate(warehouse, warehouseMigrations)
    log = createSqliteEventLog({ path: join(dir, 'log.sqlite') })
    const events = [
      ...generateActivity({
        seed: 7,
        accounts: ['acme'],
        count: 300,
        clock: () => Date.UTC(2026, 0, 1),
        systemEvents: false,
      }),
    ]
    const handler = createProjectorHandler({ warehouse, clock: () => 0, logger: silentLogger })
    await handler({
      topic: 'engine.events',
      partition: 0,
      messages: events.map((event, offset) => ({
        ...encodeLogEvent(event),
        headers: {},
        topic: 'engine.events',
        partition: 0,
        offset,
        timestamp: 0,
      })),
    })
  })
  after(async () => {
    await log.close()
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /**
   * An app on `reports`, and the error lines it logs. With `lag`, the answers' projection lag
   * comes from there (as a composition root's cached view gives it) and a GraphQL field fails
   * alone; without, reading the lag fails the whole request too.
   */
  const appOn = (reports: Warehouse, lag?: () => Promise<number>) => {
    const lines: Record<string, unknown>[] = []
    const logger: Logger = (level, name, fields) => {
      if (level === 'error') lines.push({ name, ...fields })
    }
    const app = createHttpApp({
      log,
      eventsTopic: 'engine.events',
      warehouse: reports,
      readiness: {},
      authenticate: async (token) => tokens[token],
      requireAuth: true,
      metrics: createMetrics(),
      logger,
      graphiql: false,
      ...(lag === undefined ? {} : { reportLag: lag }),
      mounts: [
        {
          path: '/v1/reports/metrics',
          app: createMetricsRoutes({ warehouse: reports, ...(lag === undefined ? {} : { lag }) }),
        },
      ],
    })
    const request = async (path: string, init: RequestInit = {}) => {
      const response = await app.request(path, {
        ...init,
        headers: { authorization: 'Bearer reader', 'content-type': 'application/json' },
      })
      return { status: response.status, text: await response.text() }
    }
    return {
      lines,
      graphql: (query: string) =>
        request('/v1/reports/graphql', { method: 'POST', body: JSON.stringify({ query }) }),
      rest: (path: string) => request(path),
    }
  }

  const REPORTS = [
    '{ findingAging { results { severity openCount } } }',
    '{ vulnerabilityBreakdown { results { severity findings } } }',
    '{ metricData(filter: { metricId: "images.current" }) { results { value } } }',
    '{ policyEvaluationsByTag { results { tag status } } }',
    // Live values: four queries at once, every one of which fails.
    '{ metrics { results { id value } } }',
  ]

  /**
   * Each report, over GraphQL and REST, answers `code` without `secret` (any part of the
   * warehouse's own message), and the server log has the message whole.
   */
  const assertMasked = async (reports: Warehouse, secret: RegExp, code: string, status: number) => {
    // A field that fails: GraphQL answers 200 with the error beside the rest of `data`.
    const fields = appOn(reports, async () => 0)
    for (const query of REPORTS) {
      const answer = await fields.graphql(query)
      assert.equal(answer.status, 200, answer.text)
      assert.doesNotMatch(answer.text, secret, query)
      const body = JSON.parse(answer.text) as {
        errors?: { message: string; extensions?: { code?: string } }[]
      }
      assert.ok((body.errors?.length ?? 0) > 0, `${query}: ${answer.text}`)
      for (const error of body.errors ?? []) {
        assert.equal(error.extensions?.code, code, `${query}: ${answer.text}`)
        assert.match(error.message, /server log/, query)
      }
    }
    assert.match(JSON.stringify(fields.lines), secret, 'the server log has the whole message')
    // The lag unreadable too, and the REST routes: a problem with the code alone.
    const whole = appOn(reports)
    const answers = [
      ...(await Promise.all(REPORTS.map((query) => whole.graphql(query)))),
      await whole.rest('/v1/reports/metrics/images.current'),
      await whole.rest('/v1/reports/metrics'),
    ]
    for (const answer of answers) {
      assert.equal(answer.status, status, answer.text)
      assert.doesNotMatch(answer.text, secret)
      assert.equal((JSON.parse(answer.text) as { code: string }).code, code, answer.text)
    }
    assert.match(JSON.stringify(whole.lines), secret, 'the server log has the whole message')
  }

  it('answers an overloaded embedded warehouse as unavailable, its folder and ClickHouse’s words in the log only', async () => {
    // chDB's own TIMEOUT_EXCEEDED, which the adapter takes for "not now" (retriable).
    await warehouse.command('SET max_execution_time = 0.000001')
    try {
      await assertMasked(warehouse, new RegExp(`${folder}|TIMEOUT_EXCEEDED`), 'unavailable', 503)
    } finally {
      await warehouse.command('SET max_execution_time = 0')
    }
  })

  it('answers a ClickHouse server that is down as unavailable, its URL in the log only', async () => {
    const port = await closedPort()
    const server = createHttpWarehouse({ url: `http://127.0.0.1:${port}` })
    try {
      await assertMasked(server, new RegExp(`127\\.0\\.0\\.1:${port}|ECONNREFUSED`), 'unavailable', 503)
    } finally {
      await server.close()
    }
  })

  it('answers a closed warehouse without naming its folder', async () => {
    const closed = await createChdbWarehouse({ path: folder })
    await closed.close()
    await assertMasked(closed, new RegExp(folder), 'closed', 500)
  })
})
