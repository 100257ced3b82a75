import { createHash } from 'node:crypto'
import type { CloudEvent } from '../../../src/events/index.ts'
import type { ChannelContext, ChannelDelivery, ChannelResult, TicketOutcome } from './channel.ts'
import type { Failure } from './classify.ts'
import type { resultBuilder } from './common.ts'
import type { TemplateField, TemplateOverrides } from './configuration.ts'
import { type FindingView, type MessageScope, messageScope, resourceOf, resourceTypeOf } from './message.ts'
import type { RecentTickets } from './recent-tickets.ts'
import { renderField } from './templates.ts'

/**
 * One ticket's identity: (account, resource, finding or rule). Ticket channels keep one open
 * ticket per key in the external system, found again by the key's hash (a label) and marked in
 * the ticket itself.
 */
export interface TicketSubject {
  /** Readable: `acme | image_tag:docker.io/library/nginx:1.27 | vulnerability:CVE-2024-6119:openssl@3.0.13`. */
  readonly key: string
  /** 16 hex characters of sha256(key): short enough for a label, long enough never to collide in one repository. */
  readonly hash: string
  /** The event the ticket is about (for a digest, the window's first). */
  readonly event: CloudEvent
  /** For a vulnerability ticket: its finding(s), which its scope narrows to. */
  readonly findings?: readonly FindingView[]
  /**
   * For a finding's own ticket: the hash of its tag's findings (`findingGroupOf`), a second
   * label of the ticket, so a grouped update lists the tag's open finding tickets at once.
   */
  readonly group?: string
  /** The configuration's digest ticket: it is rendered from the whole digest. */
  readonly digest?: true
}

const hashOf = (key: string): string => createHash('sha256').update(key).digest('hex').slice(0, 16)

const subject = (event: CloudEvent, rule: string, findings?: readonly FindingView[]): TicketSubject => {
  const key = `${event.account} | ${resourceTypeOf(event)}:${resourceOf(event)} | ${rule}`
  return { key, hash: hashOf(key), event, ...(findings === undefined ? {} : { findings }) }
}

const record = (value: unknown): Readonly<Record<string, unknown>> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {}

const VULNERABILITY_UPDATE = 'user.checks.tag.vulnerabilities.update'

/** The hash every finding ticket of the event's tag carries as its second label (`TicketSubject.group`). */
const findingGroupOf = (event: CloudEvent): string =>
  hashOf(`${event.account} | ${resourceTypeOf(event)}:${resourceOf(event)} | vulnerability findings`)

/**
 * A vulnerability update's findings, each its own ticket key, each once. A finding is a
 * vulnerability in one version of a package, as Herald's reports count them (`findingKey`):
 * the same one at two versions is fixed apart, and ticketed apart. Copies of one version at
 * several paths are one finding, one ticket (the first is kept).
 */
const findingSubjectsOf = (event: CloudEvent): TicketSubject[] => {
  if (event.type !== VULNERABILITY_UPDATE) return []
  const findings = messageScope(
    { deliveryId: '', account: event.account, configurationId: '', event, createdAt: '' },
    { uiUrl: null },
  ).findings
  const group = findingGroupOf(event)
  const seen = new Set<string>()
  const subjects: TicketSubject[] = []
  for (const f of findings) {
    const one = subject(event, `vulnerability:${f.id}:${f.package}@${f.version}`, [f])
    if (seen.has(one.hash)) continue
    seen.add(one.hash)
    subjects.push({ ...one, group })
  }
  return subjects
}

/** The tag's grouped ticket, about these findings. */
const groupedSubject = (event: CloudEvent, findings: readonly TicketSubject[]): TicketSubject =>
  subject(
    event,
    'vulnerabilities',
    findings.flatMap((f) => f.findings ?? []),
  )

/**
 * The ticket keys of one event, as its event alone decides them. A vulnerability update files
 * one ticket per new or changed finding (up to `maxFindings`; beyond, one ticket for the tag
 * lists them all), which `fileTickets` then settles against the tag's open tickets
 * (`vulnerabilityPlan`); a failing policy evaluation one per tag and policy bundle; a passing
 * one, and an update that only removed findings, none; any other event one per resource and
 * event type (and subtype).
 */
export const ticketSubjectsOf = (event: CloudEvent, maxFindings: number): TicketSubject[] => {
  if (event.type === VULNERABILITY_UPDATE) {
    const findings = findingSubjectsOf(event)
    return findings.length > maxFindings ? [groupedSubject(event, findings)] : findings
  }
  if (event.type === 'user.checks.tag.policy_evaluation.update') {
    const evaluation = record(record(event.data).curr_eval)
    if (evaluation.status !== 'fail') return []
    const bundle = typeof evaluation.bundle_id === 'string' ? evaluation.bundle_id : 'active'
    return [subject(event, `policy:${bundle}`)]
  }
  const data = record(event.data)
  const variant = event.subtype ?? (typeof data.action === 'string' ? data.action : undefined)
  return [subject(event, variant === undefined ? event.type : `${event.type}/${variant}`)]
}

