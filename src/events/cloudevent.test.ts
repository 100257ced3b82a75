import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ACCOUNT_NAME_RULE } from '../access/index.ts'
import { decodeEngineEvent } from './catalog/index.ts'
import { decodeCloudEvent, decodeCloudEventBatch, isCloudEvent, MAX_BATCH_ISSUES } from './cloudevent.ts'

const valid = {
  specversion: '1.0',
  id: 'evt-1',
  source: '/engine/analyzer',
  type: 'user.image.analysis.completed',
  account: 'acme',
  time: '2026-11-22T10:00:00.123Z',
  level: 'info',
  data: { digest: 'sha256:abc' },
}

describe('decodeCloudEvent', () => {
  it('accepts a valid structured event with Herald extensions', () => {
    const decoded = decodeCloudEvent(valid)
    assert.ok(decoded.ok)
    assert.equal(decoded.value.account, 'acme')
  })

  it('names every bad field at once', () => {
    const decoded = decodeCloudEvent({
      ...valid,
      specversion: '0.3',
      id: '',
      level: 'fatal',
      time: 'yesterday',
      account: undefined,
    })
    assert.ok(!decoded.ok)
    assert.deepEqual(decoded.issues.map((i) => i.path).sort(), [
      'account',
      'id',
      'level',
      'specversion',
      'time',
    ])
    const level = decoded.issues.find((i) => i.path === 'level')
    assert.match(level?.message ?? '', /info, warning, error/)
  })

  it('keeps extension attributes CloudEvents allows and names each one it does not', () => {
    const allowed = decodeCloudEvent({
      ...valid,
      traceparent: '00-0af7-01',
      sampled: true,
      hops: 3,
      gone: null,
    })
    assert.ok(allowed.ok)
    assert.equal((allowed.value as Record<string, unknown>).hops, 3)
    const refused = decodeCloudEvent(
      { ...valid, traceId: 'x', my_ext: 'y', meta: { a: 1 }, ratio: 0.5 },
      '[2]',
    )
    assert.ok(!refused.ok)
    assert.deepEqual(
      refused.issues.map((i) => i.path),
      ['[2].traceId', '[2].my_ext', '[2].meta', '[2].ratio'],
    )
    assert.match(refused.issues[0]?.message ?? '', /lower-case letters a-z and digits 0-9/)
    assert.match(refused.issues[2]?.message ?? '', /a string, a boolean or an integer of 32 bits/)
  })

  it('takes an account name, by the fast path and by the full decode alike', () => {
    for (const account of ['acme', 'acme.prod-1_x', '0', `a${'b'.repeat(127)}`, 'A-_.']) {
      const event = { ...valid, account }
      assert.ok(isCloudEvent(event), account)
      const decoded = decodeCloudEvent(event)
      assert.ok(decoded.ok, account)
      assert.equal(decoded.value.account, account)
      assert.ok(decodeEngineEvent(event).ok, account)
    }
  })

  it('refuses any other account, naming the field and what an account name is', () => {
    const refused = {
      NUL: 'acme\u0000',
      'a NUL alone': '\u0000',
      '129 characters': 'a'.repeat(129),
      '5,000 characters': 'a'.repeat(5_000),
      Unicode: 'acmé',
      'an emoji': 'acme😀',
      'a leading dot': '.acme',
      'a leading dash': '-acme',
      'a leading underscore': '_acme',
      empty: '',
      'a space': 'acme corp',
      'a trailing newline': 'acme\n',
      'a slash': 'acme/prod',
      'a number': 7,
      null: null,
    }
    for (const [because, account] of Object.entries(refused)) {
      const event = { ...valid, account }
      assert.equal(isCloudEvent(event), false, because)
      assert.deepEqual(
        decodeCloudEvent(event),
        {
          ok: false,
          issues: [{ path: 'account', message: ACCOUNT_NAME_RULE }],
        },
        because,
      )
      const engine = decodeEngineEvent(event, '[3]')
      assert.ok(!engine.ok, because)
      assert.deepEqual(engine.issues, [{ path: '[3].account', message: ACCOUNT_NAME_RULE }], because)
    }
    assert.match(ACCOUNT_NAME_RULE, /1-128 ASCII letters, digits, dots, dashes or underscores/)
  })

  it('refuses control characters and lone surrogates in every string attribute, naming it', () => {
    // CloudEvents 1.0: a String holds neither. A lone surrogate is no Unicode text: hashed or
    // stored as UTF-8 it becomes U+FFFD, so "s\ud800" and "s\udc00" would be one event.
    const attributes: Record<string, string> = {
      id: 'evt-1',
      source: '/engine',
      type: 'user.image.analysis.completed',
      subject: 'nginx',
      datacontenttype: 'application/json',
      dataschema: 'urn:x',
      resourcetype: 'image_tag',
      subtype: 'x',
      traceparent: '00-01',
    }
    const characters = {
      NUL: '\u0000',
      'a newline': '\n',
      'a tab': '\t',
      'U+001F': '\u001f',
      DEL: '\u007f',
      'U+0085 (a C1 control)': '\u0085',
      'U+009F': '\u009f',
      'a lone high surrogate': '\ud800',
      'a lone low surrogate': '\udc00',
      'a pair reversed': '\udc00\ud800',
    }
    for (const [name, value] of Object.entries(attributes)) {
      for (const [because, character] of Object.entries(characters)) {
        const event = { ...valid, [name]: `${value}${character}` }
        assert.equal(isCloudEvent(event), false, `${name}: ${because}`)
        const decoded = decodeCloudEvent(event, '[1]')
        assert.ok(!decoded.ok, `${name}: ${because}`)
        assert.deepEqual(
          decoded.issues.map((i) => i.path),
          [`[1].${name}`],
          `${name}: ${because}`,
        )
        assert.match(decoded.issues[0]?.message ?? '', /control character|surrogate/, `${name}: ${because}`)
      }
    }
    // A pair is one character, as is any other text.
    const text = { ...valid, id: 'évt-😀', subject: 'docker.io/acme/api:1.2 — "prod" 😀' }
    assert.ok(isCloudEvent(text))
    assert.ok(decodeCloudEvent(text).ok)
  })

  it('refuses an empty subject, resourcetype or subtype, naming it', () => {
    // CloudEvents requires a subject to be non-empty; Herald stores an empty one as none, so
    // a preview of the stored event would judge another event than the router did, and an
    // empty resourcetype or subtype would keep the catalog's default out.
    for (const name of ['subject', 'resourcetype', 'subtype']) {
      const event = { ...valid, [name]: '' }
      assert.equal(isCloudEvent(event), false, name)
      const decoded = decodeCloudEvent(event)
      assert.ok(!decoded.ok, name)
      assert.deepEqual(decoded.issues, [
        { path: name, message: 'must not be empty: leave the attribute out when there is none' },
      ])
    }
  })

  it('takes a source that is a URI-reference and a dataschema that is a URI, naming either that is not', () => {
    for (const source of ['/engine', 'urn:anchore:engine', 'anchore-engine', '/a%2Fb?x=1#y', '/ünïcode'])
      assert.ok(decodeCloudEvent({ ...valid, source }).ok, source)
    for (const dataschema of ['https://example.com/s.json', 'urn:herald:schema:v1:event:x'])
      assert.ok(decodeCloudEvent({ ...valid, dataschema }).ok, dataschema)
    for (const source of ['a b c', '/engine/<x>', '/100%', 'a\\b', '/a{b}', '/a|b', '/a^b', '/a`b', '/a"b']) {
      const event = { ...valid, source }
      assert.equal(isCloudEvent(event), false, source)
      const decoded = decodeCloudEvent(event)
      assert.ok(!decoded.ok, source)
      assert.deepEqual(
        decoded.issues.map((i) => i.path),
        ['source'],
      )
      assert.match(decoded.issues[0]?.message ?? '', /must be a URI-reference/, source)
    }
    for (const dataschema of ['', 'not a uri', '/schemas/x.json', 'https://example.com/a b']) {
      const event = { ...valid, dataschema }
      assert.equal(isCloudEvent(event), false, dataschema)
      const decoded = decodeCloudEvent(event)
      assert.ok(!decoded.ok, dataschema)
      assert.deepEqual(
        decoded.issues.map((i) => i.path),
        ['dataschema'],
      )
      assert.match(decoded.issues[0]?.message ?? '', /must be an absolute URI/, dataschema)
    }
  })

  it('rejects non-objects', () => {
    for (const input of [null, 42, 'x', [valid]]) {
      const decoded = decodeCloudEvent(input)
      assert.ok(!decoded.ok)
      assert.equal(decoded.issues[0]?.path, '(root)')
    }
  })
})

