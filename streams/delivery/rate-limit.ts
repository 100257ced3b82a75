import { createHash } from 'node:crypto'
import type { ChannelConfiguration, ChannelEndpoint } from './channels/index.ts'
import { DEFAULT_GITHUB_API_URL } from './channels/index.ts'

/** Requests per minute per target, by endpoint type; 0 is no limit. */
export type RateLimits = Readonly<Record<ChannelEndpoint, number>>

/**
 * Defaults per endpoint type. Slack allows about one message per second per incoming webhook;
 * Teams webhooks, GitHub's content-creating requests and Jira Cloud throttle bursts too, so
 * they get one a second as well; an SMTP relay two a second; a generic webhook none (its
 * configuration's queue already sends one request at a time).
 */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  slack: 60,
  teams: 60,
  email: 120,
  webhook: 0,
  github: 60,
  jira: 60,
}

/**
 * What a rate limit counts against: the service's own unit (a Slack or Teams webhook URL, a
 * webhook URL, an SMTP account, a GitHub token, a Jira user), so two configurations sharing
 * one share its limit. A digest, never the URL or token itself.
 *
 * @example
 * rateLimitTarget({ endpoint: 'slack', webhookUrl, id, account }) // 'slack:5f0c…'
 */
export const rateLimitTarget = (configuration: ChannelConfiguration): string => {
  const parts = ((): string[] => {
    switch (configuration.endpoint) {
      case 'slack':
      case 'teams':
        return [configuration.webhookUrl]
      case 'webhook':
        return [configuration.url]
      case 'email':
        return [configuration.host, String(configuration.port), configuration.username ?? '']
      case 'github':
        return [configuration.apiUrl ?? DEFAULT_GITHUB_API_URL, configuration.token]
      case 'jira':
        return [configuration.url, configuration.username]
    }
  })()
  const digest = createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32)
  return `${configuration.endpoint}:${digest}`
}

export interface RateLimiter {
  /**
   * Takes a slot for `target` at `now` when one is free (0), or says how many milliseconds
   * until one is (nothing taken). `perMinute` 0 never waits. Times are of one clock that never
   * steps (`performance.now`): on the wall clock, a step back would hold a target for its size.
   */
  take(target: string, perMinute: number, now: number): number
  /** The endpoint said to wait (`Retry-After`): nothing goes to `target` before `until`. */
  holdUntil(target: string, until: number): void
}

/**
 * Evenly spaced slots per target (a generic cell rate with a burst of one): at most one
 * request every `60 000 / perMinute` ms. Targets whose next slot has passed are forgotten
 * once more than `maxTargets` are remembered.
 *
 * @example
 * const limiter = createRateLimiter()
 * limiter.take('slack:5f0c…', 60, now) // 0: go
 * limiter.take('slack:5f0c…', 60, now) // 1000: wait a second
 */
export const createRateLimiter = ({ maxTargets = 100_000 } = {}): RateLimiter => {
  const nextFree = new Map<string, number>()
  const forgetPast = (now: number) => {
    if (nextFree.size <= maxTargets) return
    for (const [target, at] of nextFree) if (at <= now) nextFree.delete(target)
  }
  return {
    take: (target, perMinute, now) => {
      const free = nextFree.get(target) ?? 0
      if (free > now) return free - now
      if (perMinute > 0) {
        nextFree.set(target, now + 60_000 / perMinute)
        forgetPast(now)
      }
      return 0
    },
    holdUntil: (target, until) => {
      if (until > (nextFree.get(target) ?? 0)) nextFree.set(target, until)
    },
  }
}
