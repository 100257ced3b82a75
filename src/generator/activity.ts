import { ACCOUNT_NAME_RULE, ADMIN_ACCOUNT, isAccountName } from '../access/index.ts'
import {
  type EngineEvent,
  type EventData,
  type EventType,
  eventCatalog,
  type Finding,
} from '../events/index.ts'
import { createRandom, type Random } from './random.ts'
import {
  DISTROS,
  type Distro,
  drawFinding,
  FEEDS,
  findingCount,
  findingKey,
  LANGUAGES,
  PUBLIC_REPOSITORIES,
  REGISTRIES,
  REPOSITORY_NAMES,
  SERVICES,
  semver,
  TAG_NAMES,
} from './world.ts'

export interface ActivityOptions {
  /**
   * Same seed, start (`clock`) and options, same events: ids, times, content. Ids are drawn
   * from the seed and the start together: runs of one seed from two starts share no id, so
   * Herald, which drops an event whose account, source and id it already has, takes both.
   */
  readonly seed: number | string
  /** How many accounts (named acme, globex, …) or their names (account names, as ingest takes them). */
  readonly accounts: number | readonly string[]
  /** Mean events per second of simulated time; arrivals are Poisson. Default 50. */
  readonly rate?: number
  /** Stop once simulated time passes start + durationMs. */
  readonly durationMs?: number
  /** Stop after this many events. Without it or `durationMs` the stream never ends. */
  readonly count?: number
  /** Read once: simulated time starts at this instant (ms since the epoch). */
  readonly clock: () => number
  /** Emit engine-wide events (feed syncs, service faults) for the admin account. Default true. */
  readonly systemEvents?: boolean
}

/** The last instant an RFC 3339 timestamp (a four-digit year) can name, in ms since the epoch. */
export const LAST_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

/** Simulated time ran past `LAST_TIME_MS`: no event after it could carry its time. */
export class SimulatedTimeError extends RangeError {
  constructor(emitted: number) {
    super(`simulated time passed ${new Date(LAST_TIME_MS).toISOString()} after ${emitted} events`)
    this.name = 'SimulatedTimeError'
  }
}

const ACCOUNT_NAMES = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne', 'wonka', 'tyrell']

const PROFILES = [
  'CIS IBM Cloud Foundations Benchmark v1.1.0',
  'IBM Cloud Framework for Financial Services',
  'NIST SP 800-53 Rev 5',
]

const ERRORS = {
  registry: [
    '401 Unauthorized: authentication required',
    'dial tcp: i/o timeout',
    'x509: certificate signed by unknown authority',
    '429 Too Many Requests: pull rate limit exceeded',
  ],
  manifest: [
    'manifest unknown',
    'unsupported manifest media type application/vnd.docker.distribution.manifest.v1+json',
  ],
  analysis: [
    'image squash failed: no space left on device',
    'analyzer timed out after 3600s',
    'layer download failed: unexpected EOF',
  ],
  feed: [
    'upstream returned 503 Service Unavailable',
    'feed data checksum mismatch',
    'connection reset by peer',
  ],
  service: ['no heartbeat for 300s', 'health check returned 500', 'host unreachable'],
} as const

const SAYINGS = [
  'Measure twice, cut once.',
  'Trust, but verify.',
  'The best time to patch was yesterday; the second best is now.',
  'Many hands make light work.',
]

interface Image {
  readonly digest: string
  readonly registry: string
  readonly repository: string
  readonly distro: Distro
  readonly imageId: string
  readonly packageCount: number
  findings: Finding[]
}

interface Repo {
  readonly registry: string
  readonly repository: string
  readonly distro: Distro
  readonly language: string
  readonly tagNames: readonly string[]
  /** Findings of the latest build: the next build inherits most of them. */
  baseFindings: Finding[]
}

interface Evaluation {
  readonly status: 'pass' | 'fail'
  readonly final_action: 'go' | 'warn' | 'stop'
  readonly bundle_id: string
  readonly bundle_digest: string
  readonly evaluated_at: string
  readonly reasons: EventData<'herald.report.policy.evaluated'>['reasons']
}

