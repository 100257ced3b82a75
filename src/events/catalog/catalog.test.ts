import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { describe, it } from 'node:test'
import {
  dataSchemaFile,
  envelopeSchema,
  eventCatalog,
  eventTypes,
  isEventType,
  lookupEventType,
} from './catalog.ts'

// Every event class registered in the Anchore engine (anchore_engine/subsys/events/types.py,
// type = category.subcategory.event_type), with its level and resource type.
const ANCHORE_ENGINE_TYPES: readonly (readonly [string, 'info' | 'error', string])[] = [
  ['user.checks.tag.vulnerabilities.update', 'info', 'image_tag'],
  ['user.checks.tag.policy_evaluation.update', 'info', 'image_tag'],
  ['user.image.analysis.failed', 'error', 'image_tag'],
  ['user.image.analysis.completed', 'info', 'image_tag'],
  ['user.policy.active.updated', 'info', 'policy_bundle'],
  ['user.policy.active.content_change', 'info', 'policy_bundle'],
  ['system.image_analysis.registry_lookup_failed', 'error', 'image_reference'],
  ['system.image_analysis.failed', 'error', 'image_digest'],
  ['system.image_analysis.completed', 'info', 'image_tag'],
  ['system.image_analysis.catalog_save_failed', 'error', 'image_digest'],
  ['system.image_analysis.policy_engine_load_failed', 'error', 'image_digest'],
  ['system.image_analysis.restored_from_archive', 'info', 'image_digest'],
  ['system.image_analysis.restore_from_archive_failed', 'error', 'image_digest'],
  ['system.image_analysis.manifest_parse_fail', 'error', 'image_tag'],
  ['system.analysis_archive.image_archived', 'info', 'image_digest'],
  ['system.analysis_archive.image_archive_failed', 'error', 'image_digest'],
  ['system.analysis_archive.archived_image_deleted', 'info', 'image_digest'],
  ['system.analysis_archive.archived_image_delete_failed', 'error', 'image_digest'],
  ['system.repository.list_tags_fail', 'error', 'repository'],
  ['system.feeds.sync.started', 'info', 'feeds'],
  ['system.feeds.sync.completed', 'info', 'feeds'],
  ['system.feeds.sync.failed', 'error', 'feeds'],
  ['system.feeds.sync.feed_started', 'info', 'feed'],
  ['system.feeds.sync.feed_completed', 'info', 'feed'],
  ['system.feeds.sync.feed_failed', 'error', 'feed'],
  ['system.feeds.sync.group_started', 'info', 'feed_group'],
  ['system.feeds.sync.group_completed', 'info', 'feed_group'],
  ['system.feeds.sync.group_failed', 'error', 'feed_group'],
  ['system.service.state_transition.orphaned', 'error', 'service'],
  ['system.service.state_transition.down', 'error', 'service'],
  ['system.service.removed', 'error', 'service'],
  ['system.service.authz_plugin_healthcheck_failed', 'error', 'service'],
  ['system.test.random_wisdom', 'info', 'wisdom'],
]

// The system events Herald itself publishes, to the admin account.
const HERALD_SYSTEM_TYPES: readonly (readonly [string, 'info' | 'error', string])[] = [
  ['system.notifications.configuration_disabled', 'error', 'notification_configuration'],
]

const listJson = (dir: string) =>
  readdirSync(new URL(`../../../schemas/${dir}/`, import.meta.url))
    .filter((f) => f.endsWith('.json'))
    .sort()

describe('the event catalog', () => {
  it("holds every Anchore engine event type with Anchore's level and resource type", () => {
    for (const [type, level, resourceType] of ANCHORE_ENGINE_TYPES) {
      const entry = lookupEventType(type)
      assert.ok(entry, `${type} is missing`)
      assert.equal(entry.level, level, type)
      assert.equal(entry.resourceType, resourceType, type)
    }
  })

  it("holds Herald's own system event types, with their level and resource type", () => {
    for (const [type, level, resourceType] of HERALD_SYSTEM_TYPES) {
      const entry = lookupEventType(type)
      assert.ok(entry, `${type} is missing`)
      assert.equal(entry.level, level, type)
      assert.equal(entry.resourceType, resourceType, type)
    }
    const disabled = eventCatalog['system.notifications.configuration_disabled']
    assert.deepEqual(disabled.schema.required, [
      'configuration_id',
      'account',
      'endpoint',
      'reason',
      'failing_since',
    ])
    assert.ok(
      disabled.dataCodec.is({
        configuration_id: '0b0c7f3e-1b2a-4c5d-9e8f-123456789abc',
        account: 'acme',
        endpoint: 'jira',
        reason: 'sustained_failure',
        failing_since: '2026-11-21T10:00:00Z',
        last_error: 'HTTP 503',
      }),
    )
  })

  it('holds the IBM Security and Compliance Center types and subtypes', () => {
    assert.deepEqual(
      eventCatalog['com.ibm.cloud.compliance.posture'].subtypes?.map((s) => s.subtype),
      [
        'posture-scan-completed',
        'posture-scan-failure-threshold-limit-exceeds',
        'posture-scan-new-resource-in-inventory',
      ],
    )
    assert.ok(isEventType('com.ibm.cloud.compliance.test'))
    const required = eventCatalog['com.ibm.cloud.compliance.posture'].schema.required
    assert.deepEqual(required, ['action', 'summary', 'scope', 'profile', 'start_time'])
  })

  it('holds the report-feeding types', () => {
    for (const type of [
      'herald.report.image.analyzed',
      'herald.report.tag.digest_changed',
      'herald.report.image.deleted',
      'herald.report.tag.deleted',
      'herald.report.policy.evaluated',
      'herald.report.inventory.snapshot',
    ]) {
      assert.ok(isEventType(type), type)
    }
  })

  it('describes every type, with a level and a resource type', () => {
    for (const entry of eventTypes) {
      assert.ok(['info', 'warning', 'error'].includes(entry.level), entry.type)
      assert.match(entry.resourceType, /^[a-z_]+$/, entry.type)
      assert.ok(entry.description.length > 10, entry.type)
    }
  })

  it('has exactly one data schema and one fixture file per type', () => {
    const types = eventTypes.map((e) => e.type).sort()
    assert.deepEqual(
      listJson('events'),
      types.map((t) => dataSchemaFile(t).replace('events/', '')),
    )
    assert.deepEqual(listJson('fixtures'), [...types.map((t) => `${t}.json`), 'cloudevent.json'].sort())
  })

  it('gives every schema a draft 2020-12 $schema, a versioned $id and a description', () => {
    assert.equal(envelopeSchema.$id, 'urn:herald:schema:v1:cloudevent')
    for (const { type, schema } of eventTypes) {
      assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema', type)
      assert.equal(schema.$id, `urn:herald:schema:v1:event:${type}`)
      assert.equal(schema.type, 'object', type)
      assert.equal(schema.additionalProperties, true, `${type}: data stays open to new fields`)
      assert.ok(typeof schema.description === 'string' && schema.description.includes(type), type)
    }
  })
})
