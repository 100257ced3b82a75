/**
 * Herald's configuration: read and validated once at start-up, then passed down in slices.
 *
 * @example
 * const config = loadConfig({ env: process.env })   // throws ConfigError naming every bad key
 * logger.info('config.loaded', { config: redactConfig(config) })
 */
export { CONFIG_FILE_VARIABLE, ENV_ALIASES, type Env, envNameOf } from './env.ts'
export type { ReadFile } from './file.ts'
export {
  attemptTimeoutOf,
  type LoadConfigOptions,
  loadConfig,
  loadConfigFromProcess,
  topicPartitions,
} from './load.ts'
export { REDACTED, redactConfig, scrubCredentials, secretFree } from './redact.ts'
export { ADMIN_TOKEN_MIN_LENGTH, bearerTokenIssue, isHostPort, kurrentConnectionStringIssue } from './spec.ts'
export type * from './types.ts'
