/**
 * `event` with its data listing vulnerabilities until its JSON is about `bytes` long (never
 * shorter than it was). The list is made once, for the first event, and shared by the rest.
 */
let padding: readonly { id: string; severity: string; package: string; fix: string }[] | undefined
export const padded = <E extends { readonly data?: unknown }>(event: E, bytes: number): E => {
  const withList = (vulnerabilities: typeof padding): E => ({
    ...event,
    data: { ...(event.data as object), vulnerabilities },
  })
  if (padding === undefined) {
    const list: { id: string; severity: string; package: string; fix: string }[] = []
    for (let n = 0; JSON.stringify(withList(list)).length < bytes; n++)
      list.push({
        id: `CVE-2026-${String(10_000 + n)}`,
        severity: ['Critical', 'High', 'Medium', 'Low'][n % 4] ?? 'Low',
        package: `libexample${n % 50}-1.${n % 9}.${n % 7}`,
        fix: `1.${n % 9}.${(n % 7) + 1}`,
      })
    padding = list
  }
  return withList(padding)
}