/**
 * The one ticket key of a configuration's digests. A digest lists only its window's first
 * events, so filing a ticket per event key would quietly skip the rest, and a storm would
 * open as many tickets as it has distinct keys — what storm control is there to prevent. A
 * configuration that asked for digests gets one ticket instead: the first digest opens it,
 * each later one comments on it (reopening it if it was closed), every comment carrying the
 * window's counts.
 */
export const digestTicketSubject = (delivery: ChannelDelivery): TicketSubject => {
  const key = `${delivery.account} | configuration:${delivery.configurationId} | digest`
  return { key, hash: hashOf(key), event: delivery.event, digest: true }
}

/** Every ticket key of a delivery: of its event, each once; for a digest, the configuration's digest ticket. */
export const ticketSubjects = (delivery: ChannelDelivery, maxFindings: number): TicketSubject[] => {
  if (delivery.digest !== undefined) return [digestTicketSubject(delivery)]
  const seen = new Set<string>()
  const subjects: TicketSubject[] = []
  for (const s of ticketSubjectsOf(delivery.event, maxFindings)) {
    if (seen.has(s.hash)) continue
    seen.add(s.hash)
    subjects.push(s)
  }
  return subjects
}

/** The delivery a ticket channel works on for one key: the key's own event, or the whole digest for the digest ticket. */
export const deliveryFor = (delivery: ChannelDelivery, ticket: TicketSubject): ChannelDelivery => {
  if (ticket.digest === true) return delivery
  const { digest: _, ...single } = delivery
  return { ...single, event: ticket.event }
}

/**
 * One ticket's message: its scope (the key's event or the digest, the key's findings when it
 * has them) and its fields rendered with the configuration's templates or Herald's ticket
 * defaults. A template that failed, replaced by the default, is told in `notes`.
 *
 * @example
 * const { scope, render } = ticketMessage('jira', delivery, subject, context, configuration.templates, notes)
 * const summary = await render('summary')
 */
export const ticketMessage = <F extends TemplateField>(
  endpoint: 'github' | 'jira',
  delivery: ChannelDelivery,
  subject: TicketSubject,
  context: Pick<ChannelContext, 'uiUrl'>,
  templates: TemplateOverrides | undefined,
  notes: string[],
): { scope: MessageScope; render: (field: F, extra?: object) => Promise<string> } => {
  const scope = messageScope(deliveryFor(delivery, subject), {
    uiUrl: context.uiUrl,
    ...(subject.findings === undefined ? {} : { findings: subject.findings }),
  })
  const render = async (field: F, extra: object = {}): Promise<string> => {
    const rendered = await renderField(endpoint, field, templates, { ...scope, ...extra }, { ticket: true })
    if (rendered.fallback !== undefined) notes.push(rendered.fallback)
    return rendered.text
  }
  return { scope, render }
}

/**
 * A ticket's event as its marks in the ticket name it: an issue or comment marked with it was
 * written for this event, whichever configuration's delivery wrote it (every configuration
 * filing into one repository or project shares its tickets). URI-encoded, so it never closes
 * the HTML comment or the property it is kept in.
 */
export const eventMark = (event: Pick<CloudEvent, 'source' | 'id'>): string =>
  encodeURIComponent(`${event.source} ${event.id}`)

/**
 * A filing for the key went out and its answer never came (a timeout, a 5xx, a crash), and the
 * ticket system does not show an open ticket for it yet: filing now could make a second one, so
 * the delivery waits until the filing could no longer be on its way.
 */
export class UnconfirmedFilingError extends Error {
  override readonly name = 'UnconfirmedFilingError'
  readonly waitMs: number
  constructor(system: string, since: number, waitMs: number) {
    super(
      `a ticket for this key may have been filed at ${new Date(since).toISOString()} (its answer never came) and ${system} does not show it yet; looking again in ${Math.ceil(waitMs / 1000)} s before filing`,
    )
    this.waitMs = waitMs
  }
}

/** Throws `UnconfirmedFilingError` while a filing of `since` (if any) may still appear, for `doubtMs`. */
const assertNoFilingInDoubt = (
  system: string,
  since: number | undefined,
  doubtMs: number,
  now: number,
): void => {
  const waitMs = since === undefined ? 0 : since + doubtMs - now
  if (since !== undefined && waitMs > 0) throw new UnconfirmedFilingError(system, since, waitMs)
}

