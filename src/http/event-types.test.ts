import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Hono } from 'hono'
import { eventTypes } from '../events/index.ts'
import type { AppEnv } from './env.ts'
import { createEventTypeRoutes } from './event-types.ts'
import { toProblem } from './problem.ts'

// Mounted as the lead's app mounts it, with its problem rendering.
const app = new Hono<AppEnv>()
app.onError((error, c) => {
  const body = toProblem(error, c.req.path)
  return c.json(body, body.status as 404, { 'content-type': 'application/problem+json' })
})
app.route('/v1/notifications', createEventTypeRoutes())

interface Item {
  type: string
  level: string
  resource_type: string
  description: string
  subtypes?: { subtype: string; level: string }[]
  schema: { $id: string; required: string[] }
}

describe('GET /v1/notifications/event-types', () => {
  it('lists the whole catalog with level, resource type, description and data schema', async () => {
    const response = await app.request('/v1/notifications/event-types')
    assert.equal(response.status, 200)
    const { items } = (await response.json()) as { items: Item[] }
    assert.deepEqual(
      items.map((i) => i.type),
      eventTypes.map((e) => e.type),
    )
    const vulnerabilities = items.find((i) => i.type === 'user.checks.tag.vulnerabilities.update')
    assert.equal(vulnerabilities?.level, 'info')
    assert.equal(vulnerabilities?.resource_type, 'image_tag')
    assert.equal(
      vulnerabilities?.schema.$id,
      'urn:herald:schema:v1:event:user.checks.tag.vulnerabilities.update',
    )
    assert.ok(vulnerabilities?.schema.required.includes('added'))
  })

  it('answers one type, with its subtypes', async () => {
    const response = await app.request('/v1/notifications/event-types/com.ibm.cloud.compliance.posture')
    assert.equal(response.status, 200)
    const item = (await response.json()) as Item
    assert.equal(item.resource_type, 'posture_scan')
    assert.deepEqual(
      item.subtypes?.map((s) => [s.subtype, s.level]),
      [
        ['posture-scan-completed', 'info'],
        ['posture-scan-failure-threshold-limit-exceeds', 'warning'],
        ['posture-scan-new-resource-in-inventory', 'info'],
      ],
    )
  })

  it('answers 404 problem details for a type the catalog lacks', async () => {
    for (const type of ['user.image.analysis.exploded', 'constructor']) {
      const response = await app.request(`/v1/notifications/event-types/${type}`)
      assert.equal(response.status, 404)
      assert.equal(response.headers.get('content-type'), 'application/problem+json')
      const body = (await response.json()) as { code: string; detail: string }
      assert.equal(body.code, 'not_found')
      assert.match(body.detail, new RegExp(type.replaceAll('.', '\\.')))
    }
  })

  it('echoes at most the first 64 characters of a type it lacks', async () => {
    const response = await app.request(`/v1/notifications/event-types/${'t'.repeat(10_000)}`)
    assert.equal(response.status, 404)
    const body = (await response.json()) as { detail: string }
    assert.equal(body.detail, `event type "${'t'.repeat(64)}…" is not in the catalog`)
  })
})
