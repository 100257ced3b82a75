import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { escapeWildcardLiteral, parseWildcard, wildcardMatches } from './wildcard.ts'

const compile = (source: string) => {
  const parsed = parseWildcard(source)
  assert.ok(parsed.ok, source)
  return parsed.value
}

describe('parseWildcard', () => {
  const rows: [source: string, segments: string[]][] = [
    ['abc', ['abc']],
    ['*', ['', '']],
    ['a*', ['a', '']],
    ['*a', ['', 'a']],
    ['a*b*c', ['a', 'b', 'c']],
    ['a\\*b', ['a*b']],
    ['a\\\\*b', ['a\\', 'b']],
    ['\\**', ['*', '']],
    ['*\\*', ['', '*']],
    ['', ['']],
  ]
  for (const [source, segments] of rows)
    it(`${JSON.stringify(source)} → ${JSON.stringify(segments)}`, () => {
      assert.deepEqual(compile(source).segments, segments)
    })

  for (const bad of ['**', 'a**', '*\\', 'a\\b', '\\', '***'])
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.equal(parseWildcard(bad).ok, false)
    })
})

describe('wildcardMatches', () => {
  it('stays linear on inputs that make backtracking matchers exponential', () => {
    const wildcard = compile(`${'*a'.repeat(30)}*b`)
    const started = performance.now()
    assert.equal(wildcardMatches(wildcard, 'a'.repeat(50_000)), false)
    assert.ok(performance.now() - started < 500)
  })

  it('round-trips escaped literals', () => {
    for (const literal of ['plain', 'a*b', 'back\\slash', '\\*', '**', ''])
      assert.ok(wildcardMatches(compile(escapeWildcardLiteral(literal)), literal), literal)
    assert.equal(wildcardMatches(compile(escapeWildcardLiteral('a*b')), 'axb'), false)
  })
})