/**
 * A ticket channel's filings of one key, kept in `RecentTickets`, so a filing whose answer never
 * came (a timeout, a 5xx, a crash) does not have the next attempt file a second ticket: each
 * filing is written before its request goes out, and settled by its answer, by the ticket
 * system's refusal (nothing was filed), or by the key's ticket showing open; until then, and for
 * as long as the filing could still be on its way, the key waits (`UnconfirmedFilingError`).
 * The channel supplies what is its API's: how its tickets are listed and told open, the request
 * that files one, and which errors are refusals.
 */
export interface KeyFilings {
  /**
   * The ticket to work on among the key's tickets as the system lists them, newest first: the
   * open one, which settles a filing in doubt; else the newest (closed) one, or undefined when
   * there is none, unless a filing may still be on its way: then `UnconfirmedFilingError`.
   */
  found<T>(tickets: readonly T[], isOpen: (ticket: T) => boolean): T | undefined
  /**
   * Files the key's ticket: waits for its write slot, writes the filing, then `send`s it (the
   * request, and reading the ticket out of its answer), whose result settles the filing. An error
   * `refused` says is the system's refusal settles it too; any other (a 5xx, no answer, an answer
   * naming no ticket) leaves it in doubt.
   */
  create<T>(send: () => Promise<T>, refused: (error: unknown) => boolean): Promise<T>
}

export interface KeyFilingsOptions {
  readonly recentTickets: RecentTickets
  /** The repository or project filed into (`githubTarget`, `jiraTarget`). */
  readonly target: string
  /** The key's label there. */
  readonly label: string
  /** Where the ticket is looked for, as a wait names it: `GitHub`, `Jira's search`. */
  readonly system: string
  /** How long after a filing whose answer never came its ticket may still show up. */
  readonly doubtMs: number
  readonly clock: () => number
  /** Before the filing's write (`writePacer`). */
  readonly beforeWrite: () => Promise<void>
}

/**
 * The filings of one key in one target, for one attempt of a ticket channel.
 *
 * @example
 * const filings = keyFilings({ recentTickets, target, label, system: 'GitHub', doubtMs: 60_000, clock, beforeWrite })
 * const found = filings.found(issues, (issue) => issue.state === 'open')
 * const issue = found ?? (await filings.create(() => createIssue(), (error) => isRefusal(error)))
 */
export const keyFilings = ({
  recentTickets,
  target,
  label,
  system,
  doubtMs,
  clock,
  beforeWrite,
}: KeyFilingsOptions): KeyFilings => ({
  found: (tickets, isOpen) => {
    const open = tickets.find(isOpen)
    if (open !== undefined) recentTickets.settled(target, label)
    else assertNoFilingInDoubt(system, recentTickets.unanswered(target, label), doubtMs, clock())
    return open ?? tickets[0]
  },
  create: async (send, refused) => {
    await beforeWrite()
    recentTickets.filing(target, label, clock())
    let ticket: Awaited<ReturnType<typeof send>>
    try {
      ticket = await send()
    } catch (error) {
      if (refused(error)) recentTickets.settled(target, label)
      throw error
    }
    recentTickets.settled(target, label)
    return ticket
  },
})

/** The delivery's failure while a filing is in doubt: retried after the wait, holding only this delivery. */
export const unconfirmedFailure = (error: UnconfirmedFilingError): Failure => ({
  kind: 'retriable',
  code: 'ticket_unconfirmed',
  status: null,
  error: error.message,
  retryAfterMs: error.waitMs,
})

/**
 * Before each write of a ticket channel's attempt (a filing, a comment, a reopening): the
 * first goes at once, on the slot the attempt took; each later one waits for a slot of its own
 * (`ChannelContext.pace`), so one delivery filing twenty tickets keeps to the rate limit.
 */
export const writePacer = (context: Pick<ChannelContext, 'pace'>): (() => Promise<void>) => {
  let writes = 0
  return async () => {
    if (writes++ > 0) await context.pace?.()
  }
}

export interface TicketFiling {
  readonly delivery: ChannelDelivery
  readonly maxFindings: number
  /** One filing per key at a time, in this process (`createSerialQueues`). */
  readonly serially: <T>(key: string, work: () => Promise<T>) => Promise<T>
  /** The repository or project filed into, and the key's label there: what `serially` keys by. */
  readonly target: string
  readonly labelOf: (subject: Pick<TicketSubject, 'hash'>) => string
  readonly file: (subject: TicketSubject) => Promise<TicketOutcome>
  /** The labels of each open ticket that carries `label`, as the ticket system lists them now (every page). */
  readonly openLabelled: (label: string) => Promise<readonly (readonly string[])[]>
  /** The filings of the key `label` names (`keyFilings`): whether one is in doubt. */
  readonly filingsOf: (label: string) => KeyFilings
  readonly result: ReturnType<typeof resultBuilder>
  /** What a filing that threw (other than a filing in doubt) is, as the ticket system answered it. */
  readonly failureOf: (error: unknown) => Failure
  /** The status of the last answer, for the result. */
  readonly lastStatus: () => number | null
  readonly notes: readonly string[]
}

