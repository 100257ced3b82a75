import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { eventually } from '../support/eventually.ts'
import { type HeraldProcess, startHeraldProcess } from '../support/herald-process.ts'

const ADMIN_TOKEN = `e2e-admin-${randomUUID()}`

describe('the data ingress switch (reports.enable_data_ingress) in a running Herald', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-ingress-e2e-'))
  let herald: HeraldProcess | undefined

  const start = async (ingress: boolean) => {
    herald = await startHeraldProcess({
      HERALD_DATA_DIR: dataDir,
      HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
      HERALD_REPORTS__ENABLE_DATA_INGRESS: String(ingress),
    })
    return herald
  }
  const call = async (path: string, body?: unknown, contentType = 'application/json') => {
    const response = await fetch(`${herald?.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': contentType },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: response.status, text: await response.text() }
  }
  const publish = async (id: string) => {
    const { status, text } = await call(
      '/v1/events',
      {
        specversion: '1.0',
        id,
        source: '/engine',
        type: 'user.image.analysis.completed',
        account: 'ingress',
        data: { digest: `sha256:${id}` },
      },
      'application/cloudevents+json',
    )
    assert.equal(status, 202, text)
  }
  /** The ids GraphQL lists for the account, and the projection lag every answer carries. */
  const reports = async () => {
    const { status, text } = await call('/v1/reports/graphql', {
      query: '{ events(filter: { account: "ingress" }) { results { id } } }',
    })
    assert.equal(status, 200, text)
    const body = JSON.parse(text) as {
      data: { events: { results: { id: string }[] } }
      extensions: { projectionLagSeconds: number }
    }
    return {
      ids: body.data.events.results.map((r) => r.id).sort(),
      lag: body.extensions.projectionLagSeconds,
    }
  }
  const projectorBacklog = async () => {
    const { text } = await call('/metrics')
    const match =
      /^herald_consumer_lag_messages\{group="herald-projector",topic="engine\.events"\} (\d+)$/m.exec(text)
    return match === null ? undefined : Number(match[1])
  }

  after(async () => {
    await herald?.stop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('projects nothing new while off, answers from what is there with a lag that grows, and catches up when on again', async () => {
    await start(true)
    await publish('before')
    await eventually(async () => assert.deepEqual((await reports()).ids, ['before']))
    await herald?.stop()

    await start(false)
    await publish('while-off')
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    const off = await reports()
    assert.deepEqual(off.ids, ['before'], 'nothing new is projected')
    assert.ok(off.lag >= 2, `the answers say they are behind: ${off.lag} s`)
    assert.equal(await projectorBacklog(), 1, 'the waiting event shows in /metrics')
    await herald?.stop()

    await start(true)
    await eventually(async () => assert.deepEqual((await reports()).ids, ['before', 'while-off']))
    await eventually(async () => assert.ok((await reports()).lag < 2))
  })
})

describe('a projector thread that cannot open what it needs', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-projector-fatal-e2e-'))
  after(() => rmSync(dataDir, { recursive: true, force: true }))

  it('stops Herald with exit code 1, saying why, for whatever runs it to start it again', {
    timeout: 60_000,
  }, async () => {
    // A directory where the thread's processed-id window should be: SQLite cannot open it.
    mkdirSync(join(dataDir, 'projected-ids.sqlite'))
    const env = { HERALD_DATA_DIR: dataDir, HERALD_ADMIN_TOKEN: ADMIN_TOKEN }
    let lines: Record<string, unknown>[] = []
    let code: number | null
    try {
      const herald = await startHeraldProcess(env)
      lines = herald.lines
      const [exitCode] = (await once(herald.child, 'exit')) as [number | null]
      code = exitCode
    } catch (error) {
      // It may stop before it said it started.
      const message = (error as Error).message
      assert.match(message, /herald exited with 1 before it started/)
      assert.match(message, /projector\.thread_stopped/)
      return
    }
    assert.equal(code, 1)
    const events = lines.map((line) => line.event)
    assert.ok(events.includes('projector.thread_open_failed'), JSON.stringify(events))
    assert.ok(events.includes('projector.thread_stopped'), JSON.stringify(events))
  })
})