interface Tag {
  readonly registry: string
  readonly repository: string
  readonly tag: string
  digest: string
  lastEval?: Evaluation
}

interface Account {
  readonly name: string
  readonly repos: readonly Repo[]
  readonly tags: Map<string, Tag>
  readonly images: Map<string, Image>
  readonly archived: Map<string, Image>
  readonly scope: string
  readonly failureThreshold: number
  bundle: { id: string; digest: string; strict: boolean }
}

type Pending = EngineEvent & { time: string }

const fullTag = (t: { registry: string; repository: string; tag: string }) =>
  `${t.registry}/${t.repository}:${t.tag}`

/**
 * A deterministic stream of realistic engine activity as catalog CloudEvents: accounts with
 * registries and repositories, tags moving between digests as images are pushed, vulnerability
 * reports drawn from a realistic severity mix changing as feeds update, policy evaluations
 * flipping between pass and fail, deletions and archiving, registry and analysis failures,
 * feed syncs (some failing), service faults and compliance scans. Every event is valid by
 * `decodeEngineEvent`. Lazy: take as many as needed.
 *
 * @example
 * const events = [...generateActivity({ seed: 7, accounts: 3, count: 1_000, clock: () => Date.UTC(2026, 10, 22) })]
 */
export function* generateActivity(options: ActivityOptions): Generator<EngineEvent, void, undefined> {
  const random = createRandom(options.seed)
  const rate = options.rate ?? 50
  if (!(rate > 0)) throw new RangeError('rate must be a positive number of events per second')
  const start = options.clock()
  const ids = createRandom(`${options.seed}@${start}`)
  const meanGapMs = 1_000 / rate
  const names =
    typeof options.accounts === 'number'
      ? Array.from({ length: options.accounts }, (_, i) => ACCOUNT_NAMES[i] ?? `account-${i + 1}`)
      : [...options.accounts]
  if (names.length === 0) throw new RangeError('at least one account is needed')
  const misnamed = names.find((name) => !isAccountName(name))
  if (misnamed !== undefined) throw new RangeError(`account ${JSON.stringify(misnamed)} ${ACCOUNT_NAME_RULE}`)
  const accounts = names.map((name) => createAccount(random, name))
  const systemEvents = options.systemEvents ?? true
  const queue: Pending[] = []
  let now = start
  let emitted = 0

  const emit = <K extends EventType>(
    type: K,
    account: string,
    source: string,
    subject: string,
    data: EventData<K>,
    subtype?: string,
  ) => {
    const entry = eventCatalog[type]
    const level = entry.subtypes?.find((s) => s.subtype === subtype)?.level ?? entry.level
    queue.push({
      // id first, so a reader of the NDJSON sees it at once; time is set as the event leaves.
      id: ids.uuid(),
      specversion: '1.0',
      source,
      type,
      account,
      subject,
      datacontenttype: 'application/json',
      level,
      resourcetype: entry.resourceType,
      ...(subtype === undefined ? {} : { subtype }),
      data,
      time: '',
    } as Pending)
  }

  const world: World = { random, emit, iso: () => new Date(now).toISOString() }

  while (true) {
    if (options.count !== undefined && emitted >= options.count) return
    while (queue.length === 0) {
      if (systemEvents && random.chance(0.03)) systemAction(world)
      else accountAction(world, random.pick(accounts))
    }
    now += random.exponential(meanGapMs)
    if (options.durationMs !== undefined && now - start > options.durationMs) return
    if (now > LAST_TIME_MS) throw new SimulatedTimeError(emitted)
    const next = queue.shift() as Pending
    next.time = new Date(now).toISOString()
    yield next
    emitted++
  }
}

interface World {
  readonly random: Random
  readonly emit: <K extends EventType>(
    type: K,
    account: string,
    source: string,
    subject: string,
    data: EventData<K>,
    subtype?: string,
  ) => void
  /** The current simulated instant, RFC 3339. */
  readonly iso: () => string
}

