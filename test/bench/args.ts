/**
 * A benchmark's numeric flag as a whole number of at least 1, or an error naming the flag.
 *
 * @example
 * const rounds = positiveWholeNumber('--rounds', values.rounds)
 */
export const positiveWholeNumber = (flag: string, value: string | undefined): number => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive whole number`)
  return n
}
