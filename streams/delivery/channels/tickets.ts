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

/**
 * The ticket keys of one event. A vulnerability update files one ticket per new or changed
 * finding (up to `maxFindings`; beyond, one ticket for the tag lists them all); a failing
 * policy evaluation one per tag and policy bundle; a passing one, and an update that only
 * removed findings, none; any other event one per resource and event type (and subtype).
 */
export const ticketSubjectsOf = (event: CloudEvent, maxFindings: number): TicketSubject[] => {
  if (event.type === 'user.checks.tag.vulnerabilities.update') {
    const findings = messageScope(
      { deliveryId: '', account: event.account, configurationId: '', event, createdAt: '' },
      { uiUrl: null },
    ).findings
    if (findings.length === 0) return []
    if (findings.length > maxFindings) return [subject(event, 'vulnerabilities', findings)]
    // A finding is a vulnerability in one version of a package, as Herald's reports count them
    // (`findingKey`): the same one at two versions is fixed apart, and ticketed apart. Copies of
    // one version at several paths are one finding, one ticket (`ticketSubjects` keeps the first).
    return findings.map((f) => subject(event, `vulnerability:${f.id}:${f.package}@${f.version}`, [f]))
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
  readonly labelOf: (subject: TicketSubject) => string
  readonly file: (subject: TicketSubject) => Promise<TicketOutcome>
  readonly result: ReturnType<typeof resultBuilder>
  /** What a filing that threw (other than a filing in doubt) is, as the ticket system answered it. */
  readonly failureOf: (error: unknown) => Failure
  /** The status of the last answer, for the result. */
  readonly lastStatus: () => number | null
  readonly notes: readonly string[]
}

/**
 * A ticket channel's attempt: each ticket key of the delivery filed in turn, those of one
 * target and key one at a time in the process. The first that fails ends it, with the tickets
 * settled before it, which its retry finds and does not file twice.
 */
export const fileTickets = async (filing: TicketFiling): Promise<ChannelResult> => {
  const { result, notes } = filing
  const outcomes: TicketOutcome[] = []
  for (const subject of ticketSubjects(filing.delivery, filing.maxFindings)) {
    try {
      outcomes.push(
        await filing.serially(`${filing.target} ${filing.labelOf(subject)}`, () => filing.file(subject)),
      )
    } catch (error) {
      if (error instanceof UnconfirmedFilingError) return result.fail(unconfirmedFailure(error), outcomes)
      return result.fail(filing.failureOf(error), outcomes)
    }
  }
  if (outcomes.length === 0)
    return result.ok(null, 'nothing to file: the event has no open finding', { tickets: [], notes })
  return result.ok(filing.lastStatus(), outcomes.map((o) => `${o.action} ${o.ticket}`).join(', '), {
    tickets: outcomes,
    notes,
  })
}