const createAccount = (random: Random, name: string): Account => {
  const privateRegistry = random.chance(0.5)
    ? `${random.int(100_000_000_000, 999_999_999_999)}.dkr.ecr.us-east-1.amazonaws.com`
    : `${name}.azurecr.io`
  const repos = Array.from({ length: random.int(3, 6) }, (_, i): Repo => {
    const registry = i === 0 ? 'docker.io' : random.chance(0.6) ? privateRegistry : random.pick(REGISTRIES)
    const repository =
      registry === 'docker.io' && i === 0
        ? random.pick(PUBLIC_REPOSITORIES)
        : `${name}/${REPOSITORY_NAMES[i * 2 + random.int(0, 1)]}`
    const tagNames = TAG_NAMES.filter(() => random.chance(0.4))
    return {
      registry,
      repository,
      distro: random.pick(DISTROS),
      language: random.pick(LANGUAGES),
      tagNames: tagNames.length > 0 ? tagNames : ['latest'],
      baseFindings: [],
    }
  })
  return {
    name,
    repos,
    tags: new Map(),
    images: new Map(),
    archived: new Map(),
    scope: `${name}-production`,
    failureThreshold: random.int(10, 30),
    bundle: { id: random.uuid(), digest: `sha256:${random.hex(64)}`, strict: random.chance(0.5) },
  }
}

const accountAction = (world: World, account: Account) => {
  const { random } = world
  const unreferenced = unreferencedImages(account)
  if (account.tags.size === 0) return push(world, account)
  if (unreferenced.length > 8) return deleteImage(world, account, random.pick(unreferenced))
  const action = random.weighted({
    push: 30,
    vulnerabilities: 22,
    evaluation: 10,
    deleteTag: account.tags.size > 3 ? 3 : 0,
    deleteImage: unreferenced.length > 0 ? 4 : 0,
    archive: unreferenced.length > 0 || account.archived.size > 0 ? 1.5 : 0,
    bundle: 1,
    registryFailure: 2,
    analysisFailure: 2,
    compliance: 3,
    complianceTest: 0.3,
    snapshot: 1,
  })
  switch (action) {
    case 'push':
      return push(world, account)
    case 'vulnerabilities':
      return vulnerabilityUpdate(world, account)
    case 'evaluation': {
      const tag = random.pick([...account.tags.values()])
      const image = account.images.get(tag.digest)
      return image === undefined ? undefined : evaluate(world, account, tag, image)
    }
    case 'deleteTag':
      return deleteTag(world, account)
    case 'deleteImage':
      return deleteImage(world, account, random.pick(unreferenced))
    case 'archive':
      return archive(world, account, unreferenced)
    case 'bundle':
      return changeBundle(world, account)
    case 'registryFailure':
      return registryFailure(world, account)
    case 'analysisFailure':
      return analysisFailure(world, account)
    case 'compliance':
      return complianceScan(world, account)
    case 'complianceTest':
      return world.emit(
        'com.ibm.cloud.compliance.test',
        account.name,
        '/scc/event-notifications',
        account.scope,
        {
          action: 'test',
          summary: 'Test event from Security and Compliance Center',
          scope: account.scope,
        },
      )
    case 'snapshot':
      return snapshot(world, account)
  }
}

const unreferencedImages = (account: Account): Image[] => {
  const referenced = new Set([...account.tags.values()].map((t) => t.digest))
  return [...account.images.values()].filter((image) => !referenced.has(image.digest))
}

const buildImage = (world: World, repo: Repo): Image => {
  const { random } = world
  // A rebuild keeps most of its base's findings; criticals get fixed more often.
  const kept = repo.baseFindings.filter((f) => random.chance(f.severity === 'critical' ? 0.4 : 0.85))
  const fresh = Array.from(
    { length: repo.baseFindings.length === 0 ? findingCount(random) : random.int(0, 3) },
    () => drawFinding(random, repo.distro, repo.language),
  )
  const findings = dedupe([...kept, ...fresh])
  repo.baseFindings = findings
  return {
    digest: `sha256:${random.hex(64)}`,
    registry: repo.registry,
    repository: repo.repository,
    distro: repo.distro,
    imageId: random.hex(64),
    packageCount: random.int(40, 900),
    findings,
  }
}

