import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { KafkaEventLogOptions } from '../../src/adapters/kafka-event-log/index.ts'

/** A running librdkafka mock cluster (see infra/kafka-mock/mock-cluster.c). */
export interface KafkaMock {
  /** `host:port` of every broker, for a Kafka client's `brokers` option. */
  readonly bootstrapServers: readonly string[]
  /** The cluster's process, for its CPU time in benchmarks. */
  readonly pid: number
  /**
   * Creates a topic through the mock's own API (its brokers have no controller, so a
   * client's CreateTopics request fails). An existing topic is left as it is, like
   * `EventLog.createTopics`.
   */
  createTopic(name: string, partitions: number): Promise<void>
  /** Makes broker `id` (1-based) refuse connections until `brokerUp(id)`. */
  brokerDown(id: number): Promise<void>
  brokerUp(id: number): Promise<void>
  /**
   * Makes the next requests with this protocol API key (e.g. 14, SyncGroup) fail with these
   * Kafka error codes, one per request, in order.
   */
  injectErrors(apiKey: number, errorCodes: readonly number[]): Promise<void>
  /** Ends the cluster; resolves once the process has exited. Safe to call twice. */
  stop(): Promise<void>
}

export interface KafkaMockOptions {
  /** Number of brokers (default 1). */
  readonly brokers?: number
  /** How long to wait for the bootstrap line, in ms (default 10 000). */
  readonly startTimeoutMs?: number
  /** Path of the helper binary (default: the one `npm run test:setup` builds). */
  readonly binary?: string
  /**
   * Largest request the brokers take, in bytes (default librdkafka's 100 MB): they close the
   * connection of a client that sends a larger one, as a real broker refuses a record batch
   * over its `message.max.bytes`. The mock checks no batch size of its own.
   */
  readonly maxRequestBytes?: number
}

const defaultBinary = join(import.meta.dirname, '../../infra/kafka-mock/build/mock-cluster')
const STDERR_KEEP = 8_192

/**
 * Starts a mock Kafka cluster in a child process and resolves once its brokers listen.
 * The child exits when this process exits or dies: it stops on stdin EOF, is killed from
 * an `exit` hook, and asks the kernel for SIGTERM when its parent dies.
 *
 * @example
 * const kafka = await startKafkaMock({ brokers: 3 })
 * await kafka.createTopic('engine.events', 3)
 * const log = createKafkaEventLog({ brokers: [...kafka.bootstrapServers] })
 * // ...
 * await kafka.stop()
 */
