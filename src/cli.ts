#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { CLIENT_COMMANDS } from './cli/index.ts'
import { loadConfigFromProcess, redactConfig, secretFree } from './config/index.ts'
import { errorText, isHeraldError } from './errors/index.ts'
import { exitAtOnce } from './exit-at-once.ts'
import { type Herald, startHerald } from './herald.ts'
import { createLogger } from './observability/index.ts'

const USAGE = `usage: herald <command>

commands:
  start     run Herald (API, router, deliverer, projector) until SIGTERM or SIGINT
  config    print the effective configuration, secrets redacted, and exit
  publish   send CloudEvents from a file or stdin to Herald's HTTP API or to Kafka
  generate  print (or publish) realistic engine activity, seeded and rate-limited
  rebuild-reports
            rebuild the report tables from the raw events in a running Herald
  log-reset list the event log resets a running Herald's projector refuses; --accept them

'herald <command> --help' describes a command's options.

Configuration: a YAML file named by HERALD_CONFIG, every key overridable by an
environment variable (HERALD_PORT, HERALD_DATA_DIR, HERALD_ADMIN_TOKEN, ...).
See src/config/REFERENCE.md.`

const fail = (message: string, code = 2): never => {
  process.stderr.write(`herald: ${message}\n`)
  process.exit(code)
}

const main = async () => {
  // Producer tools and the admin commands take their own options and need no Herald configuration.
  const [sub] = process.argv.slice(2)
  const clients = CLIENT_COMMANDS
  if (sub !== undefined && Object.hasOwn(clients, sub)) {
    const run = clients[sub as keyof typeof clients]
    process.exitCode = await run(process.argv.slice(3), {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      fetch,
    })
    return
  }
  let parsed: { positionals: string[]; values: { help?: boolean | undefined } }
  try {
    parsed = parseArgs({ allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } })
  } catch (error) {
    return fail(`${errorText(error)}\n\n${USAGE}`)
  }
  const { positionals, values } = parsed
  const command = positionals[0]
  if (values.help || command === 'help') {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  // Nothing is started unasked: a server that binds every interface and writes a data
  // directory where it was run.
  if (command === undefined) return fail(`no command given\n\n${USAGE}`)
  if (command !== 'config' && command !== 'start') return fail(`unknown command "${command}"\n\n${USAGE}`)
  const extra = positionals[1]
  if (extra !== undefined)
    return fail(`${command} takes no argument, got ${JSON.stringify(extra)}\n\n${USAGE}`)
  let config: ReturnType<typeof loadConfigFromProcess>
  try {
    config = loadConfigFromProcess()
  } catch (error) {
    return fail(isHeraldError(error) ? error.message : String(error))
  }
  if (command === 'config') {
    process.stdout.write(`${JSON.stringify(redactConfig(config), null, 2)}\n`)
    return
  }

  const logger = createLogger({ level: config.log_level })
  // Listened for from the start: a signal during start-up abandons it, stopping what started.
  const starting = new AbortController()
  let herald: Herald | undefined
  let exitCode: number | undefined
  const hideSecrets = secretFree(config)
  /**
   * Stops Herald, started, then exits with `exitCode`. A stop that failed left something
   * running, maybe a chDB statement an exit would wait for: it ends the process at once, killed.
   */
  const stopAndExit = (started: Herald) => {
    started.stop().then(
      () => process.exit(exitCode ?? 0),
      (error: unknown) => {
        logger('error', 'herald.stop_failed', { error: hideSecrets(errorText(error)) })
        exitAtOnce()
      },
    )
  }
  /**
   * Stops Herald (`signal`: what asked), or abandons its start-up, then exits with `code`. A
   * second signal, and a shutdown past shutdown_timeout_ms, end the process at once, killed
   * (`exitAtOnce`): `process.exit` would wait for any chDB statement still running.
   */
  const shutdown = (signal: string, code = 0) => {
    if (exitCode !== undefined) {
      logger('warn', 'herald.forced_exit', { signal })
      exitAtOnce()
    }
    exitCode = code
    logger(code === 0 ? 'info' : 'error', 'herald.signal', {
      signal,
      ...(herald === undefined ? { during: 'start-up' } : {}),
    })
    const timer = setTimeout(() => {
      logger('error', 'herald.shutdown_timeout', { timeout_ms: config.shutdown_timeout_ms })
      exitAtOnce()
    }, config.shutdown_timeout_ms)
    timer.unref()
    if (herald === undefined) starting.abort(new Error(`start-up abandoned on ${signal}`))
    else stopAndExit(herald)
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  // A failure nothing caught is logged as one fatal line, its text without any secret the
  // configuration holds (the log is written synchronously: the line is out whatever follows),
  // then Herald stops as on a signal, within shutdown_timeout_ms, and exits 1 for whatever runs
  // it to start it again. Not at once: exiting while the projector's thread is inside chDB can
  // leave the process stuck in chDB's exit handlers. A failure while stopping ends it at once,
  // killed, as a second signal does.
  const crash = (kind: string) => (error: unknown) => {
    logger.fatal('herald.crashed', { kind, error: hideSecrets(errorText(error)) })
    shutdown(kind, 1)
  }
  process.on('uncaughtException', crash('uncaught_exception'))
  process.on('unhandledRejection', crash('unhandled_rejection'))

  // What Herald creates (the data directory's SQLite files and their journals, the warehouse,
  // generated keys) is for its own user only, whatever umask it was started with.
  process.umask(process.umask(0o077) | 0o077)
  herald = await startHerald(config, {
    logger,
    processMetrics: true,
    onFatal: () => shutdown('fatal', 1),
    signal: starting.signal,
  }).catch((error: unknown) => {
    if (starting.signal.aborted) {
      // What had started is closed again: the data directory, ports and consumers are free.
      logger(exitCode === 0 ? 'info' : 'error', 'herald.start_abandoned', {
        reason: hideSecrets(errorText(error)),
      })
      return process.exit(exitCode ?? 1)
    }
    logger('error', 'herald.start_failed', { error: hideSecrets(errorText(error)) })
    return fail(isHeraldError(error) ? hideSecrets(error.message) : 'start-up failed; see the log above', 1)
  })
  // Asked to stop just as the start-up finished.
  if (exitCode !== undefined) stopAndExit(herald)
}

await main()
