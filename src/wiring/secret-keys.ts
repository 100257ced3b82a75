import { join } from 'node:path'
import type { Config } from '../config/index.ts'
import { ConfigError, errorText, isValidationError } from '../errors/index.ts'
import {
  type EndpointConfiguration,
  keyIdsInUse,
  loadSelectorSet,
  type NotificationConfigService,
  type ReadAll,
} from '../notifications/index.ts'
import type { Logger } from '../observability/index.ts'
import {
  createSecretBox,
  keyIdOfText,
  loadOrCreateKeyFile,
  readKeyFile,
  type SecretBox,
  warnIfOpenToOthers,
} from '../secrets/index.ts'

const KEY_PATH = 'secrets.encryption_key'

const configurations = (n: number): string => `${n} configuration${n === 1 ? '' : 's'}`

/** `key id bd24ed89 (3 configurations), …`: which keys, and how much each one holds. */
const describeUse = (inUse: ReadonlyMap<string, readonly string[]>, keyIds: readonly string[]): string =>
  keyIds.map((id) => `key id ${id} (${configurations(inUse.get(id)?.length ?? 0)})`).join(', ')

/** The id of the key in `file`; undefined when there is none, or none that can be read. */
const keyIdInFile = (file: string): string | undefined => {
  try {
    const key = readKeyFile(file)
    return key === undefined ? undefined : keyIdOfText(key)
  } catch {
    return undefined
  }
}

export interface OpenSecretBoxOptions {
  readonly config: Config
  /** The configuration store's `readAll`: read only when a key is missing or left out. */
  readonly readAll: ReadAll
  readonly logger: Logger
  readonly clock: () => number
}

/**
 * The secret box of Herald's configuration: `secrets.encryption_key`, or the key in
 * `data_dir/secret.key`, generated when there is none; `secrets.previous_keys` open too.
 *
 * Refuses (ConfigError) to leave a key behind that stored secrets need, since with another one
 * they are all lost: a missing `secret.key` is generated only when no stored secret was sealed
 * with a key other than the previous keys; and a configured key that replaces the one in
 * `secret.key` must list it in `previous_keys` while stored secrets use it. Either check reads
 * every configuration, so it is made only then, not at every start.
 *
 * @example
 * const box = await openSecretBox({ config, readAll: (o) => store.readAll(o), logger, clock })
 */
export const openSecretBox = async (options: OpenSecretBoxOptions): Promise<SecretBox> => {
  const { config, readAll, logger, clock } = options
  const file = join(config.data_dir, 'secret.key')
  const { encryption_key: configured, previous_keys: previous } = config.secrets
  const known = new Set(previous.map(keyIdOfText))
  const inStore = async () =>
    keyIdsInUse((await loadSelectorSet(readAll)).set.configurations.values(), clock())

  let current: string
  if (configured === null) {
    const existing = readKeyFile(file)
    if (existing === undefined) {
      const inUse = await inStore()
      const missing = [...inUse.keys()].filter((id) => !known.has(id)).sort()
      if (missing.length > 0)
        throw new ConfigError([
          {
            path: KEY_PATH,
            message: `is unset, and the key file ${file} is missing, but the event store holds secrets sealed with ${describeUse(inUse, missing)}, which a new key would not open. Restore the key that sealed them: put the file back, or set secrets.encryption_key or list the key in secrets.previous_keys`,
          },
        ])
    }
    current = existing ?? loadOrCreateKeyFile(file)
    warnIfOpenToOthers(file, logger)
  } else {
    current = configured
    known.add(keyIdOfText(configured))
    const inFile = keyIdInFile(file)
    if (inFile !== undefined && !known.has(inFile)) {
      const holders = (await inStore()).get(inFile)
      if (holders !== undefined)
        throw new ConfigError([
          {
            path: KEY_PATH,
            message: `is set and replaces the key in ${file} (key id ${inFile}), which sealed secrets of ${configurations(holders.length)} in the event store: list it in secrets.previous_keys so that they still open, or, to give those secrets up, remove the file`,
          },
        ])
    }
  }
  try {
    return createSecretBox({ current, previous })
  } catch (error) {
    // Configuration checking refuses such keys first; named as the configuration names them.
    if (!isValidationError(error)) throw error
    throw new ConfigError(
      error.issues.map((issue) => ({
        path: issue.path === 'current' ? (configured === null ? file : KEY_PATH) : `secrets.${issue.path}`,
        message: issue.message,
      })),
    )
  }
}

