import * as t from 'io-ts'
import type { EventData, RecordedEvent } from '../ports/index.ts'
import type { UnannouncedDisable } from './model.ts'

/**
 * The outbox of the system events that announce Herald's own disables: one `DisableAnnounced`
 * per disable whose announcement was published. A disable Herald decided for a failure stores
 * what its announcement says (`ConfigurationUpdated.failure`); the selector set holds every
 * such disable with no `DisableAnnounced` yet (`SelectorSet.unannounced`), and the deliverer
 * publishes those, then appends their `DisableAnnounced` here. So an announcement is never
 * lost: a publish that failed is tried again, and one a crash cut short is made after the next
 * start. It is made about once: a crash between the publish and its `DisableAnnounced` (or
 * two instances announcing the same disable) publishes it again with the same event id, which
 * the router's processed-id window drops.
 *
 * A stream of its own, not the configuration's: appending there would move the revision its
 * owner's next `If-Match` names.
 */
export const ANNOUNCEMENTS_STREAM = 'notification-announcements'

const DISABLE_ANNOUNCED = 'DisableAnnounced'

const DisableAnnouncedData = t.type({ configurationId: t.string, revision: t.number })

/**
 * What names the announcement of the disable stored at `revision` of the configuration's
 * stream: the key of `SelectorSet.unannounced`, and its `DisableAnnounced`'s event id.
 */
export const announcementKey = (configurationId: string, revision: number): string =>
  `${configurationId}@${revision}`

/** The outbox entry saying the announcement of `disable` was published; appended twice, it is stored once. */
export const disableAnnounced = (disable: UnannouncedDisable): EventData => ({
  id: announcementKey(disable.configurationId, disable.revision),
  type: DISABLE_ANNOUNCED,
  data: { configurationId: disable.configurationId, revision: disable.revision },
})

/** The key of the announcement an outbox event says was published; undefined for any other event. */
export const announcedKey = (
  recorded: Pick<RecordedEvent, 'stream' | 'type' | 'data'>,
): string | undefined => {
  if (recorded.stream !== ANNOUNCEMENTS_STREAM || recorded.type !== DISABLE_ANNOUNCED) return undefined
  const data = recorded.data
  return DisableAnnouncedData.is(data) ? announcementKey(data.configurationId, data.revision) : undefined
}
