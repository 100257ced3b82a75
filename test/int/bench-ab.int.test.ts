import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { comparison, figuresOf, median } from '../bench/ab.ts'

const AB = join(import.meta.dirname, '..', 'bench', 'ab.ts')

const git = (cwd: string, ...args: string[]) => {
  const result = spawnSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.com', ...args], {
    cwd,
    encoding: 'utf8',
  })
  assert.equal(result.status, 0, result.stderr)
  return result.stdout.trim()
}

/** A benchmark that prints a calibration line and a table whose figure is `speed`. */
const bench = (speed: string) =>
  `process.stdout.write('machine calibration: 120 ms for the fixed workload\\n\\n| figure | measured | target |\\n|---|---|---|\\n| deliveries/s | ${speed} | ≥ 5,000 |\\n| CPU per delivery | 400 µs | |\\n')\n`

describe('the A/B bench harness', () => {
  it('reads the figures of table rows and the calibration line, thousands separators dropped', () => {
    const figures = figuresOf(
      'machine calibration: 124 ms for …\n| figure | measured | target |\n|---|---|---|\n| deliveries/s | 2,962 | ≥ 5,000 |\n| ratio | 6.60 | |\n| label only | none | |\nround 1: fold 12 µs',
    )
    assert.deepEqual(
      [...figures],
      [
        ['machine calibration, ms', 124],
        ['deliveries/s', 2962],
        ['ratio', 6.6],
      ],
    )
    assert.equal(median([3, 1, 2]), 2)
    assert.equal(median([4, 1, 3, 2]), 2.5)
  })

  it('compares medians by figure, keeping the calibration when a match narrows the rest', () => {
    const run = (speed: number, cpu: number) =>
      new Map([
        ['machine calibration, ms', 120],
        ['deliveries/s', speed],
        ['CPU', cpu],
      ])
    const table = comparison([run(100, 5), run(110, 5)], [run(120, 4), run(126, 4)], /deliveries/)
    assert.match(table, /\| machine calibration, ms \| 120, 120 \| 120, 120 \| 120 \| 120 \| \+0\.0% \|/)
    assert.match(table, /\| deliveries\/s \| 100, 110 \| 120, 126 \| 105 \| 123 \| \+17\.1% \|/)
    assert.doesNotMatch(table, /\| CPU \|/)
  })

  it('runs a benchmark on a base commit and on the working tree by turns, then removes the worktree', () => {
    const repo = mkdtempSync(join(tmpdir(), 'herald-ab-test-'))
    try {
      git(repo, 'init', '-q')
      writeFileSync(join(repo, 'b.ts'), bench('1,000'))
      git(repo, 'add', '.')
      git(repo, 'commit', '-q', '-m', 'base')
      // The working tree's change, uncommitted: what is measured is what is on disk.
      writeFileSync(join(repo, 'b.ts'), bench('1,250'))
      const result = spawnSync(
        process.execPath,
        [AB, '--base', 'HEAD', '--runs', '2', '--match', 'deliveries', '--', 'b.ts'],
        { cwd: repo, encoding: 'utf8' },
      )
      assert.equal(result.status, 0, result.stderr)
      const runs = result.stdout.split('\n').filter((line) => line.startsWith('run '))
      // Base first in the first run, the working tree first in the second.
      assert.deepEqual(runs, [
        'run 1, base: machine calibration, ms 120; deliveries/s 1,000',
        'run 1, working tree: machine calibration, ms 120; deliveries/s 1,250',
        'run 2, working tree: machine calibration, ms 120; deliveries/s 1,250',
        'run 2, base: machine calibration, ms 120; deliveries/s 1,000',
      ])
      assert.match(
        result.stdout,
        /\| deliveries\/s \| 1,000, 1,000 \| 1,250, 1,250 \| 1,000 \| 1,250 \| \+25\.0% \|/,
      )
      assert.equal(git(repo, 'worktree', 'list').split('\n').length, 1)
    } finally {
      rmSync(repo, { recursive: true, force: true })
    }
  })

  it('names what is wrong: an unknown base, a bench that is not there, a bench that fails', () => {
    const repo = mkdtempSync(join(tmpdir(), 'herald-ab-test-'))
    try {
      git(repo, 'init', '-q')
      writeFileSync(join(repo, 'fails.ts'), 'process.exit(3)\n')
      git(repo, 'add', '.')
      git(repo, 'commit', '-q', '-m', 'base')
      const ab = (...args: string[]) =>
        spawnSync(process.execPath, [AB, ...args], { cwd: repo, encoding: 'utf8' })
      const unknown = ab('--base', 'no-such-rev', '--', 'fails.ts')
      assert.notEqual(unknown.status, 0)
      assert.match(unknown.stderr, /git rev-parse --verify no-such-rev/)
      const missing = ab('--base', 'HEAD', '--', 'missing.ts')
      assert.match(missing.stderr, /missing\.ts: no such file in this checkout/)
      const failing = ab('--base', 'HEAD', '--runs', '1', '--', 'fails.ts')
      assert.match(failing.stderr, /run 1 in the base exited with 3/)
      // The worktree of the failed run is gone too.
      assert.equal(git(repo, 'worktree', 'list').split('\n').length, 1)
    } finally {
      rmSync(repo, { recursive: true, force: true })
    }
  })
})
