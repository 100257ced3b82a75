/**
 * Decode + validate throughput of `decodeEngineEvent` on ~1 KB events, from bytes (UTF-8
 * decode and JSON.parse included) and from parsed objects. One thread; rates are per second
 * of this process's CPU time, so other work on the machine does not skew them.
 *
 *   node src/events/catalog/decode.bench.ts [seconds per case, default 3]
 */
import { generateActivity } from '../../generator/index.ts'
import { decodeEngineEvent } from './decode.ts'

const seconds = Number(process.argv[2] ?? 3)
const encoder = new TextEncoder()
const decoder = new TextDecoder()

// The generator's own mix, trimmed to events of 0.5–1.5 KB so the figure is "per ~1 KB event".
const sample = [
  ...generateActivity({ seed: 42, accounts: 5, count: 20_000, clock: () => Date.UTC(2026, 10, 22) }),
]
  .map((event) => encoder.encode(JSON.stringify(event)))
  .filter((bytes) => bytes.length >= 512 && bytes.length <= 1536)
  .slice(0, 4_096)
const meanBytes = sample.reduce((sum, b) => sum + b.length, 0) / sample.length
const parsed = sample.map((bytes) => JSON.parse(decoder.decode(bytes)) as unknown)

const cpuSeconds = () => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1e6
}

const run = (name: string, decodeOne: (i: number) => boolean, baseline?: number): number => {
  const deadline = performance.now() + seconds * 1_000
  let n = 0
  let failed = 0
  const started = cpuSeconds()
  while (performance.now() < deadline) {
    for (let i = 0; i < sample.length; i++) if (!decodeOne(i)) failed++
    n += sample.length
  }
  const rate = n / (cpuSeconds() - started)
  const ratio = baseline === undefined ? '' : `, ${(rate / baseline).toFixed(2)}× JSON.parse`
  console.log(
    `${name}: ${Math.round(rate).toLocaleString('en')} events per CPU-second (${failed} rejected${ratio})`,
  )
  return rate
}

console.log(`${sample.length} distinct events, mean ${Math.round(meanBytes)} bytes`)
run('warm-up', (i) => decodeEngineEvent(parsed[i]).ok)
const parse = run('baseline: UTF-8 decode + JSON.parse alone', (i) => {
  JSON.parse(decoder.decode(sample[i] as Uint8Array))
  return true
})
run('decode+validate, parsed objects', (i) => decodeEngineEvent(parsed[i]).ok, parse)
run(
  'decode+validate, from bytes',
  (i) => decodeEngineEvent(JSON.parse(decoder.decode(sample[i] as Uint8Array))).ok,
  parse,
)