const dedupe = (findings: readonly Finding[]): Finding[] => {
  const byKey = new Map<string, Finding>()
  for (const f of findings) byKey.set(findingKey(f), f)
  return [...byKey.values()]
}

const analyzed = (world: World, account: Account, image: Image, tag?: string) =>
  world.emit('herald.report.image.analyzed', account.name, '/engine/analyzer', image.digest, {
    digest: image.digest,
    registry: image.registry,
    repository: image.repository,
    ...(tag === undefined ? {} : { tag }),
    image_id: image.imageId,
    distro: { name: image.distro.name, version: image.distro.version },
    package_count: image.packageCount,
    analyzed_at: world.iso(),
    findings: image.findings,
  })

const push = (world: World, account: Account) => {
  const { random, emit } = world
  const repo = random.pick(account.repos)
  const tagName = random.pick(repo.tagNames)
  const ref = { registry: repo.registry, repository: repo.repository, tag: tagName }
  const key = fullTag(ref)
  const image = buildImage(world, repo)
  account.images.set(image.digest, image)
  const previous = account.tags.get(key)
  if (random.chance(0.3)) {
    emit('system.image_analysis.completed', account.name, '/engine/analyzer', key, {
      full_tag: key,
      digest: image.digest,
    })
  }
  emit('user.image.analysis.completed', account.name, '/engine/catalog', key, {
    digest: image.digest,
    full_tag: key,
    registry: repo.registry,
    repository: repo.repository,
    analysis_status: 'analyzed',
    last_analysis_status: 'analyzing',
  })
  analyzed(world, account, image, tagName)
  emit('herald.report.tag.digest_changed', account.name, '/engine/catalog', key, {
    ...ref,
    digest: image.digest,
    previous_digest: previous?.digest ?? null,
    detected_at: world.iso(),
  })
  const tag: Tag = previous ?? { ...ref, digest: image.digest }
  tag.digest = image.digest
  account.tags.set(key, tag)
  evaluate(world, account, tag, image)
}

const vulnerabilityUpdate = (world: World, account: Account) => {
  const { random, emit } = world
  const tag = random.pick([...account.tags.values()])
  const image = account.images.get(tag.digest)
  if (image === undefined) return
  const repo = account.repos.find((r) => r.registry === image.registry && r.repository === image.repository)
  const added = Array.from({ length: random.int(1, 3) }, () =>
    drawFinding(random, image.distro, repo?.language ?? 'npm'),
  ).filter((f) => !image.findings.some((g) => findingKey(g) === findingKey(f)))
  const removed = image.findings.filter(() => random.chance(0.05))
  const removedKeys = new Set(removed.map(findingKey))
  const updated: Finding[] = []
  const findings = image.findings
    .filter((f) => !removedKeys.has(findingKey(f)))
    .map((f) => {
      if (!random.chance(0.08)) return f
      // A fix published, or the severity re-scored upward.
      const changed: Finding =
        f.fix_version === null
          ? { ...f, fix_version: semver(random) }
          : {
              ...f,
              severity: f.severity === 'medium' ? 'high' : f.severity === 'high' ? 'critical' : f.severity,
            }
      updated.push(changed)
      return changed
    })
  // Anchore notifies only on a difference.
  if (added.length === 0 && removed.length === 0 && updated.length === 0) return
  image.findings = dedupe([...findings, ...added])
  const key = fullTag(tag)
  emit('user.checks.tag.vulnerabilities.update', account.name, '/engine/catalog', key, {
    full_tag: key,
    digest: image.digest,
    added,
    removed,
    updated,
  })
  analyzed(world, account, image, tag.tag)
  if (random.chance(0.7)) evaluate(world, account, tag, image)
}

