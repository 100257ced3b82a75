const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/**
 * Days in `month` (1–12) of `year` in the proleptic Gregorian calendar; 0 for a month that
 * does not exist. For checks of dates read digit by digit, where `Date` would roll 30 February
 * over into March rather than refuse it.
 *
 * @example
 * daysInMonth(2024, 2) // 29
 * daysInMonth(2100, 2) // 28
 */
export const daysInMonth = (year: number, month: number): number =>
  month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
    ? 29
    : (DAYS_IN_MONTH[month - 1] ?? 0)
