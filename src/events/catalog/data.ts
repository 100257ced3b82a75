import type * as t from 'io-ts'
import {
  Annotations,
  boundedText,
  Count,
  Cvss,
  Digest,
  Flag,
  list,
  nullable,
  oneOf,
  Seconds,
  struct,
  Text,
  Timestamp,
  Uuid,
} from './formats.ts'

/**
 * The `data` of every catalog event type, as io-ts codecs: Herald's in-process truth. Each
 * has a twin in `schemas/events/<type>.schema.json`; the agreement tests prove they accept
 * and reject the same documents. Built once at module load: decoding never allocates codecs.
 *
 * Naming: `full_tag` is an image reference with its tag (`docker.io/library/nginx:latest`,
 * Anchore's "fulltag"); `tag` alone is the tag name (`latest`) beside `registry` and
 * `repository`. Every error-level type carries its human-readable reason in `error`.
 */

export const Severity = oneOf(['critical', 'high', 'medium', 'low', 'negligible', 'unknown'], 'Severity')
export type Severity = t.TypeOf<typeof Severity>
export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'negligible', 'unknown']

export const PolicyStatus = oneOf(['pass', 'fail'], 'PolicyStatus')
export const GateAction = oneOf(['go', 'warn', 'stop'], 'GateAction')
const AnalysisStatus = oneOf(['not_analyzed', 'analyzing', 'analyzed', 'analysis_failed'], 'AnalysisStatus')

/** One vulnerability match: a vulnerability in one package of one image. */
export const Finding = struct(
  'Finding',
  {
    id: Text,
    severity: Severity,
    package: Text,
    version: Text,
    type: Text,
    fix_version: nullable(Text, 'a non-empty string'),
    kev: Flag,
  },
  {
    cvss: nullable(Cvss, 'a CVSS score from 0 to 10'),
    url: Text,
    feed_group: Text,
    package_path: Text,
  },
)
export type Finding = t.TypeOf<typeof Finding>

const Findings = list(Finding, 'findings')

export const PolicyReason = struct(
  'PolicyReason',
  { gate: Text, trigger: Text, action: GateAction, message: Text },
  { trigger_id: Text, rule_id: Text },
)

const PolicyEvaluation = struct(
  'PolicyEvaluation',
  { status: PolicyStatus },
  {
    final_action: GateAction,
    bundle_id: Text,
    bundle_digest: Text,
    evaluated_at: Timestamp,
    reasons: list(PolicyReason, 'policy reasons'),
  },
)

const Feeds = list(Text, 'feed names')

// --- Anchore engine: user.* -------------------------------------------------------------

export const UserImageAnalysisCompleted = struct(
  'UserImageAnalysisCompleted',
  { digest: Digest },
  {
    full_tag: Text,
    registry: Text,
    repository: Text,
    analysis_status: AnalysisStatus,
    last_analysis_status: AnalysisStatus,
    annotations: Annotations,
  },
)

export const UserImageAnalysisFailed = struct(
  'UserImageAnalysisFailed',
  { full_tag: Text, error: Text },
  { digest: Digest, registry: Text, repository: Text, annotations: Annotations },
)

export const UserTagVulnerabilitiesUpdate = struct(
  'UserTagVulnerabilitiesUpdate',
  { full_tag: Text, digest: Digest, added: Findings, removed: Findings, updated: Findings },
  { annotations: Annotations },
)

export const UserTagPolicyEvaluationUpdate = struct(
  'UserTagPolicyEvaluationUpdate',
  { full_tag: Text, digest: Digest, curr_eval: PolicyEvaluation },
  { last_eval: PolicyEvaluation, annotations: Annotations },
)

export const UserPolicyActiveUpdated = struct(
  'UserPolicyActiveUpdated',
  { current_policy_bundle_id: Text },
  { last_policy_bundle_id: nullable(Text, 'a non-empty string') },
)

export const UserPolicyActiveContentChange = struct(
  'UserPolicyActiveContentChange',
  { policy_id: Text, current_policy_bundle_digest: Text },
  { last_policy_bundle_digest: nullable(Text, 'a non-empty string') },
)

// --- Anchore engine: system.* -----------------------------------------------------------

export const DigestFailure = struct('DigestFailure', { digest: Digest, error: Text }, { full_tag: Text })
export const DigestOnly = struct('DigestOnly', { digest: Digest }, {})
export const TagFailure = struct('TagFailure', { full_tag: Text, error: Text }, { digest: Digest })

export const RegistryLookupFailed = struct(
  'RegistryLookupFailed',
  { image_reference: Text, error: Text },
  { registry: Text },
)

export const SystemImageAnalysisCompleted = struct(
  'SystemImageAnalysisCompleted',
  { full_tag: Text, digest: Digest },
  { annotations: Annotations },
)

export const ArchiveTask = struct('ArchiveTask', { digest: Digest }, { task_id: Text })
export const ArchiveTaskFailure = struct(
  'ArchiveTaskFailure',
  { digest: Digest, error: Text },
  { task_id: Text },
)

export const ListTagsFailed = struct('ListTagsFailed', { registry: Text, repository: Text, error: Text }, {})

