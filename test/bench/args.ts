/**
 * A benchmark's numeric flag as a whole number of at least `least`, or an error naming the
 * flag and what it takes.
 *
 * @example
 * const prefill = wholeNumber('--prefill', values.prefill, 0)
 */
export const wholeNumber = (flag: string, value: string | undefined, least: number): number => {
  const n = Number(value)
  if (value === undefined || value.trim() === '' || !Number.isInteger(n) || n < least)
    throw new Error(
      least === 1
        ? `${flag} must be a positive whole number`
        : `${flag} must be a whole number of at least ${least}`,
    )
  return n
}

/**
 * A benchmark's numeric flag as a whole number of at least 1, or an error naming the flag.
 *
 * @example
 * const rounds = positiveWholeNumber('--rounds', values.rounds)
 */
export const positiveWholeNumber = (flag: string, value: string | undefined): number =>
  wholeNumber(flag, value, 1)

/**
 * A flag without a default: undefined when it was not given, else as `positiveWholeNumber`.
 *
 * @example
 * const eventBytes = optionalPositiveWholeNumber('--event-bytes', values['event-bytes'])
 */
export const optionalPositiveWholeNumber = (flag: string, value: string | undefined): number | undefined =>
  value === undefined ? undefined : positiveWholeNumber(flag, value)

/**
 * A benchmark's flag as a fraction from 0 to 1, or an error naming the flag.
 *
 * @example
 * const late = fraction('--late', values.late)
 */
export const fraction = (flag: string, value: string | undefined): number => {
  const n = Number(value)
  if (value === undefined || value.trim() === '' || !(n >= 0 && n <= 1))
    throw new Error(`${flag} must be a fraction from 0 to 1`)
  return n
}
