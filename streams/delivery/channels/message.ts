import { type CloudEvent, lookupEventType } from '../../../src/events/index.ts'
import type { ChannelDelivery, DigestSummary } from './channel.ts'
import { sliceWhole } from './common.ts'

/** One vulnerability finding as templates see it. */
export interface FindingView {
  readonly id: string
  readonly severity: string
  readonly package: string
  readonly version: string
  readonly fix_version: string | null
  readonly kev: boolean
  readonly cvss: number | null
  readonly url: string | null
  /** `added` or `updated`. */
  readonly change: string
}

/** A digest as templates see it. */
export interface DigestView {
  readonly window_start: string
  readonly window_end: string
  readonly total: number
  /** By type and level, most frequent first. */
  readonly counts: readonly { readonly type: string; readonly level: string; readonly count: number }[]
  /** By level, most severe first. */
  readonly levels: readonly { readonly level: string; readonly count: number }[]
  /** Events counted but not listed in `events`. */
  readonly omitted: number
  /** The window's first events. */
  readonly events: readonly {
    readonly id: string
    readonly type: string
    readonly level: string
    readonly resource: string
    readonly time: string
  }[]
}

/**
 * Everything a template can read. It is built from the delivery alone, never from the
 * configuration, so no template can reach a credential; events carry metadata only.
 * Names are snake_case, as template authors read them in the API's documents.
 */
export interface MessageScope {
  readonly type: string
  readonly subtype: string | null
  readonly level: string
  readonly account: string
  readonly resource: string
  readonly resource_type: string
  /** RFC 3339: the event's time, else when the router decided the delivery. */
  readonly time: string
  readonly source: string
  readonly subject: string | null
  readonly event_id: string
  /** The event type's meaning, from the catalog: "Image analysis available". */
  readonly headline: string
  /** One sentence: the event's own `data.summary`, else the catalog's description. */
  readonly summary: string
  /** Lines describing the event's content: findings, policy reasons, control counts, errors. */
  readonly details: readonly string[]
  /** Vulnerability findings added or updated (vulnerability updates only). */
  readonly findings: readonly FindingView[]
  /** Into Herald's UI; null when `ui_url` is not set. */
  readonly link: string | null
  readonly ui_url: string | null
  /** The envelope without `data`. */
  readonly event: Readonly<Record<string, unknown>>
  readonly data: unknown
  readonly delivery: { readonly id: string; readonly configuration_id: string; readonly created_at: string }
  readonly digest: DigestView | null
  /**
   * The event as indented JSON when the configuration asks for it (`include_payload`), else
   * null: its first `MAX_PAYLOAD_CHARS` characters, then a line saying how many more there are.
   */
  readonly payload: string | null
  /** Ticket channels: true when the ticket is being reopened. */
  readonly regression: boolean
}

/** Every root name a template may use; `validateTemplates` refuses others (a typo renders nothing). */
export const SCOPE_ROOTS: readonly (keyof MessageScope)[] = [
  'type',
  'subtype',
  'level',
  'account',
  'resource',
  'resource_type',
  'time',
  'source',
  'subject',
  'event_id',
  'headline',
  'summary',
  'details',
  'findings',
  'link',
  'ui_url',
  'event',
  'data',
  'delivery',
  'digest',
  'payload',
  'regression',
]

const record = (value: unknown): Readonly<Record<string, unknown>> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {}

const text = (value: unknown): string | undefined =>
  typeof value === 'string' && value.trim() !== '' ? value : undefined

const list = (value: unknown): readonly unknown[] => (Array.isArray(value) ? value : [])

/** What the event is about, in the words its users know: a tag, a digest, a scope, a service. */
export const resourceOf = (event: CloudEvent): string => {
  const data = record(event.data)
  const repository =
    text(data.registry) !== undefined && text(data.repository) !== undefined
      ? `${data.registry}/${data.repository}`
      : undefined
  const service =
    text(data.service_name) !== undefined
      ? `${data.service_name}${text(data.host_id) === undefined ? '' : `@${data.host_id}`}`
      : undefined
  const feed =
    text(data.feed) !== undefined
      ? `${data.feed}${text(data.group) === undefined ? '' : `/${data.group}`}`
      : undefined
  const feeds = list(data.feeds).filter((f): f is string => typeof f === 'string')
  return (
    text(data.full_tag) ??
    text(data.image_reference) ??
    text(data.digest) ??
    text(data.scope) ??
    repository ??
    text(data.policy_id) ??
    text(data.current_policy_bundle_id) ??
    service ??
    feed ??
    (feeds.length > 0 ? feeds.join(', ') : undefined) ??
    text(event.subject) ??
    event.source
  )
}

