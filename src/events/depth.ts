/**
 * How deep objects and arrays may nest in an event, the event itself being the first level.
 * Engine events nest a handful of levels; past this an event is refused where it comes in, so
 * nothing after (JSON written out and read back by SQLite, whose JSON functions stop at 1,000
 * levels; the selector index and evaluation, which recurse) ever sees one nested thousands deep.
 */
export const MAX_EVENT_DEPTH = 64

/**
 * The first member of `event` holding objects or arrays nested deeper than `max` levels in
 * all (the event is level 1); undefined when none does or `event` is no object. Walks without
 * recursion, so any depth is measured safely.
 *
 * @example
 * tooDeepMember({ data: { a: [[1]] } }, 3) // 'data'
 */
export const tooDeepMember = (event: unknown, max = MAX_EVENT_DEPTH): string | undefined => {
  if (typeof event !== 'object' || event === null) return undefined
  const values: unknown[] = []
  const depths: number[] = []
  for (const name in event) {
    if (!Object.hasOwn(event, name)) continue
    const member = (event as Record<string, unknown>)[name]
    if (typeof member !== 'object' || member === null) continue
    values.push(member)
    depths.push(2)
    while (values.length > 0) {
      const value = values.pop() as object
      const depth = depths.pop() as number
      if (depth > max) return name
      if (Array.isArray(value)) {
        for (const child of value)
          if (typeof child === 'object' && child !== null) {
            values.push(child)
            depths.push(depth + 1)
          }
      } else {
        for (const key in value) {
          const child = (value as Record<string, unknown>)[key]
          if (typeof child === 'object' && child !== null && Object.hasOwn(value, key)) {
            values.push(child)
            depths.push(depth + 1)
          }
        }
      }
    }
  }
  return undefined
}
