import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeEngineEvent, type EngineEvent, isEventType } from '../events/index.ts'
import { generateActivity } from './activity.ts'
import { createRandom } from './random.ts'

const START = Date.UTC(2026, 10, 22, 10)
const clock = () => START

const take = (seed: number | string, count: number, accounts: number | string[] = 4) => [
  ...generateActivity({ seed, accounts, count, clock }),
]

describe('generateActivity', () => {
  it('gives the same events for the same seed, and others for another', () => {
    const a = take('demo', 2_000)
    assert.deepEqual(a, take('demo', 2_000))
    assert.notDeepEqual(a.slice(0, 50), take('other', 50))
  })

  it('emits only catalog events that decode, with unique ids, over thousands of events', () => {
    for (const seed of [1, 2, 3]) {
      const events = take(seed, 8_000, seed)
      assert.equal(events.length, 8_000)
      assert.equal(new Set(events.map((e) => e.id)).size, events.length)
      for (const [i, event] of events.entries()) {
        assert.ok(isEventType(event.type))
        // Through JSON, as a consumer receives it.
        const decoded = decodeEngineEvent(JSON.parse(JSON.stringify(event)))
        assert.ok(
          decoded.ok,
          `seed ${seed} event ${i} (${event.type}): ${JSON.stringify(!decoded.ok && decoded.issues)}`,
        )
      }
    }
  })

  it('spaces events at the given rate, in time order, and stops at the duration', () => {
    const events = [...generateActivity({ seed: 9, accounts: 2, rate: 200, durationMs: 60_000, clock })]
    assert.ok(events.length > 200 * 60 * 0.9 && events.length < 200 * 60 * 1.1, `${events.length} events`)
    const times = events.map((e) => Date.parse(e.time as string))
    assert.ok(
      times.every((t, i) => t >= START && t <= START + 60_000 && (i === 0 || t >= (times[i - 1] as number))),
    )
  })

  it('uses the given account names, and admin for engine-wide events', () => {
    const events = take(5, 3_000, ['red', 'blue'])
    assert.deepEqual([...new Set(events.map((e) => e.account))].sort(), ['admin', 'blue', 'red'])
    const feeds = events.filter((e) => e.type.startsWith('system.feeds.'))
    assert.ok(feeds.length > 0 && feeds.every((e) => e.account === 'admin'))
    const quiet = [
      ...generateActivity({ seed: 5, accounts: ['red'], count: 3_000, clock, systemEvents: false }),
    ]
    assert.ok(quiet.every((e) => e.account === 'red'))
  })

  it('draws findings from a realistic severity mix', () => {
    const findings = take(11, 20_000).flatMap((e) =>
      e.type === 'herald.report.image.analyzed' ? e.data.findings : [],
    )
    const share = (predicate: (f: (typeof findings)[number]) => boolean) =>
      findings.filter(predicate).length / findings.length
    const bySeverity = (s: string) => share((f) => f.severity === s)
    assert.ok(findings.length > 10_000)
    assert.ok(
      bySeverity('critical') > 0.005 && bySeverity('critical') < 0.05,
      `critical ${bySeverity('critical')}`,
    )
    assert.ok(bySeverity('critical') < bySeverity('high'))
    assert.ok(bySeverity('high') < bySeverity('medium'))
    assert.ok(bySeverity('medium') + bySeverity('low') > 0.5)
    const kev = findings.filter((f) => f.kev)
    assert.ok(kev.length > 0)
    assert.ok(kev.filter((f) => f.severity === 'critical' || f.severity === 'high').length / kev.length > 0.8)
    assert.ok(share((f) => f.fix_version !== null) > 0.3 && share((f) => f.fix_version !== null) < 0.8)
  })

  it('covers the activity the reports and notifications need', () => {
    const events = take(13, 30_000)
    const types = new Set(events.map((e) => e.type))
    for (const type of [
      'herald.report.image.analyzed',
      'herald.report.tag.digest_changed',
      'herald.report.tag.deleted',
      'herald.report.image.deleted',
      'herald.report.policy.evaluated',
      'herald.report.inventory.snapshot',
      'user.checks.tag.vulnerabilities.update',
      'user.checks.tag.policy_evaluation.update',
      'user.image.analysis.failed',
      'system.feeds.sync.failed',
      'system.feeds.sync.group_failed',
      'system.repository.list_tags_fail',
      'system.analysis_archive.image_archived',
      'com.ibm.cloud.compliance.posture',
    ] as const) {
      assert.ok(types.has(type), type)
    }
    const moved = events.filter(
      (e) => e.type === 'herald.report.tag.digest_changed' && e.data.previous_digest !== null,
    )
    assert.ok(moved.length > 100, 'tags move between digests')
    const flips = events.filter(
      (e) =>
        e.type === 'user.checks.tag.policy_evaluation.update' &&
        e.data.curr_eval.status !== e.data.last_eval?.status,
    )
    assert.ok(flips.length > 50, 'policy evaluations flip')
    const subtypes = new Set(
      events.filter((e) => e.type === 'com.ibm.cloud.compliance.posture').map((e) => e.subtype),
    )
    assert.equal(subtypes.size, 3)
  })

  it('tells one consistent story: snapshots list exactly what the events before them left current', () => {
    const events = take(17, 30_000)
    const state = new Map<string, { images: Set<string>; tags: Map<string, string> }>()
    const of = (e: EngineEvent) => {
      let s = state.get(e.account)
      if (s === undefined) {
        s = { images: new Set(), tags: new Map() }
        state.set(e.account, s)
      }
      return s
    }
    let snapshots = 0
    for (const e of events) {
      const s = of(e)
      switch (e.type) {
        case 'herald.report.image.analyzed':
          s.images.add(e.data.digest)
          break
        case 'herald.report.tag.digest_changed': {
          const key = `${e.data.registry}/${e.data.repository}:${e.data.tag}`
          assert.equal(e.data.previous_digest ?? undefined, s.tags.get(key), `${key} moved from where it was`)
          assert.ok(s.images.has(e.data.digest), 'a tag points at an analyzed image')
          s.tags.set(key, e.data.digest)
          break
        }
        case 'herald.report.tag.deleted':
          assert.ok(
            s.tags.delete(`${e.data.registry}/${e.data.repository}:${e.data.tag}`),
            'deleted tag existed',
          )
          break
        case 'herald.report.image.deleted':
          assert.ok(s.images.delete(e.data.digest), 'deleted image existed')
          assert.ok(![...s.tags.values()].includes(e.data.digest), 'no tag points at a deleted image')
          break
        case 'herald.report.policy.evaluated':
          assert.equal(s.tags.get(`${e.data.registry}/${e.data.repository}:${e.data.tag}`), e.data.digest)
          break
        case 'herald.report.inventory.snapshot':
          snapshots++
          assert.deepEqual(new Set(e.data.images.map((i) => i.digest)), s.images)
          assert.deepEqual(
            new Map(e.data.tags.map((t) => [`${t.registry}/${t.repository}:${t.tag}`, t.digest])),
            s.tags,
          )
          break
      }
    }
    assert.ok(snapshots > 10)
  })

  it('refuses options it cannot honour', () => {
    assert.throws(() => take(1, 1, []), /at least one account/)
    assert.throws(() => take(1, 1, ['red', 'blue\u0000']), /account "blue\\u0000" must be an account name/)
    assert.throws(() => [...generateActivity({ seed: 1, accounts: 1, rate: 0, count: 1, clock })], /rate/)
  })
})

describe('createRandom', () => {
  it('repeats its sequence for a seed and stays in range', () => {
    const a = createRandom(42)
    const b = createRandom(42)
    for (let i = 0; i < 1_000; i++) {
      const x = a.next()
      assert.equal(x, b.next())
      assert.ok(x >= 0 && x < 1)
    }
    const r = createRandom('x')
    const ints = Array.from({ length: 1_000 }, () => r.int(1, 6))
    assert.deepEqual([...new Set(ints)].sort(), [1, 2, 3, 4, 5, 6])
    assert.match(r.uuid(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.match(r.hex(64), /^[0-9a-f]{64}$/)
    assert.equal(r.hex(5).length, 5)
  })
})
