import { ADMIN_ACCOUNT } from '../access/index.ts'
import type { FieldIssue } from '../errors/index.ts'

/**
 * The events Herald emits itself. It publishes them to the engine events topic, where the
 * router reads them like any producer's:
 * - `system.notifications.*`, what the deliverer tells the admin account (a configuration it
 *   disabled), from `/herald/deliverer` on the `admin` account;
 * - `com.ibm.cloud.compliance.test` from `/herald/notifications/test`, what `POST /v1/test_event`
 *   publishes on the caller's account.
 * Those types and sources are Herald's: an event that claims them and is not Herald's would
 * look like its alarms to the admin's global selectors and to every downstream consumer.
 */
export const HERALD_TYPE_PREFIX = 'system.notifications.'
export const HERALD_SOURCE = '/herald'
export const DELIVERER_SOURCE = `${HERALD_SOURCE}/deliverer`
export const TEST_EVENT_SOURCE = `${HERALD_SOURCE}/notifications/test`
const TEST_EVENT_TYPE = 'com.ibm.cloud.compliance.test'

interface Claims {
  readonly type: string
  readonly source: string
  readonly account: string
}

const isHeraldType = (type: string): boolean => type.startsWith(HERALD_TYPE_PREFIX)

const isHeraldSource = (source: string): boolean =>
  source === HERALD_SOURCE || source.startsWith(`${HERALD_SOURCE}/`)

/**
 * The attributes by which `event` claims to be Herald's own (`type`, `source`), as issues:
 * what `POST /v1/events` refuses from everyone, the admin included. Herald publishes its own
 * events straight to the log, never through the API, so none that arrives there is Herald's;
 * an admin's would be as indistinguishable from Herald's as a tenant's.
 *
 * @example
 * heraldClaims({ type: 'system.notifications.configuration_disabled', source: '/engine', account: 'acme' }) // [{ path: 'type', … }]
 */
export const heraldClaims = (event: Claims): FieldIssue[] => {
  const issues: FieldIssue[] = []
  if (isHeraldType(event.type))
    issues.push({ path: 'type', message: `is Herald's own (${HERALD_TYPE_PREFIX}*): only Herald emits it` })
  if (isHeraldSource(event.source))
    issues.push({
      path: 'source',
      message: `is Herald's own (${HERALD_SOURCE} and below): only Herald's events carry it`,
    })
  return issues
}

/**
 * Why an event on the engine events topic that claims to be Herald's own is not as Herald
 * emits it; `[]` for one that is, or that claims nothing. What the router dead-letters: Herald's
 * own events reach the log as a producer's do, so there the rule is their shape, not who sent
 * them (anyone who may write the topic may write any account's events anyway).
 *
 * @example
 * notAsHeraldEmits({ type: 'system.notifications.configuration_disabled', source: '/herald/deliverer', account: 'acme' }) // [{ path: 'account', … }]
 */
export const notAsHeraldEmits = (event: Claims): FieldIssue[] => {
  const issues: FieldIssue[] = []
  if (isHeraldType(event.type)) {
    if (event.source !== DELIVERER_SOURCE)
      issues.push({
        path: 'source',
        message: `must be ${DELIVERER_SOURCE}: ${HERALD_TYPE_PREFIX}* events are Herald's own`,
      })
    if (event.account !== ADMIN_ACCOUNT)
      issues.push({
        path: 'account',
        message: `must be ${ADMIN_ACCOUNT}: ${HERALD_TYPE_PREFIX}* events are Herald's own, told to the admin account`,
      })
  } else if (
    isHeraldSource(event.source) &&
    !(event.source === TEST_EVENT_SOURCE && event.type === TEST_EVENT_TYPE)
  )
    issues.push({
      path: 'source',
      message: `is Herald's own (${HERALD_SOURCE} and below), which it gives only its ${HERALD_TYPE_PREFIX}* events (${DELIVERER_SOURCE}) and its ${TEST_EVENT_TYPE} events (${TEST_EVENT_SOURCE})`,
    })
  return issues
}
