import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { oneLine, summarise } from './common.ts'

describe('summarise', () => {
  it('makes one printable line of at most 300 characters, never splitting a character', () => {
    assert.equal(summarise(' a\r\n\tb\u0000 '), 'a b')
    // 😀 is two UTF-16 units, and the cut falls between them: it is left out whole.
    const cut = summarise(`${'a'.repeat(298)}😀${'b'.repeat(10)}`)
    assert.equal(cut, `${'a'.repeat(298)}…`)
    assert.ok(cut.isWellFormed())
    assert.equal(summarise('a'.repeat(300)), 'a'.repeat(300))
  })
})

describe('oneLine', () => {
  it('drops the bidirectional overrides and isolates that would show a title in another order', () => {
    // "docker.io/acme/api:1<RLO>gpj.exe" reads as "…api:1exe.jpg" with the override.
    const title = oneLine(
      'Image analysis failed: docker.io/acme/api:1\u202Egpj.exe \u2066x\u2069 \u202A\u202B\u202C\u202D\u2067\u2068',
      256,
    )
    assert.equal(title, 'Image analysis failed: docker.io/acme/api:1gpj.exe x')
    // Letters of right-to-left scripts, and the marks that only hint a direction, are kept.
    assert.equal(oneLine('שלום\u200F עולם', 50), 'שלום\u200F עולם')
  })
})