describe('decodeCloudEventBatch', () => {
  it('prefixes issues with the index of the bad event', () => {
    const decoded = decodeCloudEventBatch([valid, { ...valid, id: 'evt-2', type: 7 }])
    assert.ok(!decoded.ok)
    assert.deepEqual(decoded.issues, [{ path: '[1].type', message: 'must be a non-empty string' }])
  })

  it('names the account of the event that has a bad one', () => {
    const decoded = decodeCloudEventBatch([valid, { ...valid, id: 'evt-2', account: 'acme\u0000' }])
    assert.ok(!decoded.ok)
    assert.deepEqual(decoded.issues, [{ path: '[1].account', message: ACCOUNT_NAME_RULE }])
  })

  it('tells ids apart that differ only in a lone surrogate by refusing both', () => {
    const decoded = decodeCloudEventBatch([
      { ...valid, id: 's\ud800' },
      { ...valid, id: 's\udc00' },
    ])
    assert.ok(!decoded.ok)
    assert.deepEqual(
      decoded.issues.map((i) => i.path),
      ['[0].id', '[1].id'],
    )
  })

  it('rejects a repeated id within one batch', () => {
    const decoded = decodeCloudEventBatch([valid, valid])
    assert.ok(!decoded.ok)
    assert.equal(decoded.issues[0]?.path, '[1].id')
  })

  it('takes the same source and id of two accounts for two events, as Herald does everywhere else', () => {
    const decoded = decodeCloudEventBatch([valid, { ...valid, account: 'globex' }])
    assert.ok(decoded.ok, JSON.stringify(decoded))
  })

  it('stops judging at MAX_BATCH_ISSUES, naming the first event it did not judge', () => {
    // Empty objects: five issues each (specversion, id, source, type, account).
    const decoded = decodeCloudEventBatch(Array.from({ length: 100_000 }, () => ({})))
    assert.ok(!decoded.ok)
    assert.equal(decoded.issues.length, MAX_BATCH_ISSUES)
    assert.deepEqual(
      decoded.issues.slice(0, 2).map((i) => i.path),
      ['[0].specversion', '[0].id'],
    )
    assert.equal(decoded.issues[MAX_BATCH_ISSUES - 2]?.path.startsWith('[19].'), true)
    assert.deepEqual(decoded.issues[MAX_BATCH_ISSUES - 1], {
      path: '[20]',
      message: `not judged, nor the 99979 events after it: the batch has ${MAX_BATCH_ISSUES - 1} issues already`,
    })
    // Fewer bad events than that: all of them are named, as before.
    const few = decodeCloudEventBatch([valid, {}, { ...valid, id: 'evt-2' }, {}])
    assert.ok(!few.ok)
    assert.deepEqual([...new Set(few.issues.map((i) => i.path.slice(0, 3)))], ['[1]', '[3]'])
  })

  it('accepts a valid batch', () => {
    const decoded = decodeCloudEventBatch([valid, { ...valid, id: 'evt-2' }])
    assert.ok(decoded.ok)
    assert.equal(decoded.value.length, 2)
  })
})
