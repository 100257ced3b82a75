const distance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution)
    }
    previous = current
  }
  return previous[b.length] ?? 0
}

/**
 * The candidate a typo most likely meant, if any is close enough to be worth suggesting.
 * `normalize` lets near-identical spellings (`_` for `__`) count as exact matches.
 */
export const closest = (
  target: string,
  candidates: readonly string[],
  normalize: (s: string) => string = (s) => s,
): string | undefined => {
  const wanted = normalize(target)
  const limit = Math.min(3, Math.max(1, Math.floor(wanted.length / 4)))
  let best: { name: string; score: number } | undefined
  for (const name of candidates) {
    const score = distance(wanted, normalize(name))
    if (score <= limit && (best === undefined || score < best.score)) best = { name, score }
  }
  return best?.name
}