const evaluate = (world: World, account: Account, tag: Tag, image: Image) => {
  const { random, emit } = world
  const reasons: Evaluation['reasons'] = []
  for (const f of image.findings) {
    const stop =
      f.severity === 'critical' ||
      f.kev ||
      (account.bundle.strict && f.severity === 'high' && f.fix_version !== null)
    const warn = !stop && f.severity === 'high'
    if (!stop && !warn) continue
    reasons.push({
      gate: 'vulnerabilities',
      trigger: 'package',
      action: stop ? 'stop' : 'warn',
      message: `${f.severity.toUpperCase()} Vulnerability found in ${f.type} package - ${f.package} (${f.id}${f.fix_version === null ? '' : ` - fixed in ${f.fix_version}`})`,
    })
    if (reasons.length >= 10) break
  }
  const final_action = reasons.some((r) => r.action === 'stop') ? 'stop' : reasons.length > 0 ? 'warn' : 'go'
  const evaluation: Evaluation = {
    status: final_action === 'stop' ? 'fail' : 'pass',
    final_action,
    bundle_id: account.bundle.id,
    bundle_digest: account.bundle.digest,
    evaluated_at: world.iso(),
    reasons,
  }
  const key = fullTag(tag)
  emit('herald.report.policy.evaluated', account.name, '/engine/policy_engine', key, {
    registry: tag.registry,
    repository: tag.repository,
    tag: tag.tag,
    digest: image.digest,
    evaluation_id: random.hex(32),
    ...evaluation,
  })
  if (tag.lastEval !== undefined && tag.lastEval.status !== evaluation.status) {
    emit('user.checks.tag.policy_evaluation.update', account.name, '/engine/catalog', key, {
      full_tag: key,
      digest: image.digest,
      curr_eval: evaluation,
      last_eval: tag.lastEval,
    })
  }
  tag.lastEval = evaluation
}

const deleteTag = (world: World, account: Account) => {
  const tag = world.random.pick([...account.tags.values()])
  const key = fullTag(tag)
  account.tags.delete(key)
  world.emit('herald.report.tag.deleted', account.name, '/engine/catalog', key, {
    registry: tag.registry,
    repository: tag.repository,
    tag: tag.tag,
    digest: tag.digest,
  })
}

const deleteImage = (world: World, account: Account, image: Image) => {
  account.images.delete(image.digest)
  world.emit('herald.report.image.deleted', account.name, '/engine/catalog', image.digest, {
    digest: image.digest,
    registry: image.registry,
    repository: image.repository,
  })
}

const archive = (world: World, account: Account, unreferenced: readonly Image[]) => {
  const { random, emit } = world
  const source = '/engine/catalog'
  if (account.archived.size > 0 && (unreferenced.length === 0 || random.chance(0.4))) {
    const image = random.pick([...account.archived.values()])
    const failed = random.chance(0.1)
    if (random.chance(0.5)) {
      if (failed) {
        const error = 'object store unavailable'
        return emit('system.image_analysis.restore_from_archive_failed', account.name, source, image.digest, {
          digest: image.digest,
          error,
        })
      }
      account.archived.delete(image.digest)
      account.images.set(image.digest, image)
      emit('system.image_analysis.restored_from_archive', account.name, source, image.digest, {
        digest: image.digest,
      })
      return analyzed(world, account, image)
    }
    if (failed) {
      return emit(
        'system.analysis_archive.archived_image_delete_failed',
        account.name,
        source,
        image.digest,
        {
          digest: image.digest,
          error: 'object store unavailable',
        },
      )
    }
    account.archived.delete(image.digest)
    return emit('system.analysis_archive.archived_image_deleted', account.name, source, image.digest, {
      digest: image.digest,
      task_id: random.uuid(),
    })
  }
  const image = random.pick(unreferenced)
  if (random.chance(0.1)) {
    return emit('system.analysis_archive.image_archive_failed', account.name, source, image.digest, {
      digest: image.digest,
      error: 'archive bucket not writable',
    })
  }
  account.archived.set(image.digest, image)
  emit('system.analysis_archive.image_archived', account.name, source, image.digest, {
    digest: image.digest,
    task_id: random.uuid(),
  })
  // Archived analyses leave the working set, so they stop being current in reports.
  deleteImage(world, account, image)
}

