import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { firstValueFrom } from 'rxjs'
import type { CloudEvent } from '../../src/events/index.ts'
import type { CompiledPattern } from '../../src/matching/index.ts'
import type {
  EndpointConfiguration,
  JsonValue,
  LevelPattern,
  Selector,
  SelectorSet,
} from '../../src/notifications/index.ts'
import {
  buildSelectorIndex,
  compileSelector,
  createSelectorIndexBuilder,
  emptySelectorIndex,
} from './selector-index.ts'
import { aConfiguration, anEvent, aSelector, aSelectorSet as setOf } from './test-fixtures.ts'

// A seeded generator: a failure reproduces with the same seed.
const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const TYPES = [
  'user.image.analysis.completed',
  'user.image.analysis.failed',
  'user.checks.tag.vulnerabilities.update',
  'user.checks.tag.policy_evaluation.update',
  'user.checks.image.policy_evaluation.update',
  'system.feeds.sync.failed',
  'system.feeds.sync.completed',
  'com.ibm.cloud.compliance.posture',
]
const TYPE_PATTERNS = [
  ...TYPES,
  '*',
  'user.*',
  'user.checks.*',
  'system.*',
  '*.failed',
  '*.update',
  'user.*.update',
  '*policy*',
  'com.ibm.*',
]
const ACCOUNTS = ['acme', 'globex', 'initech', 'admin', 'umbrella']
const LEVELS: LevelPattern[] = ['*', 'info', 'warning', 'error']
const RESOURCE_TYPES = ['image', 'tag', 'feed', 'repository']
const SOURCES = ['/engine/policy', '/engine/analyzer', '/scc/posture']
const TAGS = ['docker.io/library/nginx:latest', 'registry.example.com/payments:1.4.2', 'quay.io/app:latest']
const CONTENT_PATTERNS: readonly JsonValue[] = [
  { source: [{ prefix: '/engine/' }] },
  { source: ['/engine/analyzer'] },
  { data: { tag: [{ suffix: ':latest' }] } },
  { data: { tag: [{ 'anything-but': { prefix: 'docker.io/' } }] } },
  { $or: [{ source: ['/scc/posture'] }, { data: { tag: [{ wildcard: '*payments*' }] } }] },
]

/**
 * The specification: every selector of every configuration (enabled or not) of an endpoint type
 * switched on, each compiled pattern evaluated on its own, without the index's decision tree.
 */
const compiled = new Map<Selector, CompiledPattern>()
const compiledOf = (selector: Selector): CompiledPattern => {
  let pattern = compiled.get(selector)
  if (pattern === undefined) {
    pattern = compileSelector(selector)
    compiled.set(selector, pattern)
  }
  return pattern
}

const bruteForce = (set: SelectorSet, event: CloudEvent) => {
  const byConfiguration = new Map<string, string[]>()
  for (const selector of set.selectors.values()) {
    const configuration = set.configurations.get(selector.configurationId)
    if (configuration === undefined || set.disabledEndpoints.has(configuration.endpoint)) continue
    if (!compiledOf(selector).matches(event)) continue
    byConfiguration.set(
      configuration.id,
      [...(byConfiguration.get(configuration.id) ?? []), selector.id].sort(),
    )
  }
  return [...byConfiguration.entries()].sort(([a], [b]) => (a < b ? -1 : 1))
}

