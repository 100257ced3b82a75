import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type HeraldProcess, startHeraldProcess } from './herald-process.ts'
import { type KafkaMock, startKafkaMock } from './kafka-mock.ts'

/** Herald's default topic names (`event_log.topics.*`). */
export const HERALD_TOPICS = {
  events: 'engine.events',
  dlq: 'engine.events.dlq',
  deliveries: 'notifications.deliveries',
  outcomes: 'notifications.outcomes',
  metrics: 'reports.metrics',
} as const

export interface HeraldOnKafka {
  readonly kafka: KafkaMock
  /** Where clients other than Herald connect: the mock's own brokers. */
  readonly brokers: readonly string[]
  readonly dataDir: string
  readonly adminToken: string
  /** The running Herald process (replaced by `restart`). */
  readonly herald: HeraldProcess
  /** Stops Herald (SIGTERM) and starts it again on the same data and topics, `env` added. */
  restart(env?: Record<string, string>): Promise<HeraldProcess>
  /** Stops Herald (SIGTERM, SIGKILL after 10 s) and the cluster; removes the data directory. */
  stop(): Promise<void>
}

export interface HeraldOnKafkaOptions {
  /** Partitions of every topic (default 3, Herald's default on Kafka). */
  readonly partitions?: number
  /** More environment for Herald (log level, reports switch, ...). */
  readonly env?: Record<string, string>
  readonly startTimeoutMs?: number
}

/**
 * A real Herald process (`herald start`) on the Kafka event log, with the embedded event store
 * and warehouse: the librdkafka mock cluster with Herald's topics created through the mock's
 * API. The mock names no live controller and holds an empty fetch for the whole wait, so
 * Herald's producer is not idempotent here and its fetches wait 100 ms. Webhook targets on
 * loopback are allowlisted.
 *
 * @example
 * const rig = await startHeraldOnKafka()
 * // publish to rig.brokers, call rig.herald.url with rig.adminToken
 * await rig.stop()
 */
export const startHeraldOnKafka = async (options: HeraldOnKafkaOptions = {}): Promise<HeraldOnKafka> => {
  const partitions = options.partitions ?? 3
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-kafka-'))
  const adminToken = `admin-${randomUUID()}`
  const kafka = await startKafkaMock()
  let herald: HeraldProcess | undefined
  const env = (extra: Record<string, string> = {}) => ({
    HERALD_DATA_DIR: dataDir,
    HERALD_ADMIN_TOKEN: adminToken,
    HERALD_OUTBOUND_ALLOWLIST: '127.0.0.1',
    HERALD_EVENT_LOG__KIND: 'kafka',
    HERALD_EVENT_LOG__KAFKA__BROKERS: kafka.bootstrapServers.join(','),
    HERALD_EVENT_LOG__KAFKA__IDEMPOTENT: 'false',
    HERALD_EVENT_LOG__KAFKA__CONSUMER__MAX_WAIT_MS: '100',
    HERALD_EVENT_LOG__PARTITIONS: String(partitions),
    ...options.env,
    ...extra,
  })
  const stop = async () => {
    // Gracefully first (a profile or a final log is written on exit), then at once.
    const running = herald
    if (running !== undefined) {
      const timer = setTimeout(() => void running.stop('SIGKILL'), 10_000)
      await running.stop('SIGTERM')
      clearTimeout(timer)
    }
    await kafka.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
  try {
    for (const topic of Object.values(HERALD_TOPICS)) await kafka.createTopic(topic, partitions)
    herald = await startHeraldProcess(env(), options.startTimeoutMs)
  } catch (error) {
    await stop()
    throw error
  }
  return {
    kafka,
    brokers: kafka.bootstrapServers,
    dataDir,
    adminToken,
    get herald() {
      return herald as HeraldProcess
    },
    restart: async (extra) => {
      const code = await herald?.stop('SIGTERM')
      if (code !== 0) throw new Error(`herald stopped with exit code ${code}`)
      herald = await startHeraldProcess(env(extra), options.startTimeoutMs)
      return herald
    },
    stop,
  }
}