/**
 * What kind of resource the event is about: its own `resourcetype`, else its type's in the
 * catalog, else `unknown`. A ticket's key reads it as the message shows it, so an event with
 * and without the attribute files under one key.
 */
export const resourceTypeOf = (event: CloudEvent): string =>
  event.resourcetype ?? lookupEventType(event.type)?.resourceType ?? 'unknown'

/** The catalog description's lead: "Image analysis available: an image was…" → "Image analysis available". */
const headlineOf = (event: CloudEvent): string => {
  const entry = lookupEventType(event.type)
  const description =
    entry?.subtypes?.find((s) => s.subtype === event.subtype)?.description ?? entry?.description ?? event.type
  const lead = description.split(/[:.;]\s/, 1)[0] ?? description
  return lead.replace(/\.$/, '')
}

const findingsOf = (event: CloudEvent): FindingView[] => {
  if (event.type !== 'user.checks.tag.vulnerabilities.update') return []
  const data = record(event.data)
  const view = (change: string) => (raw: unknown) => {
    const f = record(raw)
    const fix = text(f.fix_version)
    const url = text(f.url)
    return {
      id: scopeText(String(f.id ?? '')),
      severity: scopeText(String(f.severity ?? 'unknown')),
      package: scopeText(String(f.package ?? '')),
      version: scopeText(String(f.version ?? '')),
      fix_version: fix === undefined ? null : scopeText(fix),
      kev: f.kev === true,
      cvss: typeof f.cvss === 'number' ? f.cvss : null,
      url: url === undefined ? null : scopeText(url),
      change,
    }
  }
  return [...list(data.added).map(view('added')), ...list(data.updated).map(view('updated'))]
}

const findingLine = (f: FindingView): string =>
  `${f.change === 'updated' ? 'Updated' : 'New'}: ${f.id} (${f.severity}${f.cvss === null ? '' : `, CVSS ${f.cvss}`}${f.kev ? ', known exploited' : ''}) in ${f.package} ${f.version}${f.fix_version === null ? ', no fix yet' : `, fixed in ${f.fix_version}`}`

/**
 * How much longer one character of an event's text can become once a template escapes it: in
 * HTML `"` is `&quot;`, `&` and `'` five characters, `<` and `>` four; GitHub Markdown
 * backslash-escapes punctuation, and puts a zero-width space after an `@`, a `#` or a URL's `:`
 * (and after a `www` or `GH`, counted with the `.` or `-` after it). Scope texts are bounded in these units, so that a bound
 * holds in whichever flavour a template escapes them.
 */
const escapedWidth = (code: number): number => {
  if (code === 0x22) return 6
  if (code === 0x26 || code === 0x27) return 5
  if (code === 0x3c || code === 0x3e) return 4
  if (code === 0x23) return 3
  const punctuation =
    (code >= 0x21 && code <= 0x2f) ||
    (code >= 0x3a && code <= 0x40) ||
    (code >= 0x5b && code <= 0x60) ||
    (code >= 0x7b && code <= 0x7e)
  return punctuation ? 2 : 1
}

/** A text's length once escaped, at most (see `escapedWidth`). */
export const widthOf = (text: string): number => {
  let width = 0
  for (let i = 0; i < text.length; i++) width += escapedWidth(text.charCodeAt(i))
  return width
}

/**
 * A text whose escaped length (`widthOf`) may pass `max`, cut so that it cannot, ending in `…`
 * to say so; a character is never split. Only the part kept is read, however long the text.
 *
 * @example
 * clip('&'.repeat(900_000), 1_000) // 199 '&' and '…': 996 characters once escaped for HTML
 */
export const clip = (text: string, max: number): string => {
  if (text.length * 6 <= max) return text
  let width = 0
  let fit = -1
  for (let i = 0; i < text.length; i++) {
    const next = width + escapedWidth(text.charCodeAt(i))
    if (fit < 0 && next > max - 1) fit = i
    if (next > max) return `${sliceWhole(text, fit)}…`
    width = next
  }
  return text
}

/**
 * Escaped characters (`widthOf`) of any one text of the scope, and of the detail lines
 * together: about a rendered field's limit (`TEMPLATE_LIMITS.maxOutputChars`, 40,000). An
 * event's text is as long as its sender made it (an error may hold a whole HTML page, or 900 KB
 * of `&`), and escaping it all for a field cut at 40,000 anyway could take a default template
 * past its render limit. A finding's texts are bounded by this alone (a ticket key reads them);
 * the others, which the default bodies show before their link, payload and footer, are bounded
 * further below.
 */