describe('buildSelectorIndex', () => {
  it('finds exactly what brute-force matching finds, over random selectors and events', () => {
    const random = mulberry32(20261122)
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
    const configurations = Array.from({ length: 60 }, (_, i) =>
      aConfiguration({
        id: `cfg-${String(i).padStart(3, '0')}`,
        account: pick(ACCOUNTS),
        enabled: random() > 0.15,
      }),
    )
    const selectors = Array.from({ length: 400 }, (_, i) => {
      const configuration = pick(configurations)
      return aSelector(
        {
          level: pick(LEVELS),
          type: pick(TYPE_PATTERNS),
          resource_type: random() < 0.6 ? '*' : pick(RESOURCE_TYPES),
        },
        {
          id: `sel-${String(i).padStart(3, '0')}`,
          configurationId: random() < 0.03 ? 'cfg-deleted' : configuration.id,
          account: configuration.account,
          scope: configuration.account === 'admin' && random() < 0.5 ? 'global' : 'account',
          pattern: random() < 0.3 ? pick(CONTENT_PATTERNS) : null,
        },
      )
    })
    const set = setOf(configurations, selectors)
    const index = buildSelectorIndex(set)
    let pairs = 0
    for (let i = 0; i < 300; i++) {
      const event = anEvent({
        id: `evt-${i}`,
        account: pick(ACCOUNTS),
        type: random() < 0.9 ? pick(TYPES) : 'user.unknown.thing',
        level: random() < 0.1 ? undefined : pick(['info', 'warning', 'error'] as const),
        resourcetype: random() < 0.1 ? undefined : pick(RESOURCE_TYPES),
        source: pick(SOURCES),
        data: { tag: pick(TAGS) },
      })
      const expected = bruteForce(set, event)
      const actual = index.match(event).map((m) => [m.configuration.id, [...m.selectorIds]])
      assert.deepEqual(actual, expected, `event ${JSON.stringify(event)}`)
      pairs += expected.length
    }
    // The comparison means little unless events match some configurations but far from all.
    const share = pairs / (300 * configurations.length)
    assert.ok(share > 0.02 && share < 0.5, `share of (event, configuration) pairs matched: ${share}`)
  })

  it('groups several matching selectors of one configuration into one match', () => {
    const index = buildSelectorIndex(
      setOf(
        [aConfiguration()],
        [aSelector({ type: 'user.checks.*' }, { id: 'sel-b' }), aSelector({ type: '*' }, { id: 'sel-a' })],
      ),
    )
    const matches = index.match(anEvent())
    assert.equal(matches.length, 1)
    assert.deepEqual(matches[0]?.selectorIds, ['sel-a', 'sel-b'])
  })

  it('keeps disabled configurations, whose deliveries are recorded as skipped, and leaves out unknown ones', () => {
    const index = buildSelectorIndex(
      setOf(
        [aConfiguration({ id: 'on' }), aConfiguration({ id: 'off', enabled: false })],
        [
          aSelector({}, { id: 's1', configurationId: 'on' }),
          aSelector({}, { id: 's2', configurationId: 'off' }),
          aSelector({}, { id: 's3', configurationId: 'gone' }),
        ],
      ),
    )
    assert.equal(index.size, 2)
    assert.deepEqual(
      index.match(anEvent()).map((m) => [m.configuration.id, m.configuration.enabled]),
      [
        ['off', false],
        ['on', true],
      ],
    )
  })

  it('routes other accounts\u2019 events only to global selectors', () => {
    const index = buildSelectorIndex(
      setOf(
        [aConfiguration({ id: 'mine' }), aConfiguration({ id: 'admin-cfg', account: 'admin' })],
        [
          aSelector({}, { id: 's1', configurationId: 'mine' }),
          aSelector({}, { id: 's2', configurationId: 'admin-cfg', account: 'admin', scope: 'global' }),
        ],
      ),
    )
    assert.deepEqual(
      index.match(anEvent({ account: 'globex' })).map((m) => m.configuration.id),
      ['admin-cfg'],
    )
    assert.deepEqual(
      index.match(anEvent({ account: 'acme' })).map((m) => m.configuration.id),
      ['admin-cfg', 'mine'],
    )
  })

  it('applies a selector\u2019s content pattern on top of its event block', () => {
    const index = buildSelectorIndex(
      setOf([aConfiguration()], [aSelector({}, { pattern: { data: { tag: [{ suffix: ':latest' }] } } })]),
    )
    assert.equal(index.match(anEvent({ data: { tag: 'nginx:latest' } })).length, 1)
    assert.equal(index.match(anEvent({ data: { tag: 'nginx:1.27' } })).length, 0)
  })

  it('routes nothing to an endpoint type switched off system-wide, or one the caller cannot deliver to', () => {
    const set = setOf(
      [aConfiguration({ id: 'hook' }), aConfiguration({ id: 'chat', endpoint: 'slack' })],
      [
        aSelector({}, { id: 's1', configurationId: 'hook' }),
        aSelector({}, { id: 's2', configurationId: 'chat' }),
      ],
    )
    assert.deepEqual(
      buildSelectorIndex(set)
        .match(anEvent())
        .map((m) => m.configuration.id),
      ['chat', 'hook'],
    )
    const slackOff: SelectorSet = { ...set, disabledEndpoints: new Set(['slack']) }
    assert.deepEqual(
      buildSelectorIndex(slackOff)
        .match(anEvent())
        .map((m) => m.configuration.id),
      ['hook'],
    )
    const webhooksOnly = buildSelectorIndex(set, { routable: (c) => c.endpoint === 'webhook' })
    assert.deepEqual(
      webhooksOnly.match(anEvent()).map((m) => m.configuration.id),
      ['hook'],
    )
  })

  it('leaves out a stored selector that no longer compiles, and reports it', () => {
    const reported: string[] = []
    const index = buildSelectorIndex(
      setOf([aConfiguration()], [aSelector({}, { id: 'bad', pattern: { source: [{ prefix: 42 }] } })]),
      { onUncompilable: (selector) => reported.push(selector.id) },
    )
    assert.equal(index.size, 0)
    assert.deepEqual(index.match(anEvent()), [])
    assert.deepEqual(reported, ['bad'])
  })

  it('has an empty index that matches nothing', () => {
    assert.deepEqual(emptySelectorIndex.match(anEvent()), [])
    assert.equal(buildSelectorIndex(setOf([], [])).size, 0)
  })
})

