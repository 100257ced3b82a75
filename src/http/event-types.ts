import { Hono } from 'hono'
import { clipped, NotFoundError } from '../errors/index.ts'
import { type EventTypeEntry, eventTypes } from '../events/index.ts'
import type { AppEnv } from './env.ts'
import { noQueryParameters } from './query.ts'

// Anchore's snake_case; `schema` is the JSON Schema of the type's `data`, exactly as stored in
// `schemas/events/`.
const toItem = (entry: EventTypeEntry) => ({
  type: entry.type,
  level: entry.level,
  resource_type: entry.resourceType,
  description: entry.description,
  ...(entry.subtypes === undefined
    ? {}
    : {
        subtypes: entry.subtypes.map((s) => ({
          subtype: s.subtype,
          level: s.level,
          description: s.description,
        })),
      }),
  schema: entry.schema,
})

/**
 * The event catalog as a Hono sub-app: `GET /event-types` lists every type Herald accepts,
 * `GET /event-types/{type}` answers one (404 problem for a type the catalog lacks). Mount it
 * at `/v1/notifications` behind authentication; any role may read it.
 *
 * @example
 * app.route('/v1/notifications', createEventTypeRoutes())
 * await app.request('/v1/notifications/event-types/user.image.analysis.failed')
 */
export const createEventTypeRoutes = (): Hono<AppEnv> => {
  const app = new Hono<AppEnv>()
  const items = eventTypes.map(toItem)
  const byType = new Map<string, (typeof items)[number]>(items.map((item) => [item.type, item]))

  app.get('/event-types', noQueryParameters, (c) => c.json({ items }))

  app.get('/event-types/:type', noQueryParameters, (c) => {
    const type = c.req.param('type')
    const item = byType.get(type)
    if (item === undefined)
      throw new NotFoundError(`event type "${clipped(type)}" is not in the catalog`, { type })
    return c.json(item)
  })

  return app
}
