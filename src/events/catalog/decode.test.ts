import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeEngineEvent, isUnknownTypeIssue } from './decode.ts'

const DIGEST = 'sha256:9b2a5c0e3b6f0a1d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c'

const event = (type: string, data: unknown, extra: Record<string, unknown> = {}) => ({
  specversion: '1.0',
  id: 'evt-1',
  source: '/engine/catalog',
  type,
  account: 'acme',
  time: '2026-11-22T10:00:00Z',
  data,
  ...extra,
})

const posture = {
  action: 'scan-completed',
  summary: 'done',
  scope: 'acme-production',
  profile: 'CIS',
  start_time: '2026-11-22T09:00:00Z',
}

describe('decodeEngineEvent', () => {
  it('accepts a catalog event and types its data by type', () => {
    const decoded = decodeEngineEvent(
      event('user.image.analysis.failed', { full_tag: 'docker.io/library/nginx:latest', error: 'timeout' }),
    )
    assert.ok(decoded.ok)
    assert.equal(decoded.value.type, 'user.image.analysis.failed')
    if (decoded.value.type === 'user.image.analysis.failed') assert.equal(decoded.value.data.error, 'timeout')
  })

  it('fills level and resource type from the catalog when the producer left them out', () => {
    const decoded = decodeEngineEvent(event('system.feeds.sync.failed', { feeds: ['nvd'], error: 'x' }))
    assert.ok(decoded.ok)
    assert.equal(decoded.value.level, 'error')
    assert.equal(decoded.value.resourcetype, 'feeds')
  })

  it("keeps the producer's level and resource type", () => {
    const input = event(
      'user.image.analysis.completed',
      { digest: DIGEST },
      { level: 'warning', resourcetype: 'image' },
    )
    const decoded = decodeEngineEvent(input)
    assert.ok(decoded.ok)
    assert.equal(decoded.value, input, 'a complete event is returned as it came, without a copy')
    assert.equal(decoded.value.level, 'warning')
  })

  it('takes the default level of a subtype', () => {
    const decoded = decodeEngineEvent(
      event('com.ibm.cloud.compliance.posture', posture, {
        subtype: 'posture-scan-failure-threshold-limit-exceeds',
      }),
    )
    assert.ok(decoded.ok)
    assert.equal(decoded.value.level, 'warning')
    assert.equal(decoded.value.resourcetype, 'posture_scan')
  })

  it('requires a known subtype where the type has subtypes', () => {
    const missing = decodeEngineEvent(event('com.ibm.cloud.compliance.posture', posture))
    assert.ok(!missing.ok)
    assert.deepEqual(
      missing.issues.map((i) => i.path),
      ['subtype'],
    )
    const wrong = decodeEngineEvent(
      event('com.ibm.cloud.compliance.posture', posture, { subtype: 'scan-done' }),
    )
    assert.ok(!wrong.ok)
    assert.match(wrong.issues[0]?.message ?? '', /must be one of posture-scan-completed, .* for com\.ibm/)
  })

  it('refuses an event nested past the limit, naming the member, before any check that recurses', () => {
    let deep: unknown = 1
    for (let i = 0; i < 100_000; i++) deep = [deep]
    const decoded = decodeEngineEvent(
      event('user.image.analysis.failed', { full_tag: 'docker.io/library/nginx:latest', error: 'x', deep }),
      '[2]',
    )
    assert.deepEqual(!decoded.ok && decoded.issues, [
      { path: '[2].data', message: 'is nested more than 64 levels deep' },
    ])
  })

  it('rejects an unknown type with an issue a consumer can dead-letter on', () => {
    const decoded = decodeEngineEvent(event('user.image.analysis.exploded', {}))
    assert.ok(!decoded.ok)
    assert.deepEqual(decoded.issues, [
      { path: 'type', message: 'unknown event type "user.image.analysis.exploded"' },
    ])
    assert.ok(isUnknownTypeIssue(decoded.issues[0] as { path: string; message: string }))
  })

  it('does not take Object.prototype keys for event types', () => {
    for (const type of ['constructor', '__proto__', 'toString']) {
      const decoded = decodeEngineEvent(event(type, {}))
      assert.ok(!decoded.ok, type)
      assert.ok(decoded.issues.some(isUnknownTypeIssue))
    }
  })

  it('names every bad field of data by its path', () => {
    const decoded = decodeEngineEvent(
      event('herald.report.image.analyzed', {
        digest: 'nope',
        registry: 'docker.io',
        repository: 'library/nginx',
        distro: { name: 'debian' },
        package_count: -1,
        findings: [
          {
            id: 'CVE-2024-1',
            severity: 'High',
            package: 'openssl',
            version: '3',
            type: 'deb',
            fix_version: null,
            kev: false,
          },
          'CVE-2024-2',
        ],
      }),
    )
    assert.ok(!decoded.ok)
    assert.deepEqual(decoded.issues, [
      { path: 'data.digest', message: 'must be an image digest such as sha256:<hex>' },
      { path: 'data.distro.version', message: 'is required' },
      { path: 'data.package_count', message: 'must be a whole number from 0 to 4294967295' },
      {
        path: 'data.findings[0].severity',
        message: 'must be one of critical, high, medium, low, negligible, unknown',
      },
      { path: 'data.findings[1]', message: 'must be a JSON object' },
    ])
  })

  it('reports a missing data object once', () => {
    const { data: _, ...withoutData } = event('user.image.analysis.completed', {})
    const decoded = decodeEngineEvent(withoutData)
    assert.ok(!decoded.ok)
    assert.deepEqual(decoded.issues, [{ path: 'data', message: 'is required' }])
  })

  it('reports envelope and data issues together', () => {
    const decoded = decodeEngineEvent(
      event('user.image.analysis.completed', { digest: 7 }, { level: 'loud', id: '' }),
    )
    assert.ok(!decoded.ok)
    assert.deepEqual(decoded.issues.map((i) => i.path).sort(), ['data.digest', 'id', 'level'])
  })

  it('reports a bad envelope with an unknown type as both', () => {
    const decoded = decodeEngineEvent(event('nope', {}, { account: '' }))
    assert.ok(!decoded.ok)
    assert.deepEqual(decoded.issues.map((i) => i.path).sort(), ['account', 'type'])
  })

  it('prefixes every path with the place of the event in a batch', () => {
    const decoded = decodeEngineEvent(event('user.image.analysis.completed', {}, { level: 'x' }), '[3]')
    assert.ok(!decoded.ok)
    assert.deepEqual(decoded.issues.map((i) => i.path).sort(), ['[3].data.digest', '[3].level'])
    const unknown = decodeEngineEvent(event('x.y', {}), '[4]')
    assert.ok(!unknown.ok)
    assert.equal(unknown.issues[0]?.path, '[4].type')
  })

  it('rejects what is not an event', () => {
    for (const input of [null, 'x', 1, [event('user.image.analysis.completed', { digest: DIGEST })]]) {
      const decoded = decodeEngineEvent(input)
      assert.ok(!decoded.ok)
      assert.equal(decoded.issues[0]?.path, '(root)')
    }
  })
})