export const startKafkaMock = async (options: KafkaMockOptions = {}): Promise<KafkaMock> => {
  const binary = options.binary ?? defaultBinary
  const brokers = options.brokers ?? 1
  if (!existsSync(binary)) {
    throw new Error(`kafka mock: ${binary} is missing; run \`npm run test:setup\` to build it`)
  }

  const args = [
    String(brokers),
    ...(options.maxRequestBytes === undefined ? [] : [String(options.maxRequestBytes)]),
  ]
  const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_KEEP)
  })
  // A write to a child that already died must surface as a failed command, not crash the run.
  child.stdin.on('error', () => {})

  const killOnExit = (): void => {
    child.kill('SIGKILL')
  }
  process.once('exit', killOnExit)

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      process.removeListener('exit', killOnExit)
      resolve({ code, signal })
    })
  })
  const describeExit = async (): Promise<string> => {
    const { code, signal } = await exited
    const how = signal === null ? `exit code ${code}` : `signal ${signal}`
    return `${how}${stderr.trim() === '' ? '' : `; stderr:\n${stderr.trim()}`}`
  }

  const lines = createInterface({ input: child.stdout })
  const waiting: Array<{ resolve: (line: string) => void; reject: (error: Error) => void }> = []
  lines.on('line', (line) => waiting.shift()?.resolve(line))
  void exited.then(async () => {
    const reason = await describeExit()
    for (const w of waiting.splice(0)) w.reject(new Error(`kafka mock exited (${reason})`))
  })
  const nextLine = (): Promise<string> =>
    new Promise((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        void describeExit().then((reason) => reject(new Error(`kafka mock exited (${reason})`)))
        return
      }
      waiting.push({ resolve, reject })
    })

  let bootstrap: string
  const startTimeoutMs = options.startTimeoutMs ?? 10_000
  let timer: NodeJS.Timeout | undefined
  try {
    bootstrap = await Promise.race([
      nextLine(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const output = stderr.trim() === '' ? '' : `; stderr:\n${stderr.trim()}`
          reject(new Error(`no bootstrap line within ${startTimeoutMs} ms${output}`))
        }, startTimeoutMs)
      }),
    ])
  } catch (error) {
    child.kill('SIGKILL')
    throw new Error(`kafka mock: ${binary} ${args.join(' ')} did not start: ${(error as Error).message}`, {
      cause: error,
    })
  } finally {
    clearTimeout(timer)
  }

  // Idle between commands the child holds no reference on the event loop, so a test file
  // that forgets stop() still ends (and the exit hook then kills the child).
  // With stdio 'pipe' the streams are sockets, though typed as plain streams.
  const pipes = [child.stdout, child.stderr] as unknown as Socket[]
  const idle = (): void => {
    child.unref()
    for (const pipe of pipes) pipe.unref()
  }
  const busy = (): void => {
    child.ref()
    for (const pipe of pipes) pipe.ref()
  }
  idle()

  // One command at a time: replies carry no id, so they pair with requests by order.
  let queue: Promise<unknown> = Promise.resolve()
  const command = (line: string): Promise<string> => {
    const run = async (): Promise<string> => {
      busy()
      try {
        const reply = nextLine()
        child.stdin.write(`${line}\n`)
        return await reply
      } finally {
        idle()
      }
    }
    const result = queue.then(run, run)
    queue = result.catch(() => {})
    return result
  }
  const expectOk = async (line: string, tolerated: readonly string[] = []): Promise<void> => {
    const reply = await command(line)
    if (reply === 'ok') return
    const code = reply.split(' ')[1] ?? ''
    if (reply.startsWith('error ') && tolerated.includes(code)) return
    throw new Error(`kafka mock: \`${line}\` failed: ${reply}`)
  }

  let stopping: Promise<void> | undefined
  return {
    bootstrapServers: bootstrap.split(',').filter((s) => s !== ''),
    pid: child.pid as number,
    createTopic: (name, partitions) => {
      if (!/^[A-Za-z0-9._-]+$/.test(name)) {
        return Promise.reject(new Error(`kafka mock: invalid topic name ${JSON.stringify(name)}`))
      }
      return expectOk(`create-topic ${name} ${partitions}`, ['TOPIC_ALREADY_EXISTS'])
    },
    brokerDown: (id) => expectOk(`broker-down ${id}`),
    brokerUp: (id) => expectOk(`broker-up ${id}`),
    injectErrors: (apiKey, errorCodes) => expectOk(`inject-errors ${apiKey} ${errorCodes.join(' ')}`),
    stop: () => {
      stopping ??= (async () => {
        busy()
        child.stdin.end()
        const timeout = setTimeout(() => child.kill('SIGKILL'), 5_000)
        await exited
        clearTimeout(timeout)
        lines.close()
      })()
      return stopping
    },
  }
}

/**
 * Kafka event-log options sized to the mock. It answers the first JoinGroup of an empty group
 * after 3 s and, once a group is up, holds every rebalance for the session timeout minus 1 s:
 * a session shorter than ~3.5 s would evict a member while it waits for that first answer.
 * Its fetches sleep the full max wait when empty, even if messages arrive meanwhile, hence
 * 100 ms. kafkajs sends InitProducerId to the controller, which the mock reports as broker 0
 * (absent), so the producer is not idempotent. Rebalances make kafkajs log errors by design;
 * tests that care pass their own logger.
 */
export const mockLogOptions = (bootstrapServers: readonly string[]): KafkaEventLogOptions => ({
  brokers: [...bootstrapServers],
  idempotent: false,
  connectionTimeoutMs: 500,
  retry: { retries: 3, initialRetryTimeMs: 50, maxRetryTimeMs: 500 },
  consumer: {
    sessionTimeoutMs: 4_000,
    heartbeatIntervalMs: 200,
    rebalanceTimeoutMs: 4_000,
    maxWaitTimeMs: 100,
  },
  retryBackoffMs: { min: 50, max: 1_000 },
  logger: () => {},
})
