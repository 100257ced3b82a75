import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isValidationError } from '../../errors/index.ts'
import type { EventData } from '../../ports/index.ts'
import { validateAppend } from './validate.ts'

const issuesOf = (events: unknown): readonly { path: string; message: string }[] => {
  try {
    validateAppend('stream', events, {})
  } catch (error) {
    assert.ok(isValidationError(error))
    return error.issues
  }
  return []
}

describe('validateAppend', () => {
  it('accepts JSON objects, including ones without a prototype', () => {
    const data = Object.assign(Object.create(null) as object, { a: [1, { b: null }], c: 'x', d: true })
    assert.deepEqual(issuesOf([{ id: 'e1', type: 't', data, metadata: { m: 1 } } satisfies EventData]), [])
  })

  it('names the path of every value JSON would lose', () => {
    const paths = issuesOf([
      {
        id: 'e1',
        type: 't',
        data: { nested: { list: [1, Number.POSITIVE_INFINITY, new Map()] }, gone: undefined },
      },
    ]).map((i) => i.path)
    assert.deepEqual(paths, [
      'events[0].data.nested.list[1]',
      'events[0].data.nested.list[2]',
      'events[0].data.gone',
    ])
  })

  it('does not mistake an object shared by two keys for a cycle', () => {
    const shared = { x: 1 }
    assert.deepEqual(issuesOf([{ id: 'e1', type: 't', data: { a: shared, b: shared } }]), [])
  })

  it('names a cycle and a sparse array hole', () => {
    const cyclic: Record<string, unknown> = { ok: 1 }
    cyclic.self = cyclic
    const holes = [1]
    holes[2] = 3
    assert.deepEqual(issuesOf([{ id: 'e1', type: 't', data: { cyclic, holes } }]), [
      { path: 'events[0].data.cyclic.self', message: 'circular reference' },
      { path: 'events[0].data.holes[1]', message: 'sparse array hole' },
    ])
  })

  it('accepts valid data nested deeper than its quick check goes', () => {
    let deep: unknown = { leaf: 'x' }
    for (let i = 0; i < 100; i++) deep = { next: [deep] }
    assert.deepEqual(issuesOf([{ id: 'e1', type: 't', data: { deep } }]), [])
  })

  it('refuses names, ids and types that are not well-formed Unicode, and takes surrogate pairs', () => {
    const issues = issuesOf([
      { id: 'x\uD800', type: 't', data: {} },
      { id: 'x\uDC00', type: '\uDC00t', data: {} },
      { id: 'pair \uD83D\uDE00', type: 'pair \uD83D\uDE00', data: {} },
    ])
    assert.deepEqual(
      issues.map((i) => i.path),
      ['events[0].id', 'events[1].id', 'events[1].type'],
    )
    assert.match(issues[0]?.message ?? '', /lone surrogate/)
    assert.throws(
      () => validateAppend('s-\uD800', [{ id: 'e', type: 't', data: {} }], {}),
      /stream holds a lone surrogate/,
    )
  })

  it('refuses system ($) stream names and event types, and the reserved metadata key', () => {
    assert.deepEqual(
      issuesOf([
        { id: 'e1', type: '$metadata', data: {} },
        { id: 'e2', type: 't', data: {}, metadata: { '$herald.id': 'e9', $other: 1 } },
      ]).map((i) => i.path),
      ['events[0].type', 'events[1].metadata.$herald.id'],
    )
    assert.throws(
      () => validateAppend('$all', [{ id: 'e', type: 't', data: {} }], {}),
      /stream must not start with \$/,
    )
  })

  it('caps the number of issues it reports', () => {
    const events = Array.from({ length: 50 }, () => ({ id: '', type: '', data: null }))
    assert.equal(issuesOf(events).length, 20)
  })
})
