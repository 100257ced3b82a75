import { runGenerate } from './generate.ts'
import { runLogReset } from './log-reset.ts'
import { runPublish } from './publish.ts'
import { runRebuild } from './rebuild.ts'

export { GENERATE_USAGE, runGenerate } from './generate.ts'
export { type CliDeps, EXIT_FAILED, EXIT_OK, EXIT_USAGE, type Output } from './io.ts'
export { LOG_RESET_USAGE, runLogReset } from './log-reset.ts'
export { PUBLISH_USAGE, runPublish } from './publish.ts'
export { REBUILD_USAGE, runRebuild } from './rebuild.ts'

/**
 * The client commands: producer tools and admin commands that take their own options, read
 * `HERALD_URL` and `HERALD_TOKEN`, and need no Herald configuration.
 */
export const CLIENT_COMMANDS = {
  publish: runPublish,
  generate: runGenerate,
  'rebuild-reports': runRebuild,
  'log-reset': runLogReset,
} as const