const changeBundle = (world: World, account: Account) => {
  const { random, emit } = world
  const previous = account.bundle
  if (random.chance(0.5)) {
    account.bundle = { id: random.uuid(), digest: `sha256:${random.hex(64)}`, strict: !previous.strict }
    emit('user.policy.active.updated', account.name, '/engine/catalog', account.bundle.id, {
      current_policy_bundle_id: account.bundle.id,
      last_policy_bundle_id: previous.id,
    })
    return
  }
  account.bundle = { id: previous.id, digest: `sha256:${random.hex(64)}`, strict: !previous.strict }
  emit('user.policy.active.content_change', account.name, '/engine/catalog', previous.id, {
    policy_id: previous.id,
    current_policy_bundle_digest: account.bundle.digest,
    last_policy_bundle_digest: previous.digest,
  })
}

const registryFailure = (world: World, account: Account) => {
  const { random, emit } = world
  const repo = random.pick(account.repos)
  const ref = fullTag({ ...repo, tag: random.pick(repo.tagNames) })
  switch (random.weighted({ listTags: 3, lookup: 2, manifest: 1 })) {
    case 'listTags':
      return emit(
        'system.repository.list_tags_fail',
        account.name,
        '/engine/catalog',
        `${repo.registry}/${repo.repository}`,
        {
          registry: repo.registry,
          repository: repo.repository,
          error: random.pick(ERRORS.registry),
        },
      )
    case 'lookup':
      return emit('system.image_analysis.registry_lookup_failed', account.name, '/engine/catalog', ref, {
        image_reference: ref,
        registry: repo.registry,
        error: random.pick(ERRORS.manifest),
      })
    case 'manifest':
      return emit('system.image_analysis.manifest_parse_fail', account.name, '/engine/catalog', ref, {
        full_tag: ref,
        error: random.pick(ERRORS.manifest),
      })
  }
}

const analysisFailure = (world: World, account: Account) => {
  const { random, emit } = world
  const repo = random.pick(account.repos)
  const key = fullTag({ ...repo, tag: random.pick(repo.tagNames) })
  const digest = `sha256:${random.hex(64)}`
  const error = random.pick(ERRORS.analysis)
  emit('user.image.analysis.failed', account.name, '/engine/catalog', key, {
    full_tag: key,
    digest,
    registry: repo.registry,
    repository: repo.repository,
    error,
  })
  const type = random.pick([
    'system.image_analysis.failed',
    'system.image_analysis.catalog_save_failed',
    'system.image_analysis.policy_engine_load_failed',
  ] as const)
  emit(type, account.name, '/engine/analyzer', digest, { digest, error, full_tag: key })
}

const complianceScan = (world: World, account: Account) => {
  const { random, emit } = world
  const total = random.int(120, 400)
  const failed = random.int(0, Math.round(total * 0.15))
  const unable = random.int(0, 5)
  const end = world.iso()
  const started = new Date(Date.parse(end) - random.int(60, 1_800) * 1_000).toISOString()
  const profile = random.pick(PROFILES)
  const common = {
    scope: account.scope,
    profile,
    start_time: started,
    end_time: end,
    scan_id: random.uuid(),
    controls: { total, passed: total - failed - unable, failed, unable_to_perform: unable },
    failure_threshold: account.failureThreshold,
  }
  const source = '/scc/posture'
  emit(
    'com.ibm.cloud.compliance.posture',
    account.name,
    source,
    account.scope,
    {
      ...common,
      action: 'scan-completed',
      summary: `Scan of ${account.scope} against ${profile} completed: ${total - failed - unable} passed, ${failed} failed.`,
    },
    'posture-scan-completed',
  )
  if (failed >= account.failureThreshold) {
    emit(
      'com.ibm.cloud.compliance.posture',
      account.name,
      source,
      account.scope,
      {
        ...common,
        action: 'failure-threshold-exceeded',
        summary: `${failed} controls failed in ${account.scope}, at or above the threshold of ${account.failureThreshold}.`,
      },
      'posture-scan-failure-threshold-limit-exceeds',
    )
  }
  if (random.chance(0.3)) {
    const kind = random.pick(['is.instance', 'cloud-object-storage', 'kms', 'iam-identity'])
    emit(
      'com.ibm.cloud.compliance.posture',
      account.name,
      source,
      account.scope,
      {
        ...common,
        action: 'new-resource-found',
        summary: `A new ${kind} resource was found in ${account.scope}.`,
        resources: [
          {
            id: `crn:v1:bluemix:public:${kind}:us-south:a/${random.hex(32)}::`,
            name: `${kind}-${random.hex(6)}`,
            type: kind,
          },
        ],
      },
      'posture-scan-new-resource-in-inventory',
    )
  }
}

