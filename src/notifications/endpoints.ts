import { isLeft } from 'fp-ts/lib/Either.js'
import { Hono } from 'hono'
import * as t from 'io-ts'
import type { AppEnv, Principal } from '../access/index.ts'
import { clipped, isExpectedRevisionConflict, NotFoundError, ValidationError } from '../errors/index.ts'
import { toFieldIssues } from '../events/index.ts'
import { authorize } from '../http/authorize.ts'
import { readJsonObject } from '../http/body.ts'
import { noQueryParameters } from '../http/query.ts'
import type { EventStore, RecordedEvent } from '../ports/event-store.ts'
import { ENDPOINT_TYPES, type EndpointType, isEndpointType } from './model.ts'

export { ENDPOINT_TYPES, type EndpointType, isEndpointType } from './model.ts'

export const ENDPOINT_STREAM_PREFIX = 'notification-endpoint-'

export type EndpointEvent =
  | { readonly type: 'EndpointEnabled'; readonly data: { endpoint: EndpointType; by: string; at: string } }
  | { readonly type: 'EndpointDisabled'; readonly data: { endpoint: EndpointType; by: string; at: string } }

export interface EndpointState {
  readonly enabled: boolean
}

/** Every endpoint type starts enabled: a fresh installation delivers everywhere. */
export const initialEndpointState: EndpointState = { enabled: true }

/** The status an endpoint event sets, for read models that fold every stream; undefined for other events. */
export const endpointStatusChange = (
  recorded: Pick<RecordedEvent, 'stream' | 'type'>,
): { readonly endpoint: EndpointType; readonly enabled: boolean } | undefined => {
  if (!recorded.stream.startsWith(ENDPOINT_STREAM_PREFIX)) return undefined
  const endpoint = recorded.stream.slice(ENDPOINT_STREAM_PREFIX.length)
  if (!isEndpointType(endpoint)) return undefined
  if (recorded.type === 'EndpointEnabled') return { endpoint, enabled: true }
  if (recorded.type === 'EndpointDisabled') return { endpoint, enabled: false }
  return undefined
}

export const decideEndpoint = (
  command: { endpoint: EndpointType; enabled: boolean; by: string; now: number },
  state: EndpointState,
): EndpointEvent[] => {
  if (command.enabled === state.enabled) return []
  const data = { endpoint: command.endpoint, by: command.by, at: new Date(command.now).toISOString() }
  return [command.enabled ? { type: 'EndpointEnabled', data } : { type: 'EndpointDisabled', data }]
}

export const evolveEndpoint = (_state: EndpointState, event: EndpointEvent): EndpointState => ({
  enabled: event.type === 'EndpointEnabled',
})

const SetEndpointBody = t.type({ enabled: t.boolean })

export interface EndpointStatusService {
  get(endpoint: EndpointType): Promise<EndpointState & { revision: number | 'no_stream' }>
  list(): Promise<readonly { name: EndpointType; enabled: boolean }[]>
  set(principal: Principal, endpoint: EndpointType, enabled: boolean): Promise<EndpointState>
}

/**
 * Endpoint status, one stream per endpoint type, read straight from the store: six tiny
 * streams, so no read model is needed to answer consistently.
 */
export const createEndpointStatusService = ({
  store,
  clock,
  newId,
}: {
  store: EventStore
  clock: () => number
  newId: () => string
}): EndpointStatusService => {
  const get = async (endpoint: EndpointType) => {
    const recorded = await store.readStream(`${ENDPOINT_STREAM_PREFIX}${endpoint}`)
    let state = initialEndpointState
    for (const r of recorded) {
      if (r.type === 'EndpointEnabled' || r.type === 'EndpointDisabled') {
        state = evolveEndpoint(state, { type: r.type, data: r.data as EndpointEvent['data'] })
      }
    }
    return { ...state, revision: recorded.at(-1)?.revision ?? ('no_stream' as const) }
  }
  return {
    get,
    list: async () =>
      Promise.all(ENDPOINT_TYPES.map(async (name) => ({ name, enabled: (await get(name)).enabled }))),
    set: async (principal, endpoint, enabled) => {
      for (let attempt = 1; ; attempt++) {
        const { revision, ...state } = await get(endpoint)
        const events = decideEndpoint(
          { endpoint, enabled, by: `${principal.account}/${principal.role}`, now: clock() },
          state,
        )
        if (events.length === 0) return state
        try {
          await store.append(
            `${ENDPOINT_STREAM_PREFIX}${endpoint}`,
            events.map((e) => ({ id: newId(), type: e.type, data: e.data })),
            { expectedRevision: revision },
          )
          return events.reduce(evolveEndpoint, state)
        } catch (error) {
          if (!isExpectedRevisionConflict(error) || attempt >= 3) throw error
        }
      }
    },
  }
}

const endpointParam = (value: string): EndpointType => {
  if (!isEndpointType(value)) {
    throw new NotFoundError(`no endpoint type "${clipped(value)}"; known: ${ENDPOINT_TYPES.join(', ')}`)
  }
  return value
}

/** `/v1/notifications/endpoints[/{endpoint}]`: everyone reads, only admins switch. */
export const createEndpointRoutes = ({ endpoints }: { endpoints: EndpointStatusService }) => {
  const app = new Hono<AppEnv>()
  app.get('/endpoints', authorize('listNotificationEndpoints'), noQueryParameters, async (c) =>
    c.json({ items: await endpoints.list() }),
  )
  app.get('/endpoints/:endpoint', authorize('listNotificationEndpoints'), noQueryParameters, async (c) => {
    const name = endpointParam(c.req.param('endpoint'))
    return c.json({ name, enabled: (await endpoints.get(name)).enabled })
  })
  app.put('/endpoints/:endpoint', authorize('updateNotificationEndpoint'), noQueryParameters, async (c) => {
    const name = endpointParam(c.req.param('endpoint'))
    const json = await readJsonObject(c, { fields: ['enabled'] })
    const body = SetEndpointBody.decode(json)
    if (isLeft(body)) throw new ValidationError('invalid endpoint status', toFieldIssues(body.left))
    const state = await endpoints.set(c.get('principal'), name, body.right.enabled)
    return c.json({ name, enabled: state.enabled })
  })
  return app
}
