import { readFileSync } from 'node:fs'
import type * as t from 'io-ts'
import type { Level } from '../cloudevent.ts'
import * as data from './data.ts'

/** A JSON Schema document as read from `schemas/`. */
export type JsonSchema = Readonly<Record<string, unknown>>

/** A subtype of an event type (IBM style): its own default level and meaning. */
export interface EventSubtype {
  readonly subtype: string
  readonly level: Level
  readonly description: string
}

interface Definition {
  readonly level: Level
  readonly resourceType: string
  readonly description: string
  readonly dataCodec: t.Mixed
  readonly subtypes?: readonly EventSubtype[]
}

const info = 'info' as const
const error = 'error' as const

// Types, levels, resource types and messages of the Anchore engine's event classes
// (anchore_engine/subsys/events/types.py); payload fields are Herald's normalised form.
const definitions = {
  'user.image.analysis.completed': {
    level: info,
    resourceType: 'image_tag',
    description: 'Image analysis available: an image was analyzed and its content can be queried.',
    dataCodec: data.UserImageAnalysisCompleted,
  },
  'user.image.analysis.failed': {
    level: error,
    resourceType: 'image_tag',
    description: 'Failed to analyze image.',
    dataCodec: data.UserImageAnalysisFailed,
  },
  'user.checks.tag.vulnerabilities.update': {
    level: info,
    resourceType: 'image_tag',
    description:
      'Vulnerability update detected for a tagged image: findings were added, removed or updated since the last scan.',
    dataCodec: data.UserTagVulnerabilitiesUpdate,
  },
  'user.checks.tag.policy_evaluation.update': {
    level: info,
    resourceType: 'image_tag',
    description:
      'Policy evaluation update detected for a tagged image: the result differs from the previous evaluation.',
    dataCodec: data.UserTagPolicyEvaluationUpdate,
  },
  'user.policy.active.updated': {
    level: info,
    resourceType: 'policy_bundle',
    description: 'Active policy bundle updated to a different bundle.',
    dataCodec: data.UserPolicyActiveUpdated,
  },
  'user.policy.active.content_change': {
    level: info,
    resourceType: 'policy_bundle',
    description: 'Active policy bundle content changed.',
    dataCodec: data.UserPolicyActiveContentChange,
  },
  'system.image_analysis.registry_lookup_failed': {
    level: error,
    resourceType: 'image_reference',
    description: 'Referenced image not found in registry.',
    dataCodec: data.RegistryLookupFailed,
  },
  'system.image_analysis.failed': {
    level: error,
    resourceType: 'image_digest',
    description: 'Failed to analyze image.',
    dataCodec: data.DigestFailure,
  },
  'system.image_analysis.completed': {
    level: info,
    resourceType: 'image_tag',
    description: 'Image successfully analyzed.',
    dataCodec: data.SystemImageAnalysisCompleted,
  },
  'system.image_analysis.catalog_save_failed': {
    level: error,
    resourceType: 'image_digest',
    description: 'Failed to load image analysis from analyzer to catalog.',
    dataCodec: data.DigestFailure,
  },
  'system.image_analysis.policy_engine_load_failed': {
    level: error,
    resourceType: 'image_digest',
    description: 'Failed to load image analysis from analyzer to policy engine.',
    dataCodec: data.DigestFailure,
  },
  'system.image_analysis.restored_from_archive': {
    level: info,
    resourceType: 'image_digest',
    description: 'Archived image restored to active images.',
    dataCodec: data.DigestOnly,
  },
  'system.image_analysis.restore_from_archive_failed': {
    level: error,
    resourceType: 'image_digest',
    description: 'Archived image restore to active images failed.',
    dataCodec: data.DigestFailure,
  },
  'system.image_analysis.manifest_parse_fail': {
    level: error,
    resourceType: 'image_tag',
    description: 'Failed to parse image manifest for tag.',
    dataCodec: data.TagFailure,
  },
  'system.analysis_archive.image_archived': {
    level: info,
    resourceType: 'image_digest',
    description: 'Analyzed image added to archive.',
    dataCodec: data.ArchiveTask,
  },
  'system.analysis_archive.image_archive_failed': {
    level: error,
    resourceType: 'image_digest',
    description: 'Analyzed image migration to archive failed.',
    dataCodec: data.ArchiveTaskFailure,
  },
  'system.analysis_archive.archived_image_deleted': {
    level: info,
    resourceType: 'image_digest',
    description: 'Archived image analysis deleted.',
    dataCodec: data.ArchiveTask,
  },
  'system.analysis_archive.archived_image_delete_failed': {
    level: error,
    resourceType: 'image_digest',
    description: 'Archived image analysis deletion failed.',
    dataCodec: data.ArchiveTaskFailure,
  },
  'system.repository.list_tags_fail': {
    level: error,
    resourceType: 'repository',
    description: 'Failed to list tags in a watched repository.',
    dataCodec: data.ListTagsFailed,
  },
  'system.feeds.sync.started': {
    level: info,
    resourceType: 'feeds',
    description: 'Feeds sync task started.',
    dataCodec: data.FeedsSyncStarted,
  },
  'system.feeds.sync.completed': {
    level: info,
    resourceType: 'feeds',
    description: 'Feeds sync task completed.',
    dataCodec: data.FeedsSyncCompleted,
  },
  'system.feeds.sync.failed': {
    level: error,
    resourceType: 'feeds',
    description: 'Feeds sync task failed.',
    dataCodec: data.FeedsSyncFailed,
  },
  'system.feeds.sync.feed_started': {
    level: info,
    resourceType: 'feed',
    description: 'Feed sync started.',
    dataCodec: data.FeedSyncStarted,
  },
  'system.feeds.sync.feed_completed': {
    level: info,
    resourceType: 'feed',
    description: 'Feed sync completed.',
    dataCodec: data.FeedSyncCompleted,
  },
  'system.feeds.sync.feed_failed': {
    level: error,
    resourceType: 'feed',
    description: 'Feed sync failed.',
    dataCodec: data.FeedSyncFailed,
  },
  'system.feeds.sync.group_started': {
    level: info,
    resourceType: 'feed_group',
    description: 'Feed group sync started.',
    dataCodec: data.FeedGroupSyncStarted,
  },
  'system.feeds.sync.group_completed': {
    level: info,
    resourceType: 'feed_group',
    description: 'Feed group sync completed.',
    dataCodec: data.FeedGroupSyncCompleted,
  },
  'system.feeds.sync.group_failed': {
    level: error,
    resourceType: 'feed_group',
    description: 'Feed group sync failed.',
    dataCodec: data.FeedGroupSyncFailed,
  },
  'system.service.state_transition.orphaned': {
    level: error,
    resourceType: 'service',
    description: 'Service orphaned: it stopped reporting and no other instance took over its work.',
    dataCodec: data.ServiceStateTransition,
  },
  'system.service.state_transition.down': {
    level: error,
    resourceType: 'service',
    description: 'Service down.',
    dataCodec: data.ServiceStateTransition,
  },
  'system.service.removed': {
    level: error,
    resourceType: 'service',
    description: 'Service removed.',
    dataCodec: data.ServiceStateTransition,
  },
  'system.service.authz_plugin_healthcheck_failed': {
    level: error,
    resourceType: 'service',
    description: 'Configured authorization plugin failing its health check.',
    dataCodec: data.AuthzPluginHealthcheckFailed,
  },
  'system.test.random_wisdom': {
    level: info,
    resourceType: 'wisdom',
    description: 'Test event with a random quotation, for trying notification endpoints.',
    dataCodec: data.RandomWisdom,
  },
  // Herald's own: what the deliverer tells the admin account.
  'system.notifications.configuration_disabled': {
    level: error,
    resourceType: 'notification_configuration',
    description:
      'Herald disabled a notification configuration because every delivery failed for the sustained-failure period, or its endpoint answered 410 Gone.',
    dataCodec: data.NotificationsConfigurationDisabled,
  },
  'com.ibm.cloud.compliance.posture': {
    level: info,
    resourceType: 'posture_scan',
    description: 'A Security and Compliance Center posture scan event; the subtype says which.',
    dataCodec: data.CompliancePosture,
    subtypes: [
      { subtype: 'posture-scan-completed', level: info, description: 'A scan is complete.' },
      {
        subtype: 'posture-scan-failure-threshold-limit-exceeds',
        level: 'warning',
        description: 'The specified threshold of failed controls was met.',
      },
      {
        subtype: 'posture-scan-new-resource-in-inventory',
        level: info,
        description: 'A new resource was found in the inventory.',
      },
    ],
  },
  'com.ibm.cloud.compliance.test': {
    level: info,
    resourceType: 'compliance_test',
    description: 'Tests the connection to a notification endpoint; carries no finding.',
    dataCodec: data.ComplianceTest,
  },
  'herald.report.image.analyzed': {
    level: info,
    resourceType: 'image_digest',
    description:
      "An image's analysis with its complete current vulnerability report; a later one for the same digest replaces it.",
    dataCodec: data.ReportImageAnalyzed,
  },
  'herald.report.tag.digest_changed': {
    level: info,
    resourceType: 'image_tag',
    description: 'A tag now points at a different image digest (or at one for the first time).',
    dataCodec: data.ReportTagDigestChanged,
  },
  'herald.report.image.deleted': {
    level: info,
    resourceType: 'image_digest',
    description: 'An image was deleted; its history stays in reports, its current rows become inactive.',
    dataCodec: data.ReportImageDeleted,
  },
  'herald.report.tag.deleted': {
    level: info,
    resourceType: 'image_tag',
    description: 'A tag was deleted (no longer watched); its history stays in reports.',
    dataCodec: data.ReportTagDeleted,
  },
  'herald.report.policy.evaluated': {
    level: info,
    resourceType: 'image_tag',
    description:
      'A policy evaluation of a tagged image, with the bundle used and the reasons for its result.',
    dataCodec: data.ReportPolicyEvaluated,
  },
  'herald.report.inventory.snapshot': {
    level: info,
    resourceType: 'account',
    description:
      "The full current set of an account's images and tags; anything it does not list is no longer current.",
    dataCodec: data.ReportInventorySnapshot,
  },
} as const satisfies Readonly<Record<string, Definition>>