const snapshot = (world: World, account: Account): void =>
  world.emit('herald.report.inventory.snapshot', account.name, '/engine/catalog', account.name, {
    taken_at: world.iso(),
    images: [...account.images.values()].map((i) => ({
      digest: i.digest,
      registry: i.registry,
      repository: i.repository,
    })),
    tags: [...account.tags.values()].map((t) => ({
      registry: t.registry,
      repository: t.repository,
      tag: t.tag,
      digest: t.digest,
    })),
  })

const systemAction = (world: World) => {
  const { random, emit } = world
  const account = ADMIN_ACCOUNT
  switch (random.weighted({ feeds: 6, service: 1, authz: 0.3, wisdom: 0.2 })) {
    case 'feeds':
      return feedSync(world)
    case 'service': {
      const type = random.pick([
        'system.service.state_transition.down',
        'system.service.state_transition.orphaned',
        'system.service.removed',
      ] as const)
      const service = random.pick(SERVICES)
      const host = `${service}-${random.hex(6)}`
      const url = `http://${host}:8228`
      return emit(type, account, '/engine/services', url, {
        service_name: service,
        host_id: host,
        url,
        error: random.pick(ERRORS.service),
      })
    }
    case 'authz':
      return emit('system.service.authz_plugin_healthcheck_failed', account, '/engine/services', 'apiext', {
        service_name: 'apiext',
        host_id: `apiext-${random.hex(6)}`,
        plugin: 'external-authorizer',
        error: 'health check returned 503',
      })
    case 'wisdom':
      return emit('system.test.random_wisdom', account, '/engine/test', 'wisdom', {
        message: random.pick(SAYINGS),
      })
  }
}

const feedSync = (world: World) => {
  const { random, emit } = world
  const account = ADMIN_ACCOUNT
  const source = '/engine/feeds'
  const feeds = Object.keys(FEEDS).filter((f) => f === 'vulnerabilities' || random.chance(0.5))
  const failing = random.chance(0.15) ? random.pick(feeds) : undefined
  emit('system.feeds.sync.started', account, source, 'feeds', { feeds })
  let total = 0
  for (const feed of feeds) {
    emit('system.feeds.sync.feed_started', account, source, feed, { feed })
    const groups = (FEEDS[feed] ?? []).filter(() => random.chance(0.5)).slice(0, 3)
    const failedGroup = feed === failing ? (groups.at(-1) ?? FEEDS[feed]?.[0]) : undefined
    let seconds = 0
    for (const group of groups.length > 0 ? groups : (FEEDS[feed] ?? []).slice(0, 1)) {
      const subject = `${feed}/${group}`
      emit('system.feeds.sync.group_started', account, source, subject, { feed, group })
      const duration = Math.round(random.next() * 1_200) / 10
      seconds += duration
      if (group === failedGroup) {
        emit('system.feeds.sync.group_failed', account, source, subject, {
          feed,
          group,
          error: random.pick(ERRORS.feed),
        })
      } else {
        emit('system.feeds.sync.group_completed', account, source, subject, {
          feed,
          group,
          records_updated: random.int(0, 5_000),
          duration_seconds: duration,
        })
      }
    }
    total += seconds
    if (feed === failing) {
      emit('system.feeds.sync.feed_failed', account, source, feed, {
        feed,
        error: `group ${failedGroup} failed`,
      })
    } else {
      emit('system.feeds.sync.feed_completed', account, source, feed, {
        feed,
        duration_seconds: Math.round(seconds * 10) / 10,
      })
    }
  }
  if (failing !== undefined) {
    emit('system.feeds.sync.failed', account, source, 'feeds', {
      feeds,
      error: `feed ${failing} failed to sync`,
    })
  } else {
    emit('system.feeds.sync.completed', account, source, 'feeds', {
      feeds,
      duration_seconds: Math.round(total * 10) / 10,
    })
  }
}
