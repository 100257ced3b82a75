/**
 * One benchmark, run on an earlier commit and on the working tree by turns:
 * `npx node test/bench/ab.ts --base <rev> [--runs N] [--match REGEX] -- <bench file> [its flags]`.
 *
 * This machine's speed moves by a fifth from one run to the next, so a change is measured
 * against its base run beside it, never against a figure from another hour. The base is checked
 * out in a temporary worktree (detached, using this checkout's `node_modules`), and the two
 * alternate, base first in odd runs and the working tree first in even ones, so neither always
 * runs on the warmer or the busier machine. Every figure a benchmark prints as a table row
 * (`| what | 1,234 µs | …`) or as its calibration line is collected; the closing table gives
 * each figure's values in both trees, their medians and the change. The worktree is removed at
 * the end, whether the runs finished or not.
 *
 * @example
 * npx node test/bench/ab.ts --base main --runs 4 --match 'deliveries/s|÷' -- test/bench/delivery.bench.ts --deliveries 20000 --seconds 1
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { positiveWholeNumber } from './args.ts'

/** A figure's label and value, in the order the benchmark printed them. */
export type Figures = Map<string, number>

const CALIBRATION = 'machine calibration, ms'

/** Whether a figure is listed: the calibration always, the rest when `match` finds them (or no `match`). */
const wanted = (label: string, match: RegExp | undefined): boolean =>
  label === CALIBRATION || match === undefined || match.test(label)

const NUMBER = /-?\d[\d,]*(?:\.\d+)?/

/**
 * The figures of one run's output: each table row whose second cell holds a number (its first
 * number, thousands separators dropped), labelled by its first cell, and the calibration line.
 * A label printed twice keeps its first value.
 *
 * @example
 * figuresOf('| deliveries/s | 2,962 | ≥ 5,000 |') // Map { 'deliveries/s' => 2962 }
 */
export const figuresOf = (output: string): Figures => {
  const figures: Figures = new Map()
  const add = (label: string, text: string) => {
    const found = NUMBER.exec(text)
    if (found === null || label === '' || figures.has(label)) return
    figures.set(label, Number(found[0].replaceAll(',', '')))
  }
  for (const line of output.split('\n')) {
    const calibration = /^machine calibration: (\d+(?:\.\d+)?) ms/.exec(line)
    if (calibration !== null) {
      add(CALIBRATION, calibration[1] as string)
      continue
    }
    const cells = line.trim().split('|')
    // `| a | b |` splits into ['', ' a ', ' b ', '']; a separator row (`|---|`) has no number.
    if (cells.length < 4 || cells[0] !== '' || cells.at(-1) !== '') continue
    add((cells[1] as string).trim(), cells[2] as string)
  }
  return figures
}

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

const shown = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: 2 })

/**
 * The closing table: for each label (in the order first printed, `match` applied), the values
 * of every run in each tree, their medians, and the working tree's median against the base's.
 */
export const comparison = (base: readonly Figures[], head: readonly Figures[], match?: RegExp): string => {
  const labels = [...new Set([...base, ...head].flatMap((figures) => [...figures.keys()]))].filter((label) =>
    wanted(label, match),
  )
  const rows = labels.map((label) => {
    const of = (runs: readonly Figures[]) =>
      runs.map((figures) => figures.get(label)).filter((v): v is number => v !== undefined)
    const a = of(base)
    const b = of(head)
    const change =
      a.length === 0 || b.length === 0 || median(a) === 0
        ? ''
        : `${((median(b) / median(a) - 1) * 100).toFixed(1).replace(/^(?!-)/, '+')}%`
    const list = (values: number[]) => values.map(shown).join(', ')
    const mid = (values: number[]) => (values.length === 0 ? '' : shown(median(values)))
    return `| ${label} | ${list(a)} | ${list(b)} | ${mid(a)} | ${mid(b)} | ${change} |`
  })
  return [
    '| figure | base, by run | working tree, by run | base median | working tree median | change |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n')
}

const git = (cwd: string, ...args: string[]): string => {
  const result = spawnSync('git', args, { cwd, encoding: 'utf8' })
  if (result.status !== 0)
    throw new Error(`git ${args.join(' ')}: ${result.stderr.trim() || `exit ${result.status}`}`)
  return result.stdout.trim()
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      base: { type: 'string' },
      runs: { type: 'string', default: '3' },
      match: { type: 'string' },
    },
  })
  const [bench, ...benchArgs] = positionals
  if (values.base === undefined || bench === undefined) {
    throw new Error(
      'usage: npx node test/bench/ab.ts --base <rev> [--runs N] [--match REGEX] -- <bench file> [its flags]',
    )
  }
  const runs = positiveWholeNumber('--runs', values.runs)
  let match: RegExp | undefined
  try {
    match = values.match === undefined ? undefined : new RegExp(values.match)
  } catch (error) {
    throw new Error(`--match is not a regular expression: ${(error as Error).message}`)
  }
  const root = git(process.cwd(), 'rev-parse', '--show-toplevel')
  const commit = git(root, 'rev-parse', '--verify', `${values.base}^{commit}`)
  const benchPath = resolve(process.cwd(), bench)
  if (!benchPath.startsWith(`${root}/`) || !existsSync(benchPath))
    throw new Error(`${bench}: no such file in this checkout`)
  const relative = benchPath.slice(root.length + 1)

  const scratch = mkdtempSync(join(tmpdir(), 'herald-ab-'))
  const baseTree = join(scratch, 'base')
  const stop = () => {
    spawnSync('git', ['worktree', 'remove', '--force', baseTree], { cwd: root })
    rmSync(scratch, { recursive: true, force: true })
  }
  process.once('SIGINT', () => {
    stop()
    process.exit(130)
  })
  try {
    git(root, 'worktree', 'add', '--detach', baseTree, commit)
    if (existsSync(join(root, 'node_modules')))
      symlinkSync(join(root, 'node_modules'), join(baseTree, 'node_modules'), 'dir')
    if (!existsSync(join(baseTree, relative))) throw new Error(`${relative} is not in ${values.base}`)
    process.stdout.write(
      `base ${values.base} (${commit.slice(0, 7)}) against the working tree of ${root}, ${runs} runs\n`,
    )
    const trees = [
      { name: 'base', dir: baseTree, figures: [] as Figures[] },
      { name: 'working tree', dir: root, figures: [] as Figures[] },
    ]
    for (let run = 1; run <= runs; run++) {
      for (const tree of run % 2 === 1 ? trees : [...trees].reverse()) {
        const result = spawnSync(
          process.execPath,
          ['--disable-warning=TimeoutNegativeWarning', relative, ...benchArgs],
          {
            cwd: tree.dir,
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'inherit'],
            maxBuffer: 64 * 1024 * 1024,
          },
        )
        if (result.status !== 0)
          throw new Error(`run ${run} in the ${tree.name} exited with ${result.status ?? result.signal}`)
        const figures = figuresOf(result.stdout)
        tree.figures.push(figures)
        const picked = [...figures].filter(([label]) => wanted(label, match))
        process.stdout.write(
          `run ${run}, ${tree.name}: ${picked.map(([label, value]) => `${label} ${shown(value)}`).join('; ')}\n`,
        )
      }
    }
    process.stdout.write(`\n${comparison(trees[0]?.figures ?? [], trees[1]?.figures ?? [], match)}\n`)
  } finally {
    stop()
  }
}