export const MAX_SCOPE_TEXT = 40_000

/**
 * The bounds of the texts a default body shows before its link into Herald, the event's payload
 * and GitHub's and Jira's "Filed by Herald": the summary and each detail line `MAX_LINE`, the
 * detail lines together `MAX_DETAILS_WIDTH`, and the event's names (resource, type, account,
 * time, source, subject, id, headline…) `MAX_NAME`, all in escaped characters. So those texts
 * come to under 20,000 characters in any flavour (with a title of 250 characters), and one
 * long error or summary can no longer push the parts after them past the 40,000 a field is cut
 * at.
 */
export const MAX_LINE = 1_000
export const MAX_DETAILS_WIDTH = 8_000
export const MAX_NAME = 500

/** A finding's text, bounded (`MAX_SCOPE_TEXT`). */
const scopeText = (value: string): string => clip(value, MAX_SCOPE_TEXT)

/** One of the event's names, bounded (`MAX_NAME`). */
const nameText = (value: string): string => clip(value, MAX_NAME)

const MAX_DETAILS = 50

/**
 * The first detail lines, each bounded (`MAX_LINE`), up to `MAX_DETAILS` of them and
 * `MAX_DETAILS_WIDTH` escaped characters together, then a line saying how many more there are.
 */
const shownDetails = (lines: readonly string[]): string[] => {
  const shown: string[] = []
  let width = 0
  for (const line of lines) {
    const bounded = clip(line, MAX_LINE)
    const next = width + widthOf(bounded)
    if (shown.length === MAX_DETAILS || next > MAX_DETAILS_WIDTH) break
    shown.push(bounded)
    width = next
  }
  return shown.length === lines.length ? shown : [...shown, `… and ${lines.length - shown.length} more`]
}

const detailsOf = (event: CloudEvent, findings: readonly FindingView[]): string[] => {
  const data = record(event.data)
  const lines: string[] = []
  if (findings.length > 0) lines.push(...findings.map(findingLine))
  const removed = list(data.removed).length
  if (removed > 0) lines.push(`Resolved: ${removed} finding${removed === 1 ? '' : 's'} no longer present`)
  const evaluation = record(data.curr_eval)
  if (text(evaluation.status) !== undefined) {
    const previous = text(record(data.last_eval).status)
    lines.push(
      `Policy evaluation: ${evaluation.status}${text(evaluation.final_action) === undefined ? '' : ` (final action ${evaluation.final_action})`}${previous === undefined ? '' : `, was ${previous}`}`,
    )
    for (const raw of list(evaluation.reasons)) {
      const reason = record(raw)
      lines.push(
        `${reason.action ?? ''} ${reason.gate ?? ''}/${reason.trigger ?? ''}: ${reason.message ?? ''}`.trim(),
      )
    }
  }
  const controls = record(data.controls)
  if (typeof controls.total === 'number')
    lines.push(
      `Controls: ${controls.passed} passed, ${controls.failed} failed of ${controls.total}${typeof controls.unable_to_perform === 'number' ? `, ${controls.unable_to_perform} unable to perform` : ''}`,
    )
  if (text(data.profile) !== undefined) lines.push(`Profile: ${data.profile}`)
  for (const raw of list(data.resources)) {
    const resource = record(raw)
    lines.push(
      `Resource: ${resource.name ?? resource.id}${text(resource.type) === undefined ? '' : ` (${resource.type})`}`,
    )
  }
  if (text(data.error) !== undefined) lines.push(`Error: ${data.error}`)
  if (text(data.digest) !== undefined && text(data.full_tag) !== undefined)
    lines.push(`Digest: ${data.digest}`)
  return shownDetails(lines)
}

/**
 * The UI link of a delivery: the event in Herald's UI (for a digest, the window's events), or
 * null without `ui_url`. The one place the UI's routes are spelled.
 */
export const uiLink = (uiUrl: string | null, delivery: ChannelDelivery): string | null => {
  if (uiUrl === null || uiUrl.trim() === '') return null
  const base = uiUrl.endsWith('/') ? uiUrl : `${uiUrl}/`
  if (delivery.digest !== undefined) {
    const url = new URL('notifications/deliveries', base)
    url.searchParams.set('configuration', delivery.configurationId)
    url.searchParams.set('from', delivery.digest.windowStart)
    url.searchParams.set('to', delivery.digest.windowEnd)
    return url.href
  }
  return new URL(`events/${encodeURIComponent(delivery.eventText?.id ?? delivery.event.id)}`, base).href
}

const LEVELS = ['error', 'warning', 'info']

