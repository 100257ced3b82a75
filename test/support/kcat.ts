import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** A message as `kcat -C -J` prints it. */
export interface KcatMessage {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly key: string | null
  readonly payload: string | null
  readonly headers: Readonly<Record<string, string>>
}

/**
 * Debian's `kcat` (librdkafka), an external Kafka client Herald shares no code with, for
 * interoperability tests: what it produces Herald must read, what Herald produces it must read.
 *
 * @example
 * const kcat = createKcat(kafka.bootstrapServers)
 * await kcat.produce('engine.events', { key: 'acme', value: bytes, headers: { ce_id: 'e1' } })
 * const messages = await kcat.consumeAll('notifications.deliveries')
 */
export const createKcat = (bootstrapServers: readonly string[]) => {
  const brokers = bootstrapServers.join(',')
  const dir = mkdtempSync(join(tmpdir(), 'herald-kcat-'))
  let files = 0
  return {
    /**
     * One message per call: the value goes through a file, so any bytes survive. A header
     * given as `null` is sent with a null value (kcat's `-H name` without `=`), as Kafka allows.
     */
    async produce(
      topic: string,
      message: {
        key: string
        value: Uint8Array | string
        headers?: Readonly<Record<string, string | null>>
      },
    ): Promise<void> {
      const file = join(dir, `message-${files++}`)
      writeFileSync(file, message.value)
      const headers = Object.entries(message.headers ?? {}).flatMap(([name, value]) => [
        '-H',
        value === null ? name : `${name}=${value}`,
      ])
      await run('kcat', ['-P', '-b', brokers, '-t', topic, '-k', message.key, ...headers, file], {
        timeout: 30_000,
      })
    },
    /** Everything on `topic` from the beginning to the current end of each partition. */
    async consumeAll(topic: string): Promise<KcatMessage[]> {
      const { stdout } = await run(
        'kcat',
        ['-C', '-b', brokers, '-t', topic, '-o', 'beginning', '-e', '-J', '-q'],
        {
          timeout: 30_000,
          maxBuffer: 64 * 1024 * 1024,
        },
      )
      return stdout
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => {
          const raw = JSON.parse(line) as Omit<KcatMessage, 'headers'> & { headers?: string[] }
          const headers: Record<string, string> = {}
          const list = raw.headers ?? []
          for (let i = 0; i + 1 < list.length; i += 2) headers[list[i] as string] = list[i + 1] as string
          return { ...raw, headers }
        })
    },
    close(): void {
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
