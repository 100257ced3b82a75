export { GENERATE_USAGE, runGenerate } from './generate.ts'
export { type CliDeps, EXIT_FAILED, EXIT_OK, EXIT_USAGE, type Output } from './io.ts'
export { PUBLISH_USAGE, runPublish } from './publish.ts'
export { REBUILD_USAGE, runRebuild } from './rebuild.ts'
