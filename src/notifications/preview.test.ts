import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { validDataOf } from '../../schemas/fixtures.ts'
import { isHeraldError } from '../errors/index.ts'
import type { CloudEvent } from '../events/index.ts'
import { MAX_PATTERN_VALUES } from '../matching/index.ts'
import type { Principal } from './model.ts'
import { compileSelectorBody, previewRequest, previewSelector, scanFilterOf } from './preview.ts'

const acme: Principal = { account: 'acme', role: 'read-only' }
const admin: Principal = { account: 'admin', role: 'admin' }
const anyEvent = { level: '*', type: '*', resource_type: '*' }

const event = (id: string, time: string | undefined, extra: Partial<CloudEvent> = {}): CloudEvent => {
  const type = extra.type ?? 'user.image.analysis.completed'
  return {
    specversion: '1.0',
    id,
    source: '/engine',
    type,
    account: 'acme',
    ...('data' in extra ? {} : { data: validDataOf(type) }),
    ...(time === undefined ? {} : { time }),
    ...extra,
  }
}

const issuesOf = (run: () => unknown) => {
  try {
    run()
  } catch (error) {
    if (isHeraldError(error))
      return {
        code: error.code,
        paths: ((error as { issues?: { path: string }[] }).issues ?? []).map((i) => i.path),
      }
    throw error
  }
  assert.fail('expected an error')
}

describe('previewRequest', () => {
  it('validates the selector as the selector CRUD does, naming paths', () => {
    assert.deepEqual(
      issuesOf(() =>
        previewRequest(
          { scope: 'account', event: anyEvent, pattern: { data: { n: [{ numeric: ['>'] }] } } },
          acme,
        ),
      ),
      { code: 'validation_failed', paths: ['pattern.data.n[0].numeric'] },
    )
    assert.deepEqual(
      issuesOf(() => previewRequest({ scope: 'account', event: { ...anyEvent, level: 'loud' } }, acme)),
      { code: 'validation_failed', paths: ['event.level'] },
    )
    // Held to the size limits selector creation applies, saying so under `pattern`.
    const values = Array.from({ length: MAX_PATTERN_VALUES + 1 }, (_, i) => `v${i}`)
    assert.deepEqual(
      issuesOf(() =>
        previewRequest({ scope: 'account', event: anyEvent, pattern: { data: { n: values } } }, acme),
      ),
      { code: 'validation_failed', paths: ['pattern'] },
    )
    // Said in the API's words, as the selector CRUD says it, not by io-ts type names.
    assert.throws(() => previewRequest({}, acme), {
      message:
        'invalid selector: scope is required: account or global; event is required: an object with level, type and resource_type',
    })
    assert.deepEqual(
      issuesOf(() => previewRequest({ scope: 'global', event: anyEvent }, acme)),
      {
        code: 'forbidden',
        paths: [],
      },
    )
    assert.equal(
      previewRequest({ scope: 'global', event: anyEvent }, admin).compiled.selector.scope,
      'global',
    )
  })

  it('names every bad range, limit and sample field at once', () => {
    assert.deepEqual(
      issuesOf(() =>
        previewRequest(
          {
            scope: 'account',
            event: anyEvent,
            since: 'yesterday',
            limit: 0,
            sample: [event('a', undefined), { id: 'b' }],
          },
          acme,
        ),
      ).paths.sort(),
      ['limit', 'sample[1].account', 'sample[1].source', 'sample[1].specversion', 'sample[1].type', 'since'],
    )
    // Samples meet the contract events arrive under: a type outside the catalog, or data its
    // schema refuses, is named.
    assert.deepEqual(
      issuesOf(() =>
        previewRequest(
          {
            scope: 'account',
            event: anyEvent,
            sample: [
              event('a', undefined, { type: 'com.example.unknown', data: {} }),
              event('b', undefined, { data: 7 }),
            ],
          },
          acme,
        ),
      ).paths.sort(),
      ['sample[0].type', 'sample[1].data'],
    )
    assert.deepEqual(
      issuesOf(() =>
        previewRequest(
          { scope: 'account', event: anyEvent, since: '2026-01-02T00:00:00Z', until: '2026-01-01T00:00:00Z' },
          acme,
        ),
      ).paths,
      ['until'],
    )
  })
})

describe('previewSelector', () => {
  const events = [
    event('old', '2026-01-01T10:00:00Z'),
    event('untimed', undefined),
    event('new', '2026-01-01T12:00:00Z'),
    event('other-account', '2026-01-01T13:00:00Z', { account: 'globex' }),
    event('feed', '2026-01-01T11:00:00Z', { type: 'system.feeds.sync.failed' }),
  ]

  it('returns matches newest first, untimed last, within the range and the limit', () => {
    const { pattern } = compileSelectorBody(
      { scope: 'account', event: { ...anyEvent, type: 'user.image.*' } },
      acme,
    )
    const ids = (found: CloudEvent[]) => found.map((e) => e.id)
    assert.deepEqual(ids(previewSelector(pattern, events, {}, 10)), ['new', 'old', 'untimed'])
    assert.deepEqual(ids(previewSelector(pattern, events, {}, 1)), ['new'])
    assert.deepEqual(
      ids(
        previewSelector(
          pattern,
          events,
          { since: Date.parse('2026-01-01T10:00:00Z'), until: Date.parse('2026-01-01T12:00:00Z') },
          10,
        ),
      ),
      ['old'],
    )
  })

  it('places an event at a leap second, and takes a leap second as a bound, as the instant after :59', () => {
    const { pattern } = compileSelectorBody({ scope: 'account', event: anyEvent }, acme)
    const leap = [event('leap', '2026-12-31T23:59:60Z')]
    const range = previewRequest(
      { scope: 'account', event: anyEvent, since: '2026-12-31T23:59:60Z', until: '2027-01-01T00:00:01Z' },
      acme,
    ).range
    assert.deepEqual(range, {
      since: Date.parse('2027-01-01T00:00:00Z'),
      until: Date.parse('2027-01-01T00:00:01Z'),
    })
    assert.deepEqual(
      previewSelector(pattern, leap, range, 10).map((e) => e.id),
      ['leap'],
    )
  })

  it('lets the admin’s global selector see every account', () => {
    const { pattern } = compileSelectorBody({ scope: 'global', event: anyEvent }, admin)
    assert.deepEqual(
      previewSelector(pattern, events, {}, 10).map((e) => e.id),
      ['other-account', 'new', 'feed', 'old', 'untimed'],
    )
  })
})

describe('scanFilterOf', () => {
  it('pushes down only what every match must meet', () => {
    const filter = (event: Record<string, string>, principal = acme, scope = 'account') =>
      scanFilterOf(compileSelectorBody({ scope, event: { ...anyEvent, ...event } }, principal))
    assert.deepEqual(filter({ type: 'user.image.*', level: 'error' }), {
      account: 'acme',
      level: 'error',
      type: { kind: 'prefix', value: 'user.image.' },
    })
    assert.deepEqual(filter({ type: '*.failed' }), {
      account: 'acme',
      type: { kind: 'suffix', value: '.failed' },
    })
    assert.deepEqual(filter({ type: 'system.feeds.sync.failed' }), {
      account: 'acme',
      type: { kind: 'exact', value: 'system.feeds.sync.failed' },
    })
    assert.deepEqual(filter({ type: 'user.*.completed' }), { account: 'acme' })
    assert.deepEqual(filter({}, admin, 'global'), {})
  })
})