describe('createSelectorIndexBuilder', () => {
  const random = mulberry32(7)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
  const aRandomSelector = (i: number, configuration: EndpointConfiguration): Selector =>
    aSelector(
      { level: pick(LEVELS), type: pick(TYPE_PATTERNS) },
      {
        id: `sel-${i}`,
        configurationId: configuration.id,
        account: configuration.account,
        scope: configuration.account === 'admin' && random() < 0.5 ? 'global' : 'account',
        pattern: random() < 0.3 ? pick(CONTENT_PATTERNS) : null,
      },
    )
  const anyEvent = (i: number) =>
    anEvent({
      id: `evt-${i}`,
      account: pick(ACCOUNTS),
      type: pick(TYPES),
      level: pick(['info', 'warning', 'error'] as const),
      resourcetype: pick(RESOURCE_TYPES),
      source: pick(SOURCES),
      data: { tag: pick(TAGS) },
    })
  const matchesOf = (index: ReturnType<typeof buildSelectorIndex>, event: CloudEvent) =>
    index.match(event).map((m) => [m.configuration.id, [...m.selectorIds]])

  it('rebuilds only the accounts whose selectors or configurations changed, and matches as a fresh build does', () => {
    const configurations = new Map(
      Array.from({ length: 30 }, (_, i) => {
        const c = aConfiguration({ id: `cfg-${i}`, account: ACCOUNTS[i % ACCOUNTS.length] as string })
        return [c.id, c] as const
      }),
    )
    const selectors = new Map<string, Selector>()
    for (let i = 0; i < 200; i++) {
      const selector = aRandomSelector(i, pick([...configurations.values()]))
      selectors.set(selector.id, selector)
    }
    let disabled = new Set<EndpointConfiguration['endpoint']>()
    const snapshot = (): SelectorSet => ({
      position: 1,
      configurations: new Map(configurations),
      selectors: new Map(selectors),
      disabledEndpoints: disabled,
      unannounced: new Map(),
    })
    const builder = createSelectorIndexBuilder()
    let next = 200
    builder.build(snapshot())
    for (let step = 0; step < 60; step++) {
      // One change to one account, as a configuration write makes; now and then a system-wide one.
      const configuration = pick([...configurations.values()])
      const change = random()
      if (change < 0.3) {
        configurations.set(configuration.id, { ...configuration, enabled: !configuration.enabled })
      } else if (change < 0.6) {
        const selector = aRandomSelector(next++, configuration)
        selectors.set(selector.id, selector)
      } else if (change < 0.9) {
        const own = [...selectors.values()].filter((s) => s.configurationId === configuration.id)
        if (own.length > 0) selectors.delete(pick(own).id)
      } else {
        disabled = disabled.has('webhook') ? new Set() : new Set(['webhook'])
      }
      const set = snapshot()
      const index = builder.build(set)
      const fresh = buildSelectorIndex(set)
      assert.equal(index.size, fresh.size)
      for (let i = 0; i < 40; i++) {
        const event = anyEvent(i)
        assert.deepEqual(matchesOf(index, event), matchesOf(fresh, event), `step ${step}, change ${change}`)
        assert.deepEqual(matchesOf(index, event), bruteForce(set, event))
      }
      // The account's tree, and for an admin's configuration the global selectors' too.
      const touched = configuration.account === 'admin' ? 2 : 1
      if (change < 0.9)
        assert.ok(builder.lastBuild.rebuilt <= touched, `step ${step}: rebuilt ${builder.lastBuild.rebuilt}`)
    }
  })

  /** What `work` resolves to, and how many times the event loop turned while it ran. */
  const counting = async <T>(work: Promise<T>): Promise<{ value: T; turns: number }> => {
    let turns = 0
    let ticking = true
    const tick = () => {
      turns++
      if (ticking) setImmediate(tick)
    }
    setImmediate(tick)
    const value = await work
    ticking = false
    return { value, turns }
  }

  it('builds in slices between which the event loop runs, and keeps the work of a build it abandons', async () => {
    const accounts = Array.from({ length: 50 }, (_, i) => `account-${i}`)
    const configurations = accounts.map((account, i) => aConfiguration({ id: `cfg-${i}`, account }))
    const selectors = configurations.flatMap((c, i) =>
      Array.from({ length: 20 }, (_, j) => aRandomSelector(i * 20 + j, c)),
    )
    const set = setOf(configurations, selectors)
    const builder = createSelectorIndexBuilder()

    // Abandoned after a few slices: what it built is not built again.
    await new Promise<void>((resolve) => {
      const subscription = builder.build$(set, 0).subscribe()
      const abandon = () => {
        subscription.unsubscribe()
        resolve()
      }
      setImmediate(() => setImmediate(() => setImmediate(abandon)))
    })
    const { value: index, turns } = await counting(firstValueFrom(builder.build$(set, 0)))
    const { partitions, rebuilt } = builder.lastBuild
    assert.equal(partitions, 50)
    assert.ok(rebuilt > 0 && rebuilt < 50, `rebuilt ${rebuilt} of 50 after an abandoned build`)
    assert.ok(turns >= rebuilt - 1, `the event loop ran ${turns} times during ${rebuilt} slices`)
    assert.equal(index.size, 1_000)
    const event = anEvent({ account: 'account-7', type: TYPES[0] })
    assert.deepEqual(matchesOf(index, event), bruteForce(set, event))
  })

  it('slices the build of one large account, its compiling and its tree, not only between accounts', async () => {
    const configurations = Array.from({ length: 10 }, (_, i) => aConfiguration({ id: `cfg-${i}` }))
    const selectors = configurations.flatMap((c, i) =>
      Array.from({ length: 1_000 }, (_, j) => aRandomSelector(i * 1_000 + j, c)),
    )
    const set = setOf(configurations, selectors)
    const builder = createSelectorIndexBuilder()
    const { value: index, turns } = await counting(firstValueFrom(builder.build$(set, 0)))
    assert.deepEqual(builder.lastBuild, { partitions: 1, rebuilt: 1 })
    assert.equal(index.size, 10_000)
    // 10,000 selectors of one account: some 40 steps compiling them, more indexing them, where
    // the whole account was one step.
    assert.ok(turns >= 50, `the event loop ran ${turns} times`)
    for (let i = 0; i < 3; i++) {
      const event = anEvent({ id: `evt-${i}`, type: pick(TYPES), level: pick(['info', 'error'] as const) })
      assert.deepEqual(matchesOf(index, event), bruteForce(set, event))
    }
  })

  it('compiles again only the selectors a new snapshot changed', () => {
    let compiled = 0
    /** A selector that counts how often it is compiled (only compiling reads its event block). */
    const counted = (selector: Selector): Selector => {
      const { event, ...rest } = selector
      return Object.freeze({
        ...rest,
        get event() {
          compiled++
          return event
        },
      })
    }
    const configurations = [aConfiguration({ id: 'cfg-0' }), aConfiguration({ id: 'cfg-1' })]
    const selectors = Array.from({ length: 500 }, (_, i) =>
      counted(aRandomSelector(i, configurations[i % 2] as EndpointConfiguration)),
    )
    const builder = createSelectorIndexBuilder()
    const set = setOf(configurations, selectors)
    builder.build(set)
    assert.equal(compiled, 500)
    const added = counted(aRandomSelector(500, configurations[0] as EndpointConfiguration))
    const edited = counted({ ...(selectors[3] as Selector), event: { ...(selectors[3] as Selector).event } })
    const next = {
      ...set,
      selectors: new Map(set.selectors).set(added.id, added).set(edited.id, edited),
      // A configuration changed too: its selectors are indexed anew, not compiled anew.
      configurations: new Map(set.configurations).set('cfg-1', {
        ...(configurations[1] as EndpointConfiguration),
        enabled: false,
      }),
    }
    // Copying the edited selector's event block above read it too.
    compiled = 0
    const index = builder.build(next)
    assert.equal(compiled, 2)
    assert.deepEqual(builder.lastBuild, { partitions: 1, rebuilt: 1 })
    for (let i = 0; i < 40; i++) {
      const event = anEvent({ id: `evt-${i}`, type: pick(TYPES), level: pick(['info', 'error'] as const) })
      assert.deepEqual(matchesOf(index, event), bruteForce(next, event))
    }
  })

  it('slices the grouping of a large snapshot too, even when no tree needs rebuilding', async () => {
    const configurations = Array.from({ length: 10 }, (_, i) => aConfiguration({ id: `cfg-${i}` }))
    const selectors = Array.from({ length: 30_000 }, (_, i) =>
      aSelector({ type: TYPES[0] }, { id: `sel-${i}`, configurationId: `cfg-${i % 10}` }),
    )
    const set = setOf(configurations, selectors)
    const builder = createSelectorIndexBuilder()
    builder.build(set)
    const { value: index, turns } = await counting(
      firstValueFrom(builder.build$({ ...set, position: set.position + 1 }, 0)),
    )
    assert.equal(builder.lastBuild.rebuilt, 0)
    assert.equal(index.size, 30_000)
    // 30,000 selectors grouped in steps of 4,096: the event loop ran between the 8 steps.
    assert.ok(turns >= 5, `the event loop ran ${turns} times`)
  })
})