type Definitions = typeof definitions

/** Every event type Herald accepts. */
export type EventType = keyof Definitions

/** The decoded `data` of events of type `K`. */
export type EventData<K extends EventType> = t.TypeOf<Definitions[K]['dataCodec']>

/** One catalog entry: what `GET /v1/notifications/event-types` serves, plus the codec. */
export interface EventTypeEntry<K extends EventType = EventType> {
  readonly type: K
  readonly level: Level
  readonly resourceType: string
  readonly description: string
  readonly dataCodec: Definitions[K]['dataCodec']
  /** The wire contract of `data`: `schemas/events/<type>.schema.json`, as stored. */
  readonly schema: JsonSchema
  readonly subtypes?: readonly EventSubtype[]
}

const schemasRoot = new URL('../../../schemas/', import.meta.url)

// The files are the wire contract (and what the schema registry holds), so the catalog serves
// exactly them rather than a copy that could drift.
const readSchema = (relative: string): JsonSchema =>
  JSON.parse(readFileSync(new URL(relative, schemasRoot), 'utf8')) as JsonSchema

/** Path of the schema file of an event type's `data`, relative to `schemas/`. */
export const dataSchemaFile = (type: EventType): string => `events/${type}.schema.json`

/** The CloudEvents 1.0 envelope with Herald's extensions: `schemas/cloudevent.schema.json`. */
export const envelopeSchema: JsonSchema = readSchema('cloudevent.schema.json')

/**
 * The event catalog, keyed by type. Entries are built once at start-up.
 *
 * @example
 * const entry = eventCatalog['user.image.analysis.failed']
 * entry.level // 'error'
 * entry.dataCodec.is({ full_tag: 'docker.io/library/nginx:latest', error: 'timeout' }) // true
 */
export const eventCatalog: { readonly [K in EventType]: EventTypeEntry<K> } = Object.fromEntries(
  (Object.keys(definitions) as EventType[]).map((type) => {
    const definition: Definition = definitions[type]
    return [type, { type, ...definition, schema: readSchema(dataSchemaFile(type)) }]
  }),
) as { readonly [K in EventType]: EventTypeEntry<K> }

/** Every entry, in catalog order (Anchore user.*, system.*, Herald's system.*, IBM, Herald reports). */
export const eventTypes: readonly EventTypeEntry[] = Object.values(eventCatalog)

const byType: ReadonlyMap<string, EventTypeEntry> = new Map(eventTypes.map((entry) => [entry.type, entry]))

/** The entry of `type`, or `undefined` for a type the catalog does not know. */
export const lookupEventType = (type: string): EventTypeEntry | undefined => byType.get(type)

export const isEventType = (type: string): type is EventType => byType.has(type)
