import type { Output } from '../../src/cli/io.ts'

/**
 * An `Output` (stdout, stderr) that keeps what a command writes: `text()` all of it, `writes`
 * how many writes made it.
 *
 * @example
 * const stderr = textSink()
 * await runPublish(argv, { ...deps, stderr })
 * assert.match(stderr.text(), /nothing was sent/)
 */
export const textSink = (): Output & { text: () => string; readonly writes: number } => {
  const chunks: string[] = []
  return {
    text: () => chunks.join(''),
    get writes() {
      return chunks.length
    },
    write(chunk, callback) {
      chunks.push(chunk)
      callback?.()
      return true
    },
  }
}
