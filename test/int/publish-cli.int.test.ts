import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createKafkaEventLog } from '../../src/adapters/kafka-event-log/index.ts'
import { type CliDeps, runGenerate, runPublish } from '../../src/cli/index.ts'
import { decodeEngineEvent, decodeLogEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import type { LogMessage } from '../../src/ports/index.ts'
import { eventually } from '../support/eventually.ts'
import { type HeraldProcess, startHeraldProcess } from '../support/herald-process.ts'
import { type KafkaMock, startKafkaMock } from '../support/kafka-mock.ts'
import { textSink } from '../support/text-sink.ts'

const ADMIN_TOKEN = `int-admin-${randomUUID()}`
const START = '2026-11-22T10:00:00Z'

/** The real fetch, with each ingest answer noted (status and accepted count). */
const observedFetch = () => {
  const answers: { status: number; accepted: number }[] = []
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const response = await globalThis.fetch(input, init)
    // The token's check before the sending (GET /v1/auth/whoami) is not an ingest answer.
    if (init?.method === 'GET') return response
    const body = (await response.clone().json()) as { accepted?: number }
    answers.push({ status: response.status, accepted: body.accepted ?? 0 })
    return response
  }) as typeof globalThis.fetch
  return { fetch, answers }
}

const cli = (fetch: typeof globalThis.fetch = globalThis.fetch) => {
  const stdout = textSink()
  const stderr = textSink()
  const deps: CliDeps = {
    stdin: (async function* () {})(),
    stdout,
    stderr,
    env: { HERALD_TOKEN: ADMIN_TOKEN },
    fetch,
  }
  return { deps, stdout, stderr }
}

const expectedIds = (seed: string, count: number, accounts: string[]) =>
  [...generateActivity({ seed, accounts, count, clock: () => Date.parse(START) })].map((e) => e.id)

describe('herald publish and herald generate against a running Herald', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-publish-'))
  let herald: HeraldProcess

  const countEvents = async (account: string): Promise<Set<string>> => {
    const ids = new Set<string>()
    let nextToken: string | null = null
    do {
      const response = await fetch(`${herald.url}/v1/reports/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          query: `query ($account: String, $nextToken: String) {
            events(filter: { account: $account }, limit: 1000, nextToken: $nextToken) {
              pageInfo { count nextToken } results { id }
            }
          }`,
          variables: { account, nextToken },
        }),
      })
      const body = (await response.json()) as {
        data?: { events: { pageInfo: { nextToken: string | null }; results: { id: string }[] } }
        errors?: unknown
      }
      assert.equal(response.status, 200, JSON.stringify(body))
      assert.ok(body.data, JSON.stringify(body.errors))
      for (const r of body.data.events.results) ids.add(r.id)
      nextToken = body.data.events.pageInfo.nextToken
    } while (nextToken !== null)
    return ids
  }
  const allIds = async () => {
    const ids = new Set<string>()
    for (const account of ['acme', 'globex', 'admin'])
      for (const id of await countEvents(account)) ids.add(id)
    return ids
  }

  before(async () => {
    herald = await startHeraldProcess({ HERALD_DATA_DIR: dataDir, HERALD_ADMIN_TOKEN: ADMIN_TOKEN })
  })
  after(async () => {
    await herald?.stop('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('generate --publish-url: every event accepted (202) and visible through GraphQL', async () => {
    const observed = observedFetch()
    const run = cli(observed.fetch)
    const argv = ['--seed', 'int', '--accounts', 'acme,globex', '--count', '1200', '--start', START]
    const status = await runGenerate([...argv, '--publish-url', herald.url, '--batch-size', '500'], run.deps)
    assert.equal(status, 0, run.stderr.text())
    assert.deepEqual(
      observed.answers.map((a) => a.status),
      [202, 202, 202],
    )
    assert.equal(
      observed.answers.reduce((sum, a) => sum + a.accepted, 0),
      1200,
    )
    const expected = expectedIds('int', 1200, ['acme', 'globex'])
    await eventually(async () => assert.deepEqual(await allIds(), new Set(expected)), { timeoutMs: 60_000 })
  })

  it('publish --file NDJSON: the same events the generator printed, accepted and visible', async () => {
    const printed = cli()
    assert.equal(
      await runGenerate(
        ['--seed', 'file', '--accounts', 'acme,globex', '--count', '300', '--start', START],
        printed.deps,
      ),
      0,
    )
    const file = join(dataDir, 'events.ndjson')
    writeFileSync(file, printed.stdout.text())
    const before = (await allIds()).size
    const observed = observedFetch()
    const run = cli(observed.fetch)
    assert.equal(await runPublish(['--url', herald.url, '--file', file], run.deps), 0, run.stderr.text())
    assert.deepEqual(observed.answers, [{ status: 202, accepted: 300 }])
    const ids = expectedIds('file', 300, ['acme', 'globex'])
    await eventually(
      async () => {
        const now = await allIds()
        assert.equal(now.size, before + 300)
        for (const id of ids) assert.ok(now.has(id), id)
      },
      { timeoutMs: 60_000 },
    )
  })

  it("publish sends nothing with a token that may not send every event's account, checked before the first batch", async () => {
    const issued = await fetch(`${herald.url}/v1/auth/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ account: 'acme', role: 'read-write' }),
    })
    assert.equal(issued.status, 201)
    const { token } = (await issued.json()) as { token: string }
    const printed = cli()
    const args = ['--seed', 'foreign', '--accounts', 'acme,globex', '--count', '40', '--start', START]
    assert.equal(await runGenerate(args, printed.deps), 0)
    const file = join(dataDir, 'foreign.ndjson')
    writeFileSync(file, printed.stdout.text())
    const observed = observedFetch()
    const run = cli(observed.fetch)
    const status = await runPublish(
      ['--url', herald.url, '--file', file, '--token', token, '--batch-size', '5'],
      run.deps,
    )
    assert.equal(status, 1, run.stderr.text())
    assert.deepEqual(observed.answers, [], 'no batch was sent')
    assert.match(
      run.stderr.text(),
      /the token is acme's read-write token, which may publish only acme's events; \d+ events are of other accounts: globex \(\d+\)\nnothing was sent/,
    )
    assert.ok(!run.stderr.text().includes(token))
  })

  it('publish refuses a file with an invalid event and sends nothing', async () => {
    const lines = readFileSync(join(dataDir, 'events.ndjson'), 'utf8').trim().split('\n').slice(0, 3)
    const fresh = [
      ...generateActivity({ seed: 'bad', accounts: ['acme'], count: 3, clock: () => Date.parse(START) }),
    ]
    const broken = { ...fresh[1], data: { nonsense: true } }
    const file = join(dataDir, 'bad.ndjson')
    writeFileSync(
      file,
      [JSON.stringify(fresh[0]), JSON.stringify(broken), JSON.stringify(fresh[2]), ...lines].join('\n'),
    )
    const observed = observedFetch()
    const run = cli(observed.fetch)
    assert.equal(await runPublish(['--url', herald.url, '--file', file], run.deps), 1)
    assert.equal(observed.answers.length, 0)
    assert.match(run.stderr.text(), /line 2: data\.\w+: is required/)
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    const now = await allIds()
    assert.ok(!now.has(fresh[0]?.id as string) && !now.has(fresh[2]?.id as string))
  })
})

