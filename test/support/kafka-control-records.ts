import { createConnection } from 'node:net'

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), which a record batch's checksum uses.
const CRC32C_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  return c >>> 0
})
const crc32c = (bytes: Uint8Array): number => {
  let crc = 0xffffffff
  for (const byte of bytes) crc = (CRC32C_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}

const int16 = (n: number): Buffer => {
  const b = Buffer.alloc(2)
  b.writeInt16BE(n)
  return b
}
const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}
const int64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8)
  b.writeBigInt64BE(n)
  return b
}
const text = (s: string): Buffer => Buffer.concat([int16(Buffer.byteLength(s)), Buffer.from(s)])
/** A zigzag varint of a small non-negative number (below 64: one byte). */
const smallVarint = (n: number): Buffer => Buffer.from([n * 2])

/**
 * A record batch holding one transaction marker (a control record: COMMIT, or ABORT) of
 * producer `producerId`, as a transaction coordinator writes after a transaction's records.
 */
const markerBatch = (producerId: bigint, commit: boolean): Buffer => {
  const key = Buffer.concat([int16(0), int16(commit ? 1 : 0)]) // version 0, type
  const value = Buffer.concat([int16(0), int32(0)]) // version 0, coordinator epoch
  const body = Buffer.concat([
    Buffer.from([0]), // attributes
    smallVarint(0), // timestamp delta
    smallVarint(0), // offset delta
    smallVarint(key.length),
    key,
    smallVarint(value.length),
    value,
    smallVarint(0), // headers
  ])
  const record = Buffer.concat([smallVarint(body.length), body])
  const now = BigInt(Date.now())
  const checked = Buffer.concat([
    int16(0x10 | 0x20), // transactional, control
    int32(0), // last offset delta
    int64(now),
    int64(now),
    int64(producerId),
    int16(0), // producer epoch
    int32(-1), // base sequence
    int32(1), // records
    record,
  ])
  const afterLength = Buffer.concat([int32(0), Buffer.from([2]), int32(0), checked])
  afterLength.writeUInt32BE(crc32c(checked), 5)
  return Buffer.concat([int64(0n), int32(afterLength.length), afterLength])
}

/** One Produce (v3) request of `records` to a partition; resolves to the error code and base offset. */
const produceTo = (
  broker: string,
  topic: string,
  partition: number,
  records: Buffer,
): Promise<{ error: number; offset: number }> => {
  const [host, port] = broker.split(':')
  const request = Buffer.concat([
    int16(0), // Produce
    int16(3),
    int32(1), // correlation id
    text('herald-test-markers'),
    int16(-1), // no transactional id
    int16(-1), // acks: all
    int32(5_000),
    int32(1),
    text(topic),
    int32(1),
    int32(partition),
    int32(records.length),
    records,
  ])
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port: Number(port) }, () => {
      socket.write(Buffer.concat([int32(request.length), request]))
    })
    let answer = Buffer.alloc(0)
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no Produce answer from ${broker}`)))
    socket.on('error', reject)
    socket.on('data', (chunk) => {
      answer = Buffer.concat([answer, chunk])
      if (answer.length < 4 || answer.length < 4 + answer.readInt32BE(0)) return
      socket.end()
      // size, correlation id, 1 topic (its name), 1 partition: index, error, base offset.
      const at = 4 + 4 + 4 + 2 + answer.readInt16BE(12) + 4 + 4
      resolve({ error: answer.readInt16BE(at), offset: Number(answer.readBigInt64BE(at + 2)) })
    })
  })
}

/**
 * Appends a transaction marker to a partition of a librdkafka mock cluster and gives its
 * offset, as a transaction coordinator does once a transactional producer's transaction ends:
 * the offset a control record takes, which consumers never see as a message. The mock stores
 * whatever record batch it is sent, control batches too (a real broker takes markers only
 * from its coordinator, and the mock's own transactions write none), so this is how tests get
 * markers into a topic. Each broker is tried until the partition's leader takes it.
 *
 * @example
 * await log.publish(topic, [{ key: 'k', value }]) // offset 0
 * await appendTransactionMarker(kafka.bootstrapServers, topic, 0) // 1
 */
export const appendTransactionMarker = async (
  bootstrapServers: readonly string[],
  topic: string,
  partition: number,
  options: { readonly commit?: boolean; readonly producerId?: bigint } = {},
): Promise<number> => {
  const batch = markerBatch(options.producerId ?? 4_242n, options.commit ?? true)
  const errors: number[] = []
  for (const broker of bootstrapServers) {
    const { error, offset } = await produceTo(broker, topic, partition, batch)
    if (error === 0) return offset
    errors.push(error)
  }
  throw new Error(`no broker took the marker for ${topic}/${partition} (error codes ${errors.join(', ')})`)
}
