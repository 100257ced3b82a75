import { NotFoundError } from '../errors/index.ts'
import type { EndpointStatusService } from './endpoints.ts'
import type { EndpointType } from './model.ts'
import type { NotificationConfigService } from './service.ts'

/** Why an attempt would skip a delivery rather than send it, as the deliverer records it. */
export type SkipReason = 'configuration_missing' | 'configuration_disabled' | 'endpoint_disabled'

export interface SkipCheckOptions {
  readonly service: Pick<NotificationConfigService, 'getConfiguration'>
  /** The endpoint types' switches; absent: every type is on. */
  readonly endpoints?: Pick<EndpointStatusService, 'get'>
}

/**
 * Why an attempt of a delivery to a configuration would now be skipped rather than sent,
 * read from the configuration's own stream and the endpoint switch (both current); undefined
 * when it would be sent. The deliverer skips for the same reasons, from its feed.
 *
 * @example
 * const skipReason = createSkipCheck({ service, endpoints })
 * await skipReason({ account: 'acme', endpoint: 'webhook', configurationId }) // 'configuration_missing' once deleted
 */
export const createSkipCheck =
  ({ service, endpoints }: SkipCheckOptions) =>
  async (target: {
    readonly account: string
    readonly endpoint: EndpointType
    readonly configurationId: string
  }): Promise<SkipReason | undefined> => {
    try {
      const { value } = await service.getConfiguration(
        target.account,
        target.endpoint,
        target.configurationId,
      )
      if (!value.configuration.enabled) return 'configuration_disabled'
    } catch (error) {
      if (error instanceof NotFoundError) return 'configuration_missing'
      throw error
    }
    if (endpoints !== undefined && !(await endpoints.get(target.endpoint)).enabled) return 'endpoint_disabled'
    return undefined
  }