/**
 * Which ticket each finding of a vulnerability update goes to, so that no finding has two open
 * tickets, whichever way its updates came:
 *
 * - a finding with an open ticket of its own repeats on it;
 * - the others repeat on the tag's grouped ticket while it is open: it took the tag's findings
 *   when an update had too many to ticket apart, and takes every later update of the tag
 *   until someone closes it. A ticket apart for a finding it lists would be that finding's
 *   second open ticket, and which findings it lists is not kept anywhere it could be asked
 *   (thousands of them fit in no issue body, label set or Jira property), so while it is open
 *   it stands for the tag's findings that have no open ticket of their own;
 * - else they are ticketed as the update's size decides: more than `maxFindings`, the grouped
 *   ticket (filed, or reopened when closed); else each its own (filed, or reopened).
 *
 * So a finding of a closed grouped ticket that comes back gets (or reopens) a ticket of its
 * own, and a grouped ticket closed as done is reopened only by an update with more findings
 * than that to ticket. The tag's open finding tickets are listed at once by their second
 * label (`TicketSubject.group`); a finding whose filing is in doubt, or a grouped ticket whose
 * filing is, waits (`UnconfirmedFilingError`) rather than be decided without it.
 */
const vulnerabilityPlan = async (
  filing: TicketFiling,
  findings: readonly TicketSubject[],
): Promise<TicketSubject[]> => {
  const [first] = findings
  if (first === undefined) return []
  const { labelOf } = filing
  const isOpen = async (key: Pick<TicketSubject, 'hash'>): Promise<boolean> => {
    const open = await filing.openLabelled(labelOf(key))
    // With none open in view, a filing of the key in doubt may still show up: it waits.
    filing.filingsOf(labelOf(key)).found(open, () => true)
    return open.length > 0
  }
  const own: TicketSubject[] = []
  let rest = findings
  if (findings.length > filing.maxFindings && first.group !== undefined) {
    const open = new Set((await filing.openLabelled(labelOf({ hash: first.group }))).flat())
    own.push(...findings.filter((f) => open.has(labelOf(f))))
    rest = findings.filter((f) => !open.has(labelOf(f)))
    for (const f of rest) filing.filingsOf(labelOf(f)).found([], () => false)
    if (rest.length > filing.maxFindings) return [...own, groupedSubject(first.event, rest)]
  }
  if (rest.length === 0 || !(await isOpen(groupedSubject(first.event, rest)))) return [...own, ...rest]
  const grouped: TicketSubject[] = []
  for (const f of rest) ((await isOpen(f)) ? own : grouped).push(f)
  return grouped.length === 0 ? own : [...own, groupedSubject(first.event, grouped)]
}

/**
 * A ticket channel's attempt: each ticket key of the delivery filed in turn, those of one
 * target and key one at a time in the process (a vulnerability update's, those of one tag: its
 * findings' tickets depend on one another, `vulnerabilityPlan`). The first that fails ends it,
 * with the tickets settled before it, which its retry finds and does not file twice.
 */
export const fileTickets = async (filing: TicketFiling): Promise<ChannelResult> => {
  const { result, notes, delivery } = filing
  const outcomes: TicketOutcome[] = []
  const findings = delivery.digest === undefined ? findingSubjectsOf(delivery.event) : []
  const group = findings[0]?.group
  try {
    if (group === undefined)
      for (const subject of ticketSubjects(delivery, filing.maxFindings))
        outcomes.push(
          await filing.serially(`${filing.target} ${filing.labelOf(subject)}`, () => filing.file(subject)),
        )
    else
      await filing.serially(`${filing.target} ${filing.labelOf({ hash: group })}`, async () => {
        for (const subject of await vulnerabilityPlan(filing, findings))
          outcomes.push(await filing.file(subject))
      })
  } catch (error) {
    if (error instanceof UnconfirmedFilingError) return result.fail(unconfirmedFailure(error), outcomes)
    return result.fail(filing.failureOf(error), outcomes)
  }
  if (outcomes.length === 0)
    return result.ok(null, 'nothing to file: the event has no open finding', { tickets: [], notes })
  return result.ok(filing.lastStatus(), outcomes.map((o) => `${o.action} ${o.ticket}`).join(', '), {
    tickets: outcomes,
    notes,
  })
}
