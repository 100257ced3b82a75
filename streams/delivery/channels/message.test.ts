import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  clip,
  MAX_DETAILS_WIDTH,
  MAX_LINE,
  MAX_NAME,
  MAX_SCOPE_TEXT,
  messageScope,
  resourceOf,
  uiLink,
  widthOf,
} from './message.ts'
import { aDelivery, anEvent, aPostureEvent, catalogData } from './test-fixtures.ts'

describe('resourceOf', () => {
  const cases: [type: string, expected: string][] = [
    ['user.checks.tag.vulnerabilities.update', 'docker.io/library/nginx:1.27'],
    ['user.image.analysis.completed', 'sha256:ab'],
    ['system.image_analysis.registry_lookup_failed', 'docker.io/library/nginx:9.99'],
    ['system.repository.list_tags_fail', 'docker.io/library/nginx'],
    ['system.feeds.sync.failed', 'vulnerabilities'],
    ['com.ibm.cloud.compliance.posture', 'acme-production'],
  ]
  for (const [type, expected] of cases) {
    it(`names the resource of ${type}`, () => {
      const data =
        type === 'system.image_analysis.registry_lookup_failed'
          ? { image_reference: 'docker.io/library/nginx:9.99', error: 'not found' }
          : type === 'system.repository.list_tags_fail'
            ? { registry: 'docker.io', repository: 'library/nginx', error: 'x' }
            : catalogData(type)
      assert.equal(resourceOf(anEvent({ type, data })), expected)
    })
  }

  it('falls back to the subject, then the source', () => {
    assert.equal(resourceOf(anEvent({ data: {}, subject: 'thing-1' })), 'thing-1')
    assert.equal(resourceOf(anEvent({ data: undefined })), '/engine/policy')
  })
})

describe('uiLink', () => {
  it('links to the event under ui_url, with or without a trailing slash or a path', () => {
    const delivery = aDelivery(anEvent({ id: 'evt 1/2' }))
    assert.equal(
      uiLink('https://herald.example.com', delivery),
      'https://herald.example.com/events/evt%201%2F2',
    )
    assert.equal(
      uiLink('https://herald.example.com/ui/', delivery),
      'https://herald.example.com/ui/events/evt%201%2F2',
    )
  })

  it('is null without ui_url', () => {
    assert.equal(uiLink(null, aDelivery()), null)
    assert.equal(uiLink('  ', aDelivery()), null)
  })

  it('links a digest to its window of deliveries', () => {
    const link = uiLink(
      'https://herald.example.com',
      aDelivery(anEvent(), {
        digest: {
          windowStart: '2026-11-22T09:00:00Z',
          windowEnd: '2026-11-22T10:00:00Z',
          total: 0,
          counts: [],
          events: [],
        },
      }),
    )
    assert.equal(
      link,
      'https://herald.example.com/notifications/deliveries?configuration=cfg-1&from=2026-11-22T09%3A00%3A00Z&to=2026-11-22T10%3A00%3A00Z',
    )
  })
})

