import type { Context } from 'hono'
import { clipped, NotFoundError } from '../errors/index.ts'
import { Uuid } from './codecs.ts'
import { ENDPOINT_TYPES, type EndpointType, isEndpointType, type NotificationsEnv } from './model.ts'

/** The `:endpoint` of a notifications path; an unknown type names nothing (404). */
export const endpointParam = (c: Context<NotificationsEnv>): EndpointType => {
  const value = c.req.param('endpoint') ?? ''
  if (!isEndpointType(value))
    throw new NotFoundError(`no endpoint type "${clipped(value)}"; known: ${ENDPOINT_TYPES.join(', ')}`)
  return value
}

/**
 * A UUID path parameter, lower-cased. A malformed id names nothing, exactly like an unknown one.
 * Herald's ids are lower case; a UUID is the same in either (RFC 9562), so one typed in upper
 * case names the same thing.
 */
export const idParam = (c: Context<NotificationsEnv>, name: 'uuid' | 'selector', what: string): string => {
  const id = c.req.param(name) ?? ''
  if (!Uuid.is(id)) throw new NotFoundError(`${what} ${clipped(id)} not found`)
  return id.toLowerCase()
}
