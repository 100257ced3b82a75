import { ADMIN_ACCOUNT } from '../../src/access/index.ts'
import {
  type CloudEvent,
  DELIVERER_SOURCE,
  decodeEngineEvent,
  encodeLogEvent,
  HERALD_TYPE_PREFIX,
} from '../../src/events/index.ts'
import type { Logger } from '../../src/observability/index.ts'
import type { EventLog } from '../../src/ports/index.ts'
import type { SustainedFailure } from './attempt.ts'

/**
 * The system event that announces a configuration Herald switched off because every delivery
 * failed for the sustained-failure period. Addressed to the admin account, so the admin's
 * selectors route it like any engine event. Its type and source are Herald's own: the API
 * refuses them from anyone else, and the router dead-letters one not shaped as this is.
 */
export const CONFIGURATION_DISABLED_TYPE = `${HERALD_TYPE_PREFIX}configuration_disabled`

// The catalog's bound on `last_error`, in code points.
const MAX_LAST_ERROR = 1000

const bounded = (text: string): string => {
  if (text.length <= MAX_LAST_ERROR) return text
  const points = [...text]
  return points.length <= MAX_LAST_ERROR ? text : `${points.slice(0, MAX_LAST_ERROR - 1).join('')}…`
}

/**
 * Pure: the id and time come in.
 *
 * @example
 * configurationDisabledEvent(failure, { id: randomUUID(), now: Date.now(), reason: 'sustained_failure' })
 */
export const configurationDisabledEvent = (
  failure: SustainedFailure,
  { id, now, reason }: { id: string; now: number; reason: string },
): CloudEvent => ({
  specversion: '1.0',
  id,
  source: DELIVERER_SOURCE,
  type: CONFIGURATION_DISABLED_TYPE,
  subject: failure.configurationId,
  time: new Date(now).toISOString(),
  account: ADMIN_ACCOUNT,
  level: 'error',
  resourcetype: 'notification_configuration',
  data: {
    configuration_id: failure.configurationId,
    account: failure.account,
    endpoint: failure.endpoint,
    reason,
    failing_since: new Date(failure.failingSince).toISOString(),
    // The catalog has no empty or null `last_error`: without one, the field is left out.
    ...(failure.lastError === null || failure.lastError === ''
      ? {}
      : { last_error: bounded(failure.lastError) }),
  },
})

export interface AnnounceOptions {
  readonly log: Pick<EventLog, 'publish'>
  /** `event_log.topics.events`. */
  readonly topic: string
  readonly logger: Logger
  readonly clock: () => number
  readonly newId: () => string
}

/**
 * Publishes the system event to the engine events topic. The event is checked against the
 * catalog first: one the router would dead-letter (a configuration id that is no UUID, say) is
 * logged here instead (`delivery.system_event_invalid`), where its cause is. The configuration
 * is disabled either way, and its history records why. Resolves whether it was published.
 *
 * @example
 * const announce = announceConfigurationDisabled({ log, topic: 'engine.events', logger, clock: Date.now, newId: randomUUID })
 * await announce(failure, 'sustained_failure')
 */
export const announceConfigurationDisabled =
  ({ log, topic, logger, clock, newId }: AnnounceOptions) =>
  async (failure: SustainedFailure, reason: string): Promise<boolean> => {
    const event = configurationDisabledEvent(failure, { id: newId(), now: clock(), reason })
    const decoded = decodeEngineEvent(event)
    if (!decoded.ok) {
      logger('error', 'delivery.system_event_invalid', {
        type: CONFIGURATION_DISABLED_TYPE,
        configuration_id: failure.configurationId,
        issues: decoded.issues,
      })
      return false
    }
    await log.publish(topic, [encodeLogEvent(event)])
    return true
  }
