import { readFileSync } from 'node:fs'
import type { Json } from '../src/events/catalog/arbitraries.ts'

/**
 * One event type's `data` fixtures (`schemas/fixtures/<type>.json`): documents the contract
 * accepts, and documents it refuses with the reason.
 */
export interface DataFixtures {
  readonly valid: readonly Json[]
  readonly invalid: readonly { readonly because: string; readonly data: Json }[]
}

/** The fixtures of `type` (or `cloudevent`, the envelope's). */
export const fixturesOf = (type: string): DataFixtures =>
  JSON.parse(readFileSync(new URL(`./fixtures/${type}.json`, import.meta.url), 'utf8')) as DataFixtures

/**
 * The `index`th valid `data` of `type`, so events built from it pass the contract.
 *
 * @example
 * const event = { ...envelope, type: 'system.feeds.sync.failed', data: validDataOf('system.feeds.sync.failed') }
 */
export const validDataOf = (type: string, index = 0): Record<string, unknown> => {
  const data = fixturesOf(type).valid[index]
  if (data === undefined) throw new Error(`no valid fixture ${index} of ${type}`)
  return data as Record<string, unknown>
}
