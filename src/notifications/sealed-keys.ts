import { keyIdOfSealed } from '../secrets/index.ts'
import { replacedSigningAt } from './configuration.ts'
import type { EndpointConfiguration } from './model.ts'

/**
 * The sealed values a configuration still opens: each secret's, and the replaced values of a
 * signing secret that still sign at `now` (ms). Older replaced values are never opened again.
 */
export const sealedValuesOf = (configuration: EndpointConfiguration, now: number): string[] =>
  Object.values(configuration.secrets).flatMap((secret) => [
    secret.sealed,
    ...replacedSigningAt(secret, now).map((replaced) => replaced.sealed),
  ])

/**
 * Which keys the stored secrets need: the ids of the keys that sealed them (read from each
 * value's header, nothing opened), each with the ids of the configurations holding one, in
 * order. What tells whether a key may be dropped, and which configurations a lost key affects.
 *
 * @example
 * keyIdsInUse(set.configurations.values(), clock()) // Map { 'bd24ed89' => ['5f0c…', …] }
 */
export const keyIdsInUse = (
  configurations: Iterable<EndpointConfiguration>,
  now: number,
): Map<string, string[]> => {
  const inUse = new Map<string, string[]>()
  for (const configuration of configurations) {
    const ids = new Set<string>()
    for (const sealed of sealedValuesOf(configuration, now)) {
      const keyId = keyIdOfSealed(sealed)
      if (keyId !== undefined) ids.add(keyId)
    }
    for (const keyId of ids) {
      const holders = inUse.get(keyId)
      if (holders === undefined) inUse.set(keyId, [configuration.id])
      else holders.push(configuration.id)
    }
  }
  for (const holders of inUse.values()) holders.sort()
  return inUse
}
