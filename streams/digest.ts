import type { CloudEvent } from '../src/events/index.ts'
import { BATCH_MEDIA_TYPE, processedKey, reasonHeaders } from '../src/ingress/index.ts'
import type { DigestSettings, EndpointConfiguration } from '../src/notifications/index.ts'
import type { OutgoingMessage } from '../src/ports/index.ts'
import type { DigestEntry, PendingDigest } from './digest-store.ts'
import {
  commandFor,
  type DeliveryCommand,
  type DigestLevelCount,
  digestDeliveryIdFor,
  type RouteMatch,
} from './routing/index.ts'

/** How many events a digest lists whole (its counts cover them all). */
export const DIGEST_EVENTS = 10

/**
 * A configuration's digest window in ms, or null when it wants each event on its own.
 * `windowSeconds` null takes `notifications.cycle_timers.notifications`.
 *
 * @example
 * digestWindowMs({ enabled: true, windowSeconds: null }, 30) // 30_000
 */
export const digestWindowMs = (digest: DigestSettings, defaultWindowSeconds: number): number | null =>
  digest.enabled ? (digest.windowSeconds ?? defaultWindowSeconds) * 1000 : null

/** What routing decided for one event and one configuration: deliver it now, or hold it for a digest. */
export type RouteDecision =
  | { readonly kind: 'deliver'; readonly command: DeliveryCommand }
  | { readonly kind: 'digest'; readonly entry: DigestEntry }

/** The window length to hold a configuration's events for, or null to deliver them at once. */
export type DigestWindowOf = (configuration: EndpointConfiguration) => number | null

/** Never holds anything: every match is delivered at once. */
export const noDigests: DigestWindowOf = () => null

/** The entry holding `event` for the digest of the configuration of `match`. */
export const entryFor = (
  event: CloudEvent,
  match: RouteMatch,
  windowMs: number,
  eventKey = processedKey(event),
): DigestEntry => ({
  configurationId: match.configuration.id,
  account: match.configuration.account,
  endpoint: match.configuration.endpoint,
  eventKey,
  event,
  matchedSelectorIds: match.selectorIds,
  windowMs,
})

/**
 * One decision per configuration that `event` matched (each match is one configuration,
 * however many of its selectors matched): a command for a configuration that delivers each
 * event, stamped with the position of the selector set matched against when given, an entry
 * for one that asked for digests. Pure: the time is passed in.
 *
 * @example
 * decideRoutes(index.match(event), event, new Date().toISOString(), noDigests)
 */
export const decideRoutes = (
  matches: readonly RouteMatch[],
  event: CloudEvent,
  createdAt: string,
  windowOf: DigestWindowOf,
  eventKey?: string,
  selectorSetPosition?: number,
): RouteDecision[] =>
  matches.map((match) => {
    const windowMs = windowOf(match.configuration)
    return windowMs === null
      ? { kind: 'deliver', command: commandFor(event, match, createdAt, selectorSetPosition) }
      : { kind: 'digest', entry: entryFor(event, match, windowMs, eventKey) }
  })

const LEVEL_ORDER = ['error', 'warning', 'info']
const levelRank = (level: string): number => {
  const rank = LEVEL_ORDER.indexOf(level)
  return rank === -1 ? LEVEL_ORDER.length : rank
}

/** Totals by level from the counts by type and level: error, warning, info, then any other. */
export const levelCounts = (counts: PendingDigest['counts']): DigestLevelCount[] => {
  const byLevel = new Map<string, number>()
  for (const { level, count } of counts) byLevel.set(level, (byLevel.get(level) ?? 0) + count)
  return [...byLevel]
    .map(([level, count]) => ({ level, count }))
    .sort((a, b) => levelRank(a.level) - levelRank(b.level) || (a.level < b.level ? -1 : 1))
}

/**
 * The digest command of a closed window: its delivery id comes from the configuration and the
 * window's start (and `instance`, the buffer's, where several routers keep one each), so
 * flushing the window again gives the same id; its `event` is the window's first, and its
 * list every event the buffer kept (the flusher lists fewer when that is too large for the
 * log). Pure: the time is passed in.
 *
 * @example
 * const command = digestCommand(pending, new Date(clock()).toISOString())
 * command.digest?.total // every event of the window
 */