/** The window's totals by level, most severe first: the digest's own, else summed from its counts. */
const levelsOf = (digest: DigestSummary): DigestView['levels'] => {
  if (digest.levels !== undefined) return digest.levels
  const byLevel = new Map<string, number>()
  for (const c of digest.counts)
    byLevel.set(c.level ?? 'info', (byLevel.get(c.level ?? 'info') ?? 0) + c.count)
  const rank = (level: string) => (LEVELS.includes(level) ? LEVELS.indexOf(level) : LEVELS.length)
  return [...byLevel]
    .map(([level, count]) => ({ level, count }))
    .sort((a, b) => rank(a.level) - rank(b.level))
}

const digestView = (digest: DigestSummary): DigestView => ({
  window_start: digest.windowStart,
  window_end: digest.windowEnd,
  total: digest.total,
  counts: digest.counts.map((c) => ({
    type: nameText(c.type),
    level: nameText(c.level ?? 'info'),
    count: c.count,
  })),
  levels: levelsOf(digest),
  omitted: Math.max(0, digest.total - digest.events.length),
  events: digest.events.map((e) => ({
    id: nameText(e.id),
    type: nameText(e.type),
    level: nameText(e.level ?? 'info'),
    resource: nameText(resourceOf(e)),
    time: nameText(e.time ?? ''),
  })),
})

/**
 * Characters of an event's JSON a message shows (`payload`). A rendered field is cut at
 * `TEMPLATE_LIMITS.maxOutputChars` (40,000), and HTML escaping can make this text several
 * times longer, so a larger event is shown in part, saying so, rather than its message being
 * cut wherever 40,000 falls (in the HTML part, before its closing tags).
 */
export const MAX_PAYLOAD_CHARS = 16_000

const payloadOf = (event: ChannelDelivery['event']): string => {
  const json = JSON.stringify(event, null, 2)
  if (json.length <= MAX_PAYLOAD_CHARS) return json
  // At the end of a line when one ends near the limit, else within the line (a long string).
  const lineEnd = json.lastIndexOf('\n', MAX_PAYLOAD_CHARS)
  const shown = sliceWhole(json, lineEnd >= MAX_PAYLOAD_CHARS - 1_000 ? lineEnd : MAX_PAYLOAD_CHARS)
  return `${shown}\n… ${(json.length - shown.length).toLocaleString('en-US')} more characters of event ${event.id} not shown`
}

export interface ScopeOptions {
  readonly uiUrl: string | null
  readonly includePayload?: boolean
  readonly regression?: boolean
  /** Narrows a vulnerability ticket to its one finding. */
  readonly findings?: readonly FindingView[]
}

/**
 * The template scope of a delivery. Pure: the same delivery and options give the same scope.
 *
 * @example
 * messageScope(command, { uiUrl: 'https://herald.example.com' }).link
 * // 'https://herald.example.com/events/evt-1'
 */
export const messageScope = (delivery: ChannelDelivery, options: ScopeOptions): MessageScope => {
  const { event } = delivery
  const { data, ...envelope } = event
  const findings = options.findings ?? findingsOf(event)
  const summary = text(record(data).summary) ?? lookupEventType(event.type)?.description ?? event.type
  const digest = delivery.digest === undefined ? null : digestView(delivery.digest)
  // Every text an event sets is bounded (`MAX_NAME`, `MAX_LINE`); `data`, `event` and `payload`
  // are left whole (the payload has its own bound), for templates that ask for them.
  return {
    type: nameText(event.type),
    subtype: event.subtype === undefined ? null : nameText(event.subtype),
    // A digest is as severe as the most severe event of its window.
    level: nameText(digest?.levels[0]?.level ?? event.level ?? lookupEventType(event.type)?.level ?? 'info'),
    account: nameText(event.account),
    resource: nameText(resourceOf(event)),
    resource_type: nameText(resourceTypeOf(event)),
    time: nameText(event.time ?? delivery.createdAt),
    source: nameText(event.source),
    subject: event.subject === undefined ? null : nameText(event.subject),
    event_id: nameText(event.id),
    headline: nameText(headlineOf(event)),
    summary: clip(summary, MAX_LINE),
    details: detailsOf(event, findings),
    findings,
    link: uiLink(options.uiUrl, delivery),
    ui_url: options.uiUrl,
    event: envelope,
    data: data ?? null,
    delivery: {
      id: delivery.deliveryId,
      configuration_id: delivery.configurationId,
      created_at: delivery.createdAt,
    },
    digest,
    payload: options.includePayload === true ? payloadOf(event) : null,
    regression: options.regression ?? false,
  }
}