describe('messageScope', () => {
  it('describes a vulnerability update: its findings, in words', () => {
    const scope = messageScope(
      aDelivery(anEvent({ data: catalogData('user.checks.tag.vulnerabilities.update', 1) })),
      {
        uiUrl: null,
      },
    )
    assert.deepEqual(scope.details, [
      'Updated: CVE-2024-6119 (critical, CVSS 9.8) in openssl 3.0.13-1~deb12u1, fixed in 3.0.14-1~deb12u2',
      'Resolved: 1 finding no longer present',
      'Digest: sha256:9b2a5c0e3b6f0a1d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c',
    ])
    assert.deepEqual(
      scope.findings.map((f) => [f.id, f.change]),
      [['CVE-2024-6119', 'updated']],
    )
    assert.equal(scope.link, null)
    assert.equal(scope.payload, null)
  })

  it('describes a policy evaluation and a posture scan', () => {
    const policy = messageScope(
      aDelivery(
        anEvent({
          type: 'user.checks.tag.policy_evaluation.update',
          data: catalogData('user.checks.tag.policy_evaluation.update', 1),
        }),
      ),
      { uiUrl: null },
    )
    assert.deepEqual(policy.details.slice(0, 2), [
      'Policy evaluation: fail (final action stop), was pass',
      'stop vulnerabilities/package: CRITICAL Vulnerability found in npm package - cross-spawn (GHSA-3xgq-45jj-v275)',
    ])
    const posture = messageScope(aDelivery(aPostureEvent()), { uiUrl: 'https://h.example' })
    assert.equal(posture.summary, 'Scan completed: 180 passed, 12 failed.')
    assert.equal(posture.resource, 'my-test-validation-scan')
    assert.ok(posture.details.includes('Controls: 180 passed, 12 failed of 200, 8 unable to perform'))
    assert.equal(posture.link, 'https://h.example/events/evt-posture-1')
  })

  it('carries the whole event only when asked, and never more than the delivery holds', () => {
    const delivery = aDelivery()
    const scope = messageScope(delivery, { uiUrl: null, includePayload: true })
    assert.deepEqual(JSON.parse(scope.payload ?? ''), delivery.event)
    // The scope is built from the delivery alone: its strings are the event's, the delivery's and the UI URL.
    assert.deepEqual(Object.keys(scope.delivery), ['id', 'configuration_id', 'created_at'])
  })

  it('fills level and resource type from the catalog when the event lacks them', () => {
    const scope = messageScope(
      aDelivery(
        anEvent({
          type: 'system.feeds.sync.failed',
          level: undefined,
          resourcetype: undefined,
          data: catalogData('system.feeds.sync.failed'),
        }),
      ),
      { uiUrl: null },
    )
    assert.equal(scope.level, 'error')
    assert.equal(scope.headline, 'Feeds sync task failed')
    assert.equal(scope.resource_type, 'feeds')
  })

  it('bounds every text an event sets by its length once escaped, never splitting a character', () => {
    assert.equal(clip('a&b', 7), 'a&b')
    assert.equal(clip('a&b', 6), 'a…')
    assert.equal(clip('"'.repeat(10), 13), '""…')
    assert.equal(clip(`a${'😀'.repeat(5)}`, 4), 'a😀…')
    assert.equal(clip(`aa${'😀'.repeat(5)}`, 4), 'aa…')
    const long = '&<>"\''.repeat(200_000)
    const scope = messageScope(
      aDelivery(
        anEvent({
          type: 'user.image.analysis.failed',
          account: long,
          subject: long,
          data: { full_tag: long, error: long, summary: long },
        }),
      ),
      { uiUrl: null },
    )
    for (const text of [scope.account, scope.subject ?? '', scope.resource]) {
      assert.ok(widthOf(text) <= MAX_NAME && text.endsWith('…'))
    }
    for (const text of [scope.summary, ...scope.details]) {
      assert.ok(widthOf(text) <= MAX_LINE && text.endsWith('…'))
    }
    const finding = { severity: 'high', version: '1', type: 'deb', fix_version: null, kev: false }
    const findings = Array.from({ length: 50 }, (_, i) => ({ ...finding, id: `CVE-${i}`, package: long }))
    const many = messageScope(aDelivery(anEvent({ data: { full_tag: 't', added: findings, updated: [] } })), {
      uiUrl: null,
    })
    // A finding's texts are bounded by MAX_SCOPE_TEXT alone (a ticket key reads them); its detail line is not.
    assert.ok(many.findings.every((f) => widthOf(f.package) <= MAX_SCOPE_TEXT && f.package.length > 5_000))
    assert.ok(widthOf(many.details.slice(0, -1).join('')) <= MAX_DETAILS_WIDTH)
    assert.match(many.details.at(-1) ?? '', /^… and \d+ more$/)
  })
})
