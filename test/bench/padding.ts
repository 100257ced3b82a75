type Vulnerability = { id: string; severity: string; package: string; fix: string }

/**
 * `event` with its data listing vulnerabilities until its JSON is about `bytes` long (never
 * shorter than it was). The list for a size is made once, for the first event padded to it,
 * and shared by the rest.
 */
const paddings = new Map<number, readonly Vulnerability[]>()
export const padded = <E extends { readonly data?: unknown }>(event: E, bytes: number): E => {
  const withList = (vulnerabilities: readonly Vulnerability[]): E => ({
    ...event,
    data: { ...(event.data as object), vulnerabilities },
  })
  let padding = paddings.get(bytes)
  if (padding === undefined) {
    const list: Vulnerability[] = []
    for (let n = 0; JSON.stringify(withList(list)).length < bytes; n++)
      list.push({
        id: `CVE-2026-${String(10_000 + n)}`,
        severity: ['Critical', 'High', 'Medium', 'Low'][n % 4] ?? 'Low',
        package: `libexample${n % 50}-1.${n % 9}.${n % 7}`,
        fix: `1.${n % 9}.${(n % 7) + 1}`,
      })
    padding = list
    paddings.set(bytes, padding)
  }
  return withList(padding)
}