export interface ResealingOptions {
  readonly service: Pick<NotificationConfigService, 'resealSecrets'>
  /** Every stored configuration, as the start-up read them. */
  readonly configurations: Iterable<EndpointConfiguration>
  readonly box: SecretBox
  readonly logger: Logger
  readonly clock: () => number
}

export interface Resealing {
  /** Resolves once every configuration due was re-sealed (or the run stopped). */
  readonly done: Promise<void>
  /** Stops after the configuration being re-sealed; resolves once it is. */
  stop(): Promise<void>
}

/**
 * At start-up, re-seals with the current key every stored secret a previous key sealed, so
 * that after one start with the new key current and the old one in `secrets.previous_keys`,
 * no secret needs the old key and it can be dropped. Runs in the background, one configuration
 * at a time, each under optimistic concurrency (`resealSecrets`): instances starting together
 * re-seal each secret once. The first failure (the store unavailable) ends the run, logged as
 * `secrets.reseal_failed`; the next start takes it up again.
 *
 * Logs, as the error `secrets.key_unknown`, each key id of stored secrets that none of `box`'s
 * keys has, with the ids of the configurations concerned (never a value): their deliveries and
 * tests fail until the key is listed in `secrets.previous_keys` or their secrets are set anew.
 * Herald starts all the same, since a key lost for good would otherwise keep it from ever
 * starting again, stopping every other configuration's deliveries, with no way to replace or
 * delete the configurations concerned. A run with configurations due logs `secrets.resealing`
 * (how many, sealed with which previous keys) as it begins and `secrets.resealed` as it ends.
 * Then, once the re-sealing is over, `secrets.keys_in_use`:
 * the key ids stored secrets need, how many configurations need each, and the previous keys
 * none needs any more.
 */
export const startResealing = (options: ResealingOptions): Resealing => {
  const { service, box, logger, clock } = options
  const stored = new Map([...options.configurations].map((c) => [c.id, c]))
  const now = clock()
  const before = keyIdsInUse(stored.values(), now)
  for (const [keyId, holders] of before) {
    if (box.keyIds.includes(keyId)) continue
    logger('error', 'secrets.key_unknown', {
      key_id: keyId,
      count: holders.length,
      configurations: holders.slice(0, 100),
      hint: 'no configured key opens these configurations’ secrets, so their deliveries fail: list the key with this id in secrets.previous_keys, or set their secrets anew',
    })
  }
  const previous = new Set(box.keyIds.filter((id) => id !== box.currentKeyId))
  const due = [...new Set([...previous].flatMap((keyId) => before.get(keyId) ?? []))].sort()

  let stopping = false
  const reseal = async (): Promise<void> => {
    // Said as it begins: on a large store it runs a while, one configuration at a time.
    if (due.length > 0)
      logger('info', 'secrets.resealing', {
        key_id: box.currentKeyId,
        configurations: due.length,
        previous_key_ids: [...previous].filter((keyId) => before.has(keyId)),
      })
    let configurations = 0
    let secrets = 0
    for (const [index, id] of due.entries()) {
      if (stopping) {
        logger('info', 'secrets.reseal_stopped', { left: due.length - index })
        return
      }
      try {
        const result = await service.resealSecrets(id)
        if (result === undefined) stored.delete(id)
        else stored.set(id, result.configuration)
        if (result !== undefined && result.resealed.length > 0) {
          configurations++
          secrets += result.resealed.length
        }
      } catch (error) {
        logger('error', 'secrets.reseal_failed', {
          configuration_id: id,
          error: errorText(error),
          left: due.length - index,
          hint: 'the next start re-seals what is left',
        })
        return
      }
    }
    if (due.length > 0)
      logger('info', 'secrets.resealed', { key_id: box.currentKeyId, configurations, secrets })
    const inUse = keyIdsInUse(stored.values(), clock())
    logger('info', 'secrets.keys_in_use', {
      current_key_id: box.currentKeyId,
      previous_key_ids: [...previous],
      in_use: Object.fromEntries([...inUse].map(([keyId, holders]) => [keyId, holders.length])),
      // What secrets.previous_keys may now leave out.
      unused_previous_key_ids: [...previous].filter((keyId) => !inUse.has(keyId)),
    })
  }
  const done = reseal()
  return {
    done,
    stop: () => {
      stopping = true
      return done
    },
  }
}