const mockBuilt = existsSync(join(import.meta.dirname, '../../infra/kafka-mock/build/mock-cluster'))

describe('herald publish --kafka against the Kafka protocol peer', {
  skip: !mockBuilt && 'the Kafka mock is not built; run npm run test:setup',
}, () => {
  let kafka: KafkaMock

  before(async () => {
    kafka = await startKafkaMock({ brokers: 1 })
    await kafka.createTopic('engine.events', 3)
  })
  after(async () => {
    await kafka?.stop()
  })

  it('puts each event on the topic in structured mode, keyed by account', async () => {
    const events = [
      ...generateActivity({
        seed: 'kafka',
        accounts: ['acme', 'globex'],
        count: 250,
        clock: () => Date.parse(START),
      }),
    ]
    const run = cli()
    run.deps = {
      ...run.deps,
      stdin: (async function* () {
        yield JSON.stringify(events)
      })(),
    }
    const status = await runPublish(
      [
        '--kafka',
        kafka.bootstrapServers.join(','),
        '--topic',
        'engine.events',
        '--no-idempotent',
        '--batch-size',
        '100',
      ],
      run.deps,
    )
    assert.equal(status, 0, run.stderr.text())
    assert.match(run.stderr.text(), /250 events published in 3 batches/)

    const log = createKafkaEventLog({
      brokers: [...kafka.bootstrapServers],
      clientId: 'publish-int',
      idempotent: false,
      consumer: {
        sessionTimeoutMs: 4_000,
        heartbeatIntervalMs: 200,
        rebalanceTimeoutMs: 4_000,
        maxWaitTimeMs: 100,
      },
      logger: () => {},
    })
    const received: LogMessage[] = []
    const consumer = await log.consume(
      { groupId: `publish-int-${randomUUID()}`, topics: ['engine.events'] },
      async (batch) => {
        received.push(...batch.messages)
      },
    )
    try {
      await eventually(() => assert.equal(received.length, events.length), { timeoutMs: 60_000 })
    } finally {
      await consumer.stop()
      await log.close()
    }
    const byId = new Map(events.map((e) => [e.id, e]))
    for (const message of received) {
      assert.equal(message.headers['content-type'], 'application/cloudevents+json; charset=utf-8')
      const envelope = decodeLogEvent(message)
      assert.ok(envelope.ok)
      const decoded = decodeEngineEvent(envelope.value)
      assert.ok(decoded.ok)
      assert.equal(message.key, decoded.value.account)
      assert.deepEqual(decoded.value, byId.get(decoded.value.id))
    }
  })
})