export const FeedsSyncStarted = struct('FeedsSyncStarted', { feeds: Feeds }, {})
export const FeedsSyncCompleted = struct(
  'FeedsSyncCompleted',
  { feeds: Feeds },
  { duration_seconds: Seconds },
)
export const FeedsSyncFailed = struct('FeedsSyncFailed', { feeds: Feeds, error: Text }, {})
export const FeedSyncStarted = struct('FeedSyncStarted', { feed: Text }, {})
export const FeedSyncCompleted = struct('FeedSyncCompleted', { feed: Text }, { duration_seconds: Seconds })
export const FeedSyncFailed = struct('FeedSyncFailed', { feed: Text, error: Text }, {})
export const FeedGroupSyncStarted = struct('FeedGroupSyncStarted', { feed: Text, group: Text }, {})
export const FeedGroupSyncCompleted = struct(
  'FeedGroupSyncCompleted',
  { feed: Text, group: Text },
  { records_updated: Count, duration_seconds: Seconds },
)
export const FeedGroupSyncFailed = struct('FeedGroupSyncFailed', { feed: Text, group: Text, error: Text }, {})

export const ServiceStateTransition = struct(
  'ServiceStateTransition',
  { service_name: Text, host_id: Text, error: Text },
  { url: Text },
)

export const AuthzPluginHealthcheckFailed = struct(
  'AuthzPluginHealthcheckFailed',
  { service_name: Text, host_id: Text, plugin: Text, error: Text },
  {},
)

export const RandomWisdom = struct('RandomWisdom', { message: Text }, {})

// --- Herald's own system events ---------------------------------------------------------

/** The endpoint types of notification configurations. */
const Endpoint = oneOf(['slack', 'teams', 'email', 'webhook', 'github', 'jira'], 'Endpoint')

/** The most characters of `last_error`: channels summarise errors to far less; this keeps events small. */
const MAX_LAST_ERROR_LENGTH = 1000

export const NotificationsConfigurationDisabled = struct(
  'NotificationsConfigurationDisabled',
  { configuration_id: Uuid, account: Text, endpoint: Endpoint, reason: Text, failing_since: Timestamp },
  { last_error: boundedText(MAX_LAST_ERROR_LENGTH) },
)

// --- IBM Security and Compliance Center -------------------------------------------------

const ControlCounts = struct(
  'ControlCounts',
  { total: Count, passed: Count, failed: Count },
  { unable_to_perform: Count },
)

const InventoryResource = struct('InventoryResource', { id: Text }, { name: Text, type: Text })

const complianceFields = {
  scan_id: Text,
  controls: ControlCounts,
  failure_threshold: Count,
  resources: list(InventoryResource, 'resources'),
}

export const CompliancePosture = struct(
  'CompliancePosture',
  { action: Text, summary: Text, scope: Text, profile: Text, start_time: Timestamp },
  { end_time: Timestamp, ...complianceFields },
)

export const ComplianceTest = struct(
  'ComplianceTest',
  { action: Text, summary: Text },
  { scope: Text, profile: Text, start_time: Timestamp, end_time: Timestamp, ...complianceFields },
)

// --- Herald's report-feeding types ------------------------------------------------------

const Distro = struct('Distro', { name: Text, version: Text }, {})

export const ReportImageAnalyzed = struct(
  'ReportImageAnalyzed',
  {
    digest: Digest,
    registry: Text,
    repository: Text,
    distro: Distro,
    package_count: Count,
    findings: Findings,
  },
  { tag: Text, image_id: Text, analyzed_at: Timestamp, annotations: Annotations },
)

export const ReportTagDigestChanged = struct(
  'ReportTagDigestChanged',
  { registry: Text, repository: Text, tag: Text, digest: Digest },
  { previous_digest: nullable(Digest, 'an image digest such as sha256:<hex>'), detected_at: Timestamp },
)

export const ReportImageDeleted = struct(
  'ReportImageDeleted',
  { digest: Digest },
  { registry: Text, repository: Text },
)

export const ReportTagDeleted = struct(
  'ReportTagDeleted',
  { registry: Text, repository: Text, tag: Text },
  { digest: Digest },
)

export const ReportPolicyEvaluated = struct(
  'ReportPolicyEvaluated',
  {
    registry: Text,
    repository: Text,
    tag: Text,
    digest: Digest,
    bundle_id: Text,
    bundle_digest: Text,
    status: PolicyStatus,
    reasons: list(PolicyReason, 'policy reasons'),
  },
  { final_action: GateAction, evaluation_id: Text, evaluated_at: Timestamp },
)

const InventoryImage = struct('InventoryImage', { digest: Digest, registry: Text, repository: Text }, {})
const InventoryTag = struct(
  'InventoryTag',
  { registry: Text, repository: Text, tag: Text, digest: Digest },
  {},
)

export const ReportInventorySnapshot = struct(
  'ReportInventorySnapshot',
  {
    taken_at: Timestamp,
    images: list(InventoryImage, 'images'),
    tags: list(InventoryTag, 'tags'),
  },
  {},
)
