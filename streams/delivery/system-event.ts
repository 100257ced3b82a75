import { ADMIN_ACCOUNT } from '../../src/access/index.ts'
import { type Backoff, backoffDelay } from '../../src/backoff.ts'
import { errorText } from '../../src/errors/index.ts'
import {
  type CloudEvent,
  DELIVERER_SOURCE,
  decodeEngineEvent,
  encodeLogEvent,
  HERALD_TYPE_PREFIX,
} from '../../src/events/index.ts'
import type { UnannouncedDisable } from '../../src/notifications/index.ts'
import type { Logger } from '../../src/observability/index.ts'
import type { EventLog } from '../../src/ports/index.ts'

/**
 * The system event that announces a configuration Herald switched off itself: every delivery
 * failed for the sustained-failure period (`sustained_failure`), or its endpoint answered 410
 * Gone (`endpoint_gone`). Addressed to the admin account, so the admin's selectors route it
 * like any engine event. Its type and source are Herald's own: the API refuses them from
 * anyone else, and the router dead-letters one not shaped as this is.
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
 * The announcement's event id: the configuration and where in its stream the disable is, so
 * announcing one disable again makes the same event, which the router's processed-id window
 * drops, and a later disable of the same configuration a new one.
 *
 * @example
 * disabledEventId('0b0c7f3e-1b2a-4c5d-9e8f-123456789abc', 4) // 'configuration-disabled-0b0c7f3e-1b2a-4c5d-9e8f-123456789abc-4'
 */
export const disabledEventId = (configurationId: string, revision: number): string =>
  `configuration-disabled-${configurationId}-${revision}`

/**
 * Pure, and the same every time for one stored disable: its id is the disable's
 * (`disabledEventId`), its time the disable's.
 *
 * @example
 * configurationDisabledEvent(selectorSet.unannounced.get(key))
 */
export const configurationDisabledEvent = (disable: UnannouncedDisable): CloudEvent => ({
  specversion: '1.0',
  id: disabledEventId(disable.configurationId, disable.revision),
  source: DELIVERER_SOURCE,
  type: CONFIGURATION_DISABLED_TYPE,
  subject: disable.configurationId,
  time: disable.at,
  account: ADMIN_ACCOUNT,
  level: 'error',
  resourcetype: 'notification_configuration',
  data: {
    configuration_id: disable.configurationId,
    account: disable.account,
    endpoint: disable.endpoint,
    reason: disable.reason,
    failing_since: disable.failingSince,
    // The catalog has no empty or null `last_error`: without one, the field is left out.
    ...(disable.lastError === null || disable.lastError === ''
      ? {}
      : { last_error: bounded(disable.lastError) }),
  },
})

export interface DisableAnnouncerOptions {
  readonly log: Pick<EventLog, 'publish'>
  /** `event_log.topics.events`. */
  readonly topic: string
  /** Records an announcement as published (`NotificationConfigService.markAnnounced`). */
  readonly markAnnounced: (disable: UnannouncedDisable) => Promise<void>
  readonly logger: Logger
  /** The wait before trying again after a failure: doubles from `min` up to `max` ms (default 1 000 → 60 000). */
  readonly retryMs?: Backoff
}

export interface DisableAnnouncer {
  /**
   * The disables still to announce, as the latest selector set has them
   * (`SelectorSet.unannounced`): each one not announced yet is, in turn.
   */
  announce(unannounced: ReadonlyMap<string, UnannouncedDisable>): void
  /** Tries nothing more, once an announcement in progress is over. */
  stop(): Promise<void>
}

/**
 * Announces Herald's own disables from what the store holds, not from the moment of the
 * disable: it is handed every stored disable with no announcement recorded yet (at start-up,
 * those a crash or a failure left behind; then each new one as the selector feed brings it),
 * publishes its system event to the engine events topic, then records it announced (the
 * announcements outbox), which takes it off the list. A publish or record that fails is logged
 * (`delivery.system_event_failed`) and tried again after 1 s, doubling up to a minute, for as
 * long as it fails. An event the catalog would refuse (the router would dead-letter it) is
 * logged (`delivery.system_event_invalid`) and recorded, as it will never pass.
 *
 * Published at least once, delivered about once: the publish and its record are two writes, so
 * a crash between them (or two instances announcing together) publishes it again, the same
 * event by its id (`configurationDisabledEvent`), which the router's processed-id window drops.
 *
 * @example
 * const announcer = startDisableAnnouncer({ log, topic: 'engine.events', markAnnounced: service.markAnnounced, logger })
 * service.selectors$().subscribe((set) => announcer.announce(set.unannounced))
 */
export const startDisableAnnouncer = (options: DisableAnnouncerOptions): DisableAnnouncer => {
  const { log, topic, markAnnounced, logger } = options
  const backoff = options.retryMs ?? { min: 1_000, max: 60_000 }
  let pending: ReadonlyMap<string, UnannouncedDisable> = new Map()
  // Announced by this process while the list still has them (their record not folded in yet).
  const done = new Set<string>()
  let running: Promise<void> | undefined
  let retry: ReturnType<typeof setTimeout> | undefined
  let failures = 0
  let stopped = false

  const next = () => {
    for (const [key, disable] of pending) if (!done.has(key)) return { key, disable }
    return undefined
  }

  const announceOne = async (disable: UnannouncedDisable) => {
    const event = configurationDisabledEvent(disable)
    const decoded = decodeEngineEvent(event)
    if (decoded.ok) await log.publish(topic, [encodeLogEvent(event)])
    else
      logger('error', 'delivery.system_event_invalid', {
        type: CONFIGURATION_DISABLED_TYPE,
        configuration_id: disable.configurationId,
        issues: decoded.issues,
      })
    await markAnnounced(disable)
    return decoded.ok
  }

  const run = async () => {
    for (let work = next(); work !== undefined && !stopped; work = next()) {
      const { key, disable } = work
      const fields = {
        configuration_id: disable.configurationId,
        reason: disable.reason,
        event_id: disabledEventId(disable.configurationId, disable.revision),
      }
      try {
        if (await announceOne(disable)) logger('info', 'delivery.system_event_published', fields)
        done.add(key)
        failures = 0
      } catch (error) {
        failures++
        const retryInMs = backoffDelay(backoff, failures)
        logger('error', 'delivery.system_event_failed', {
          ...fields,
          error: errorText(error),
          attempt: failures,
          retry_in_ms: retryInMs,
        })
        retry = setTimeout(() => {
          retry = undefined
          kick()
        }, retryInMs)
        retry.unref()
        return
      }
    }
  }

  function kick(): void {
    if (stopped || running !== undefined || retry !== undefined || next() === undefined) return
    running = run().finally(() => {
      running = undefined
      // A list handed over after the last look, while this run was ending.
      kick()
    })
  }

  return {
    announce: (unannounced) => {
      pending = unannounced
      for (const key of done) if (!unannounced.has(key)) done.delete(key)
      kick()
    },
    stop: async () => {
      stopped = true
      clearTimeout(retry)
      await running
    },
  }
}
