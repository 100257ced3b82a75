import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import type { EngineEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import { createAdminTokenAuthenticator, createHttpApp } from '../../src/http/index.ts'
import { createIngressDecoder, toKafkaMessage } from '../../src/ingress/index.ts'
import { createMetrics, silentLogger } from '../../src/observability/index.ts'
import type { EventLog } from '../../src/ports/event-log.ts'
import { unusedWarehouse } from '../support/unused-warehouse.ts'

const TOKEN = 'test-admin-token-0123456789'
type Issue = { path: string; message: string }

// The HTTP binding percent-encodes what a header cannot carry as it is (and `%` itself).
const headerValue = (value: string): string =>
  /^[\x20-\x7e]*$/.test(value) && !value.includes('%') ? value : encodeURIComponent(value)

/**
 * HTTP ingest and the Kafka binding enforce one contract: the same candidate event is
 * accepted by both or refused by both, with the same issues, in structured and binary mode.
 */
describe('one contract for HTTP ingest and Kafka', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-ingress-http-'))
  let log: EventLog
  let app: ReturnType<typeof createHttpApp>
  const decoder = createIngressDecoder()
  const events: EngineEvent[] = [
    ...generateActivity({ seed: 5, accounts: 2, count: 200, clock: () => Date.UTC(2026, 10, 22) }),
  ]

  before(async () => {
    log = createSqliteEventLog({ path: join(dir, 'log.sqlite') })
    await log.createTopics([{ topic: 'engine.events', partitions: 1 }])
    const warehouse = unusedWarehouse
    app = createHttpApp({
      log,
      eventsTopic: 'engine.events',
      warehouse,
      readiness: {},
      authenticate: createAdminTokenAuthenticator(TOKEN),
      requireAuth: true,
      metrics: createMetrics(),
      logger: silentLogger,
      graphiql: false,
      maxIngestBytes: 1_000_000,
    })
  })
  after(async () => {
    await log.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const overHttp = async (candidate: Record<string, unknown>, mode: 'structured' | 'binary') => {
    const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }
    let body: string
    if (mode === 'structured') {
      headers['content-type'] = 'application/cloudevents+json'
      body = JSON.stringify(candidate)
    } else {
      for (const [name, value] of Object.entries(candidate)) {
        if (name === 'data' || value === undefined) continue
        headers[`ce-${name}`] = headerValue(typeof value === 'string' ? value : JSON.stringify(value))
      }
      headers['content-type'] = 'application/json'
      body = candidate.data === undefined ? '' : JSON.stringify(candidate.data)
    }
    const response = await app.request('/v1/events', { method: 'POST', headers, body })
    if (response.status === 202) return { ok: true as const }
    // Without ce-specversion a request is not binary mode at all: refused before any contract.
    if (response.status === 415 && mode === 'binary' && candidate.specversion === undefined)
      return { ok: false as const, issues: undefined }
    assert.equal(response.status, 400, await response.clone().text())
    const problem = (await response.json()) as { errors: Issue[] }
    return { ok: false as const, issues: problem.errors }
  }

  const overKafka = async (candidate: Record<string, unknown>, mode: 'structured' | 'binary') => {
    const message = toKafkaMessage(candidate, { mode })
    const [result] = await decoder.decodeBatch([
      {
        topic: 'engine.events',
        partition: 0,
        offset: 0,
        key: 'k',
        value: message.value,
        headers: { ...message.headers, ...(mode === 'binary' ? { 'content-type': 'application/json' } : {}) },
        timestamp: 0,
      },
    ])
    assert.ok(result)
    return result.ok ? { ok: true as const } : { ok: false as const, issues: [...result.failure.issues] }
  }

  const sorted = (issues: readonly Issue[]) => [...issues].map((i) => `${i.path}: ${i.message}`).sort()
  // Over HTTP in binary mode an issue names where the request carries it: a `ce-` header, or
  // the body for `data`.
  const asHttpBinary = (issue: Issue): Issue => ({
    ...issue,
    path: /^data($|[.[])/.test(issue.path)
      ? issue.path.replace(/^data/, '(body)')
      : issue.path.replace(/^[a-z0-9]+/, (attribute) => `ce-${attribute}`),
  })

  const mutation = fc.oneof(
    fc.constant((e: Record<string, unknown>) => e),
    fc
      .constantFrom('id', 'source', 'type', 'account', 'specversion', 'data')
      .map((key) => (e: Record<string, unknown>) => {
        const { [key]: _, ...rest } = e
        return rest
      }),
    fc
      .constantFrom('com.example.unknown', 'user.image.analysis.failed', '')
      .map((type) => (e: Record<string, unknown>) => ({
        ...e,
        type,
      })),
    fc
      .constantFrom('noon', '2026-13-01T00:00:00Z')
      .map((time) => (e: Record<string, unknown>) => ({ ...e, time })),
    fc.constantFrom('loud', 'info').map((level) => (e: Record<string, unknown>) => ({ ...e, level })),
    fc
      .constantFrom('acme\u0000', 'a'.repeat(129), 'acmé', '.acme', '-acme', '', 'acme.prod-1_x')
      .map((account) => (e: Record<string, unknown>) => ({ ...e, account })),
    fc.jsonValue({ maxDepth: 2 }).map((data) => (e: Record<string, unknown>) => ({ ...e, data })),
  )

  it('accepts and refuses the same events with the same issues', async () => {
    let refused = 0
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...events),
        mutation,
        fc.constantFrom('structured', 'binary') as fc.Arbitrary<'structured' | 'binary'>,
        async (event, mutate, mode) => {
          // Every event gets a fresh id: HTTP accepts a batch at most once per id only per request.
          const candidate = mutate({
            ...JSON.parse(JSON.stringify(event)),
            id: `${event.id}-${Math.random()}`,
          })
          const [http, kafka] = [await overHttp(candidate, mode), await overKafka(candidate, mode)]
          assert.equal(http.ok, kafka.ok, `${mode}: ${JSON.stringify(candidate).slice(0, 300)}`)
          if (!http.ok && !kafka.ok && http.issues !== undefined) {
            refused++
            assert.deepEqual(
              sorted(http.issues),
              sorted(mode === 'binary' ? kafka.issues.map(asHttpBinary) : kafka.issues),
            )
          }
        },
      ),
      { numRuns: 300 },
    )
    assert.ok(refused > 50, `refusals exercised (${refused})`)
  })
})
