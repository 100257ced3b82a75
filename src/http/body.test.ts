import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Hono } from 'hono'
import { readJson, readJsonObject } from './body.ts'
import { toProblem } from './problem.ts'

const app = new Hono()
app.post('/json', async (c) => c.json({ body: await readJson(c) }))
app.post('/object', async (c) => c.json({ body: await readJsonObject(c) }))
app.post('/filter', async (c) => c.json({ body: await readJsonObject(c, { empty: {} }) }))
app.post('/known', async (c) => c.json({ body: await readJsonObject(c, { fields: ['status', 'limit'] }) }))
app.onError((error, c) => {
  const body = toProblem(error)
  return c.json(body, body.status as 400)
})

const post = async (path: string, body: string, type: string | null = 'application/json') => {
  // A string body would be sent as text/plain; bytes are sent with no type (null).
  const response = await app.request(path, {
    method: 'POST',
    ...(type === null
      ? { body: new TextEncoder().encode(body) }
      : { body, headers: { 'content-type': type } }),
  })
  return { status: response.status, json: (await response.json()) as Record<string, unknown> }
}

describe('request bodies', () => {
  it('reads any JSON document', async () => {
    assert.deepEqual(await post('/json', '[1, "two"]'), { status: 200, json: { body: [1, 'two'] } })
    assert.deepEqual(await post('/json', 'null'), { status: 200, json: { body: null } })
  })

  it('answers a body that is not JSON with a 400 naming (body)', async () => {
    const { status, json } = await post('/json', '{"a":')
    assert.equal(status, 400)
    assert.equal(json.code, 'validation_failed')
    assert.equal(json.detail, 'the request body must be JSON')
    assert.deepEqual(json.errors, [{ path: '(body)', message: 'must be a JSON document' }])
  })

  it('refuses an empty body unless the route gives it a meaning', async () => {
    const refused = await post('/object', ' \n')
    assert.equal(refused.status, 400)
    assert.deepEqual(refused.json.errors, [{ path: '(body)', message: 'is empty' }])
    // A body the route requires must say it is JSON even when it is missing.
    assert.equal((await post('/object', '', null)).status, 415)
    assert.deepEqual(await post('/filter', ''), { status: 200, json: { body: {} } })
    assert.deepEqual(await post('/filter', '', null), { status: 200, json: { body: {} } })
  })

  it('wants an object where the route reads one', async () => {
    for (const body of ['[]', '"text"', '3', 'null']) {
      const { status, json } = await post('/object', body)
      assert.equal(status, 400, body)
      assert.equal(json.detail, 'the request body must be a JSON object')
      assert.deepEqual(json.errors, [{ path: '(body)', message: 'must be an object' }])
    }
    // An empty body that stands for something is still checked once it is not empty.
    assert.equal((await post('/filter', '[]')).status, 400)
    assert.deepEqual(await post('/object', '{"a":1}'), { status: 200, json: { body: { a: 1 } } })
  })

  it('refuses the names a route does not know, naming each', async () => {
    const { status, json } = await post('/known', '{"status":"sent","stauts":"x","lmit":1}')
    assert.equal(status, 400)
    assert.deepEqual(json.errors, [
      { path: 'stauts', message: 'is not a known field; expected status, limit' },
      { path: 'lmit', message: 'is not a known field; expected status, limit' },
    ])
    assert.deepEqual(await post('/known', '{"limit":1}'), { status: 200, json: { body: { limit: 1 } } })
  })

  it('reads a body declared as JSON, whatever its parameters or +json suffix', async () => {
    for (const type of [
      'application/json; charset=utf-8',
      'Application/JSON',
      'application/merge-patch+json',
      'text/json',
    ])
      assert.deepEqual(
        await post('/object', '{"a":1}', type),
        { status: 200, json: { body: { a: 1 } } },
        type,
      )
  })

  it('answers a body of another media type, or of none, with a 415 naming it and what is accepted', async () => {
    for (const [type, named] of [
      ['text/plain;charset=UTF-8', '"text/plain"'],
      ['application/x-www-form-urlencoded', '"application/x-www-form-urlencoded"'],
      [null, 'no content type'],
    ] as const) {
      const { status, json } = await post('/object', '{"a":1}', type)
      assert.equal(status, 415, String(type))
      assert.equal(json.code, 'unsupported_media_type')
      assert.equal(
        json.detail,
        `send application/json, text/json, or another type ending in +json; got ${named}`,
      )
    }
  })

  it('takes an empty body that stands for something whatever its media type says', async () => {
    assert.deepEqual(await post('/filter', '', null), { status: 200, json: { body: {} } })
    assert.deepEqual(await post('/filter', '', 'text/plain'), { status: 200, json: { body: {} } })
  })

  it('refuses a body that is not UTF-8 with a 400 naming (body), rather than reading its bad bytes as U+FFFD', async () => {
    // "p\xe4ss-word" in Latin-1: the byte 0xe4 starts no UTF-8 sequence here.
    const latin1 = Buffer.concat([
      Buffer.from('{"password":"p'),
      Buffer.from([0xe4]),
      Buffer.from('ss-word"}'),
    ])
    for (const path of ['/json', '/object', '/filter']) {
      const response = await app.request(path, {
        method: 'POST',
        body: latin1,
        headers: { 'content-type': 'application/json; charset=utf-8' },
      })
      const json = (await response.json()) as Record<string, unknown>
      assert.equal(response.status, 400, path)
      assert.deepEqual(json.errors, [{ path: '(body)', message: 'is not valid UTF-8' }], path)
    }
    // The same text in UTF-8 is read as sent.
    assert.deepEqual(await post('/json', '{"password":"p\u00e4ss-word"}'), {
      status: 200,
      json: { body: { password: 'p\u00e4ss-word' } },
    })
  })

  it('refuses a string escaping half a surrogate pair, naming where it is, and reads a whole pair', async () => {
    const { status, json } = await post(
      '/json',
      '{"password":"p\\ud800x","to":["a","\\udc00"],"nested":{"ok":{"deep":"\\ud83d"},"\\ud83dname":{"deep":"\\ud83d"}}}',
    )
    assert.equal(status, 400)
    assert.equal(json.code, 'validation_failed')
    // A name holding one is named by the object holding it: the name itself is not text to show.
    assert.deepEqual((json.errors as { path: string }[]).map((e) => e.path).sort(), [
      'nested',
      'nested.ok.deep',
      'password',
      'to[1]',
    ])
    assert.match(String((json.errors as { message: string }[])[0]?.message), /lone surrogate/)
    const root = await post('/json', '"\\udfff"')
    assert.deepEqual(
      (root.json.errors as { path: string }[]).map((e) => e.path),
      ['(body)'],
    )
    // An escaped pair is one code point, and stays one.
    assert.deepEqual(await post('/json', '{"emoji":"\\ud83d\\ude00"}'), {
      status: 200,
      json: { body: { emoji: '\u{1f600}' } },
    })
  })
})