export const digestCommand = (
  pending: PendingDigest,
  createdAt: string,
  instance?: string,
): DeliveryCommand => {
  const first = pending.events[0]
  if (first === undefined)
    throw new TypeError(`digest window ${pending.configurationId}@${pending.windowStart} holds no event`)
  const windowStart = new Date(pending.windowStart).toISOString()
  return {
    deliveryId: digestDeliveryIdFor(pending.configurationId, windowStart, instance),
    account: pending.account,
    endpoint: pending.endpoint,
    configurationId: pending.configurationId,
    event: first,
    matchedSelectorIds: pending.matchedSelectorIds,
    createdAt,
    digest: {
      windowStart,
      windowEnd: new Date(pending.windowEnd).toISOString(),
      total: pending.total,
      counts: pending.counts,
      levels: levelCounts(pending.counts),
      events: pending.events,
    },
  }
}

/**
 * The smallest digest command `entry` can go out in as its command's `event`: a window
 * holding it alone, listing no event. When that is larger than the log takes, such a window
 * can never be sent (in a window with other events, the flusher makes the digest about one of
 * those instead). Pure.
 *
 * @example
 * messageBytes(encodeDeliveryCommand(loneDigestCommand(entry, createdAt))) > limit // refuse it
 */
export const loneDigestCommand = (entry: DigestEntry, createdAt: string): DeliveryCommand => {
  const command = digestCommand(
    {
      configurationId: entry.configurationId,
      account: entry.account,
      endpoint: entry.endpoint,
      // Any window: its start and end are written in RFC 3339, as long for every time.
      windowStart: 0,
      windowEnd: entry.windowMs,
      total: 1,
      counts: [{ type: entry.event.type, level: entry.event.level ?? 'info', count: 1 }],
      events: [entry.event],
      matchedSelectorIds: entry.matchedSelectorIds,
      unreadable: 0,
      attempts: 0,
    },
    createdAt,
  )
  return command.digest === undefined ? command : { ...command, digest: { ...command.digest, events: [] } }
}

/** Headers naming the window a digest dead letter stands for, beside the `herald.*` reason. */
export const DigestLetterHeaders = {
  configurationId: 'herald.digest.configuration_id',
  windowStart: 'herald.digest.window_start',
  windowEnd: 'herald.digest.window_end',
  /** Events the window held, of which the letter carries the first ones the buffer kept. */
  total: 'herald.digest.total',
  /** Times the window failed to go out. */
  attempts: 'herald.digest.attempts',
} as const

/**
 * The dead letter of a window that could not go out: keyed by its account, as the events it
 * holds were on the events topic; its value the window's events as the buffer kept them (its
 * first ones, a CloudEvents batch, which `POST /v1/events` takes back), its headers why
 * (`digest_undeliverable` and the error's message), after how many attempts, and which window.
 * Pure: the time is passed in.
 *
 * @example
 * digestDeadLetter(pending, errorText(error), { group: 'herald-router', now: clock(), attempts: 150 })
 */
export const digestDeadLetter = (
  pending: PendingDigest,
  message: string,
  context: { readonly group: string; readonly now: number; readonly attempts: number },
): OutgoingMessage => ({
  key: pending.account,
  value: new TextEncoder().encode(JSON.stringify(pending.events)),
  headers: {
    'content-type': BATCH_MEDIA_TYPE,
    ...reasonHeaders({ code: 'digest_undeliverable', message, issues: [] }, context),
    [DigestLetterHeaders.configurationId]: pending.configurationId,
    [DigestLetterHeaders.windowStart]: new Date(pending.windowStart).toISOString(),
    [DigestLetterHeaders.windowEnd]: new Date(pending.windowEnd).toISOString(),
    [DigestLetterHeaders.total]: String(pending.total),
    [DigestLetterHeaders.attempts]: String(context.attempts),
  },
})
