import { ValidationError } from '../../../src/errors/index.ts'
import { createSerialQueues } from '../../../src/serially.ts'
import type { DeliveryChannel, TicketOutcome } from './channel.ts'
import {
  failureFromError,
  failureFromStatus,
  ResponseTooLargeError,
  UnexpectedResponseError,
} from './classify.ts'
import { failureOfCall, jsonDetail, oneLine, resultBuilder, truncate } from './common.ts'
import { type JiraConfiguration, secretValues } from './configuration.ts'
import type { TicketChannelOptions } from './github.ts'
import { channelFetch, type Exchange } from './guarded-fetch.ts'
import { createMemoryRecentTickets } from './recent-tickets.ts'
import {
  eventMark,
  fileTickets,
  keyFilings,
  type TicketSubject,
  ticketMessage,
  writePacer,
} from './tickets.ts'

/** The label that finds a key's issues again (Jira labels cannot hold spaces). */
export const jiraKeyLabel = (subject: Pick<TicketSubject, 'hash'>): string => `herald-${subject.hash}`

/** The issue and comment property that records which delivery wrote them: hidden, unlike a label. */
export const JIRA_PROPERTY = 'herald'

// Jira's limits: a summary is at most 255 characters; a description 32767.
const MAX_SUMMARY = 255
const JIRA_API = 'the Jira API'
const MAX_TEXT = 30_000
const PROJECT_KEY = /^[A-Z][A-Z0-9_]{0,254}$/

/** The newest comments read for a delivery's own before commenting: beyond them, a retry may comment again. */
const MAX_COMMENTS_READ = 50

/**
 * Comments asked for per page: a comment's ADF body, with its marks and the `herald` property,
 * may weigh far more than its 32,767 characters of text, so fifty of them can pass the 1 MiB
 * Herald reads of an answer.
 */
const COMMENTS_PER_PAGE = 10

/** Atlassian Document Format: v3 takes rich text as a document, not a string. */
interface AdfNode {
  readonly type: string
  readonly text?: string
  readonly content?: readonly AdfNode[]
  readonly marks?: readonly { readonly type: string; readonly attrs?: Readonly<Record<string, string>> }[]
  readonly attrs?: Readonly<Record<string, unknown>>
  readonly version?: number
}

/** One line as text nodes; the UI link, where it appears, becomes a link. */
const lineNodes = (line: string, link: string | null): AdfNode[] => {
  if (link === null || !line.includes(link)) return line === '' ? [] : [{ type: 'text', text: line }]
  const nodes: AdfNode[] = []
  const parts = line.split(link)
  parts.forEach((part, i) => {
    if (part !== '') nodes.push({ type: 'text', text: part })
    if (i < parts.length - 1)
      nodes.push({ type: 'text', text: link, marks: [{ type: 'link', attrs: { href: link } }] })
  })
  return nodes
}

/**
 * Plain text (what the templates render) as an ADF document: blank lines separate
 * paragraphs, line breaks become hard breaks, the UI link a link.
 *
 * @example
 * adfDocument('Hello\n\nWorld', null) // { type: 'doc', version: 1, content: [paragraph Hello, paragraph World] }
 */
export const adfDocument = (text: string, link: string | null): AdfNode => ({
  type: 'doc',
  version: 1,
  content: text
    .replace(/\r\n?/g, '\n')
    .split(/\n{2,}/)
    .map((paragraph) => paragraph.replace(/^\n+|\n+$/g, ''))
    .filter((paragraph) => paragraph.trim() !== '')
    .map((paragraph) => ({
      type: 'paragraph',
      content: paragraph
        .split('\n')
        .flatMap((line, i) => [...(i === 0 ? [] : [{ type: 'hardBreak' }]), ...lineNodes(line, link)]),
    })),
})

interface JiraIssue {
  readonly id: string
  readonly key: string
  readonly fields?: {
    readonly status?: { readonly name?: string; readonly statusCategory?: { readonly key?: string } }
    readonly summary?: string
    readonly labels?: readonly unknown[]
  }
  readonly properties?: Readonly<Record<string, HeraldMark | undefined>>
}

/** The `herald` property of an issue or comment: the delivery that wrote it, and its event (`eventMark`). */
interface HeraldMark {
  readonly delivery?: unknown
  readonly event?: unknown
}

/** Whether a mark is of this delivery, or of this event (any configuration's delivery of it). */
const marks = (mark: HeraldMark | undefined, deliveryId: string, event: string | undefined): boolean =>
  mark !== undefined && (mark.delivery === deliveryId || (event !== undefined && mark.event === event))

interface JiraComment {
  readonly properties?: readonly { readonly key?: string; readonly value?: HeraldMark }[]
}

interface JiraTransition {
  readonly id: string
  readonly name?: string
  readonly to?: { readonly statusCategory?: { readonly key?: string } }
}

/** Jira's errors: `errorMessages` and `errors` by field. */
export const jiraDetail = (exchange: Exchange): string | undefined =>
  jsonDetail(exchange.body, (json) => [
    ...(Array.isArray(json.errorMessages) ? json.errorMessages : []),
    ...(typeof json.errors === 'object' && json.errors !== null
      ? Object.entries(json.errors).map(([field, message]) => `${field}: ${String(message)}`)
      : []),
  ])

const isDone = (issue: JiraIssue): boolean => issue.fields?.status?.statusCategory?.key === 'done'

/** Oldest first: Jira's issue ids grow with each issue created. */
const byAge = (x: { readonly id: string }, y: { readonly id: string }): number => Number(x.id) - Number(y.id)

/** A transition out of "done": one named Reopen first, then to a to-do status, then to any in-progress one. */
const reopening = (transitions: readonly JiraTransition[]): JiraTransition | undefined => {
  const open = transitions.filter((t) => t.to?.statusCategory?.key !== 'done')
  return (
    open.find((t) => /reopen/i.test(t.name ?? '')) ??
    open.find((t) => t.to?.statusCategory?.key === 'new') ??
    open.find((t) => t.to?.statusCategory?.key === 'indeterminate')
  )
}

class JiraAnswerError extends Error {
  override readonly name = 'JiraAnswerError'
  readonly status: number
  constructor(status: number) {
    super(`HTTP ${status}`)
    this.status = status
  }
}

/** A filing Jira refused (an error status below 500) filed nothing; a 5xx or no answer leaves it in doubt. */
const refusedByJira = (error: unknown): boolean => error instanceof JiraAnswerError && error.status < 500

/** Default of `TicketChannelOptions.searchLagMs`: how far Jira's search may lag behind a filing. */
export const JIRA_SEARCH_LAG_MS = 60_000

/**
 * The project a configuration files into: every configuration filing there shares its
 * tickets, one open issue per key, and the issues filed lately that search is asked to
 * reconcile.
 */
export const jiraTarget = (configuration: Pick<JiraConfiguration, 'url' | 'projectKey'>): string =>
  `jira ${configuration.url.replace(/\/+$/, '').toLowerCase()} ${configuration.projectKey}`

/**
 * Jira Cloud issues through its REST API v3, called directly: jira.js, the maintained
 * client, makes its requests with its own HTTP stack and takes no fetch function, so its
 * connections could not be pinned to the address the SSRF guard checked. One open issue per
 * ticket key: a repeat comments on it, a regression after it was done transitions it back
 * (or files a new issue when the workflow has no way back).
 *
 * Jira itself holds the dedup state (see the GitHub channel for why): each key's issues carry
 * a label, found with JQL, and the issue and its comments carry a hidden `herald` entity
 * property with the delivery id and the event, so a retried delivery neither files nor
 * comments twice, nor does another configuration's delivery of the same event. Filings for one
 * project and key run one at a time in this process.
 * Jira's enhanced search is eventually consistent; the issues filed lately (`recentTickets`,
 * kept in a file by `herald start`, so a restart keeps them) are passed as `reconcileIssues`,
 * which makes the search see them at once. That list is a hint to Jira, never a second source
 * of truth: an issue deleted in Jira is simply not found.
 * Two instances (Kafka) serving two configurations of one project may file one key at once;
 * after filing each searches the key again and the newer issue is closed as a duplicate of the
 * oldest. Search shows another instance's filing only after its lag, so two filings within it
 * stay open until the key's next delivery after the lag converges them.
 *
 * @example
 * await createJiraChannel({ guard }).send(command, { endpoint: 'jira', url, username, apiToken, projectKey: 'SEC', issueType: 'Bug' }, context)
 */
export const createJiraChannel = (options: TicketChannelOptions): DeliveryChannel<JiraConfiguration> => {
  const clock = options.clock ?? Date.now
  const maxFindings = options.maxFindingTickets ?? 20
  const recentTickets = options.recentTickets ?? createMemoryRecentTickets()
  const searchLagMs = options.searchLagMs ?? JIRA_SEARCH_LAG_MS
  const remember = (target: string, id: string) => {
    const issueId = Number(id)
    if (Number.isSafeInteger(issueId)) recentTickets.remember(target, issueId)
  }
  const serially = createSerialQueues()

  return {
    endpoint: 'jira',
    send: async (delivery, configuration, context) => {
      const result = resultBuilder(secretValues(configuration), clock)
      const http = channelFetch(options.guard, configuration, context, { wholeAnswers: true })
      const base = configuration.url.endsWith('/') ? configuration.url : `${configuration.url}/`
      const target = jiraTarget(configuration)
      const beforeWrite = writePacer(context)
      const authorization = `Basic ${Buffer.from(`${configuration.username}:${configuration.apiToken}`).toString('base64')}`
      const notes: string[] = []

      const api = async <T>(method: string, path: string, body?: unknown): Promise<T | undefined> => {
        const response = await http.fetch(new URL(path, base).href, {
          method,
          headers: {
            authorization,
            accept: 'application/json',
            'user-agent': 'Herald-Notifications/1',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        })
        const text = await response.text()
        if (response.status < 200 || response.status > 299) throw new JiraAnswerError(response.status)
        if (text === '') return undefined
        try {
          return JSON.parse(text) as T
        } catch {
          throw new UnexpectedResponseError('JSON', response.status, JIRA_API)
        }
      }

      const listMissing = (what: string) =>
        new UnexpectedResponseError(what, http.last()?.status ?? 200, JIRA_API)

      /**
       * Whether one of the issue's newest `MAX_COMMENTS_READ` comments is one `wanted` picks,
       * read a page at a time, newest first: a page larger than Herald reads of an answer is
       * asked for again at half the size; a single comment that large fails as
       * `ResponseTooLargeError`.
       */
      const anyComment = async (key: string, wanted: (comment: JiraComment) => boolean): Promise<boolean> => {
        let perPage = COMMENTS_PER_PAGE
        for (let startAt = 0; startAt < MAX_COMMENTS_READ; ) {
          let page: { comments?: JiraComment[]; total?: unknown } | undefined
          try {
            page = await api<{ comments?: JiraComment[]; total?: unknown }>(
              'GET',
              `rest/api/3/issue/${key}/comment?orderBy=-created&startAt=${startAt}&maxResults=${Math.min(perPage, MAX_COMMENTS_READ - startAt)}&expand=properties`,
            )
          } catch (error) {
            if (perPage === 1 || !(error instanceof ResponseTooLargeError)) throw error
            perPage = Math.ceil(perPage / 2)
            continue
          }
          if (!Array.isArray(page?.comments)) throw listMissing('a list of comments')
          if (page.comments.some(wanted)) return true
          startAt += page.comments.length
          if (page.comments.length === 0 || (typeof page.total === 'number' && startAt >= page.total))
            return false
        }
        return false
      }

      const filingsOf = (label: string) =>
        keyFilings({
          recentTickets,
          target,
          label,
          system: "Jira's search",
          doubtMs: searchLagMs,
          clock,
          beforeWrite,
        })

      /** The labels of the open issues carrying `label`, as search shows them, those this instance filed lately included. */
      const openLabelled = async (label: string): Promise<string[][]> => {
        const reconcile = recentTickets.recent(target)
        const labels: string[][] = []
        let nextPageToken: string | undefined
        do {
          const page: { issues?: JiraIssue[]; nextPageToken?: unknown } | undefined = await api(
            'POST',
            'rest/api/3/search/jql',
            {
              jql: `project = "${configuration.projectKey}" AND labels = "${label}" AND statusCategory != "Done"`,
              fields: ['status', 'labels'],
              maxResults: 100,
              ...(reconcile.length === 0 ? {} : { reconcileIssues: reconcile }),
              ...(nextPageToken === undefined ? {} : { nextPageToken }),
            },
          )
          if (!Array.isArray(page?.issues)) throw listMissing('a list of issues')
          for (const issue of page.issues)
            if (!isDone(issue)) labels.push((issue.fields?.labels ?? []).map(String))
          nextPageToken = typeof page.nextPageToken === 'string' ? page.nextPageToken : undefined
        } while (nextPageToken !== undefined)
        return labels
      }

      const file = async (subject: TicketSubject): Promise<TicketOutcome> => {
        const label = jiraKeyLabel(subject)
        // Every mark names the event; a digest ticket, its configuration's own, is matched by
        // the delivery only.
        const mark = eventMark(subject.event)
        const event = subject.digest === true ? undefined : mark
        const { scope, render } = ticketMessage<'summary' | 'description' | 'comment'>(
          'jira',
          delivery,
          subject,
          context,
          configuration.templates,
          notes,
        )
        const filings = filingsOf(label)
        const outcome = (issue: { key: string }, action: TicketOutcome['action']): TicketOutcome => ({
          key: subject.hash,
          action,
          ticket: issue.key,
          url: new URL(`browse/${issue.key}`, base).href,
        })

        /** The key's issues as search shows them, newest first, those this instance filed lately included. */
        const searchKey = async (): Promise<JiraIssue[]> => {
          const reconcile = recentTickets.recent(target)
          const searched = await api<{ issues?: JiraIssue[] }>('POST', 'rest/api/3/search/jql', {
            jql: `project = "${configuration.projectKey}" AND labels = "${label}" ORDER BY created DESC`,
            fields: ['status', 'summary'],
            properties: [JIRA_PROPERTY],
            maxResults: 20,
            ...(reconcile.length === 0 ? {} : { reconcileIssues: reconcile }),
          })
          // An answer without the list is no "none found": filing on it could file a second issue.
          if (!Array.isArray(searched?.issues)) throw listMissing('a list of issues')
          return searched.issues
        }

        /**
         * Comments on a duplicate of the key's kept issue, naming it, transitions it to done
         * (when the workflow has a way there), then takes the key's label off it: found again,
         * a done duplicate would stand for the key once the kept issue is done.
         */
        const closeDuplicate = async (duplicate: { key: string }, kept: { key: string }): Promise<void> => {
          const key = encodeURIComponent(duplicate.key)
          await beforeWrite()
          await api('POST', `rest/api/3/issue/${key}/comment`, {
            body: adfDocument(
              `Duplicate of ${kept.key}: filed for the same key at the same time by another Herald instance. Repeats go to ${kept.key}.`,
              null,
            ),
          })
          const transitions = (
            await api<{ transitions?: JiraTransition[] }>('GET', `rest/api/3/issue/${key}/transitions`)
          )?.transitions
          if (!Array.isArray(transitions)) throw listMissing('a list of transitions')
          const done = transitions.find((t) => t.to?.statusCategory?.key === 'done')
          if (done !== undefined) {
            await beforeWrite()
            await api('POST', `rest/api/3/issue/${key}/transitions`, { transition: { id: done.id } })
          }
          await beforeWrite()
          await api('PUT', `rest/api/3/issue/${key}`, { update: { labels: [{ remove: label }] } })
          notes.push(
            `${duplicate.key} ${done === undefined ? 'left open (no transition to done)' : 'closed'} as a duplicate of ${kept.key}`,
          )
          options.logger?.('info', 'delivery.jira.ticket_duplicate_closed', {
            configuration_id: configuration.id,
            delivery_id: delivery.deliveryId,
            key: subject.hash,
            issue: duplicate.key,
            kept: kept.key,
          })
        }

        const create = async (previous?: string): Promise<TicketOutcome> => {
          const summary = oneLine(await render('summary'), MAX_SUMMARY)
          const description = truncate(
            `${await render('description', { title: summary })}${previous === undefined ? '' : `\n\nReopens ${previous}, which could not be transitioned back.`}`,
            MAX_TEXT,
          )
          const request = {
            fields: {
              project: { key: configuration.projectKey },
              issuetype: /^\d+$/.test(configuration.issueType)
                ? { id: configuration.issueType }
                : { name: configuration.issueType },
              summary,
              description: adfDocument(description, scope.link),
              labels: [
                ...new Set([
                  ...(configuration.labels ?? []),
                  label,
                  ...(subject.group === undefined ? [] : [jiraKeyLabel({ hash: subject.group })]),
                ]),
              ],
              ...(configuration.priority === undefined ? {} : { priority: { name: configuration.priority } }),
              ...(configuration.assignee === undefined
                ? {}
                : { assignee: { accountId: configuration.assignee } }),
            },
            properties: [
              {
                key: JIRA_PROPERTY,
                value: { key: subject.hash, delivery: delivery.deliveryId, event: mark },
              },
            ],
          }
          const created = await filings.create(async () => {
            const answer = await api<{ id?: string; key?: string }>('POST', 'rest/api/3/issue', request)
            if (typeof answer?.key !== 'string' || typeof answer.id !== 'string')
              throw new UnexpectedResponseError('an issue key', 201, JIRA_API)
            remember(target, answer.id)
            return { id: answer.id, key: answer.key }
          }, refusedByJira)
          options.logger?.('info', 'delivery.jira.ticket_created', {
            configuration_id: configuration.id,
            delivery_id: delivery.deliveryId,
            key: subject.hash,
            issue: created.key,
          })
          // Herald instances sharing the queues each search the key, see nothing, and file; the
          // one whose issue is not the oldest open closes its own and repeats on the oldest.
          // Search shows at once only the issues this instance filed (`reconcileIssues`): one
          // another instance filed a moment ago shows after the search's lag, and the two are
          // then converged by the key's next delivery (below).
          const kept = (await searchKey()).filter((issue) => !isDone(issue)).sort(byAge)[0]
          if (kept !== undefined && byAge(kept, created) < 0) {
            await closeDuplicate(created, kept)
            return repeatOn(kept)
          }
          return outcome({ key: created.key }, 'created')
        }

        /** The key's issue found: this delivery's event commented on it (and the issue reopened if done), once. */
        const repeatOn = async (found: JiraIssue): Promise<TicketOutcome> => {
          if (marks(found.properties?.[JIRA_PROPERTY], delivery.deliveryId, event))
            return outcome(found, 'unchanged')

          const regression = isDone(found)
          const key = encodeURIComponent(found.key)
          const commented = await anyComment(key, (c) =>
            (c.properties ?? []).some(
              (p) => p.key === JIRA_PROPERTY && marks(p.value, delivery.deliveryId, event),
            ),
          )
          const comment = async (): Promise<void> => {
            const text = truncate(
              await render('comment', { title: found.fields?.summary ?? '', regression }),
              MAX_TEXT,
            )
            await beforeWrite()
            await api('POST', `rest/api/3/issue/${key}/comment`, {
              body: adfDocument(text, scope.link),
              properties: [
                {
                  key: JIRA_PROPERTY,
                  value: { delivery: delivery.deliveryId, event: mark },
                },
              ],
            })
          }
          if (!regression) {
            if (commented) return outcome(found, 'unchanged')
            await comment()
            return outcome(found, 'commented')
          }
          const transitions = (
            await api<{ transitions?: JiraTransition[] }>('GET', `rest/api/3/issue/${key}/transitions`)
          )?.transitions
          if (!Array.isArray(transitions)) throw listMissing('a list of transitions')
          const back = reopening(transitions)
          if (back === undefined) return create(found.key)
          // Comment first, then transition: a retry after the comment still transitions, and never comments twice.
          if (!commented) await comment()
          await beforeWrite()
          await api('POST', `rest/api/3/issue/${key}/transitions`, { transition: { id: back.id } })
          options.logger?.('info', 'delivery.jira.ticket_reopened', {
            configuration_id: configuration.id,
            delivery_id: delivery.deliveryId,
            key: subject.hash,
            issue: found.key,
          })
          return outcome(found, 'reopened')
        }

        const searched = await searchKey()
        // With nothing open in view, a filing whose answer was lost may still be on its way into search.
        const found = filings.found(searched, (issue) => !isDone(issue))
        if (found === undefined) return create()
        // More than one open: filings of two instances raced, and the newer's convergence never
        // ran or could not see the older yet. The oldest is kept.
        const [oldest, ...newer] = searched.filter((issue) => !isDone(issue)).sort(byAge)
        if (oldest === undefined || newer.length === 0) return repeatOn(found)
        for (const duplicate of newer) await closeDuplicate(duplicate, oldest)
        return repeatOn(oldest)
      }

      // The key goes into JQL; anything but a project key's characters could change the query.
      if (!PROJECT_KEY.test(configuration.projectKey))
        return result.fail(
          failureFromError(
            new ValidationError('invalid Jira project key', [
              {
                path: 'project_key',
                message: 'must be upper-case letters, digits and _, starting with a letter',
              },
            ]),
          ),
        )

      return fileTickets({
        delivery,
        maxFindings,
        serially,
        target,
        labelOf: jiraKeyLabel,
        file,
        openLabelled,
        filingsOf,
        result,
        failureOf: (error) =>
          failureOfCall(error, http.last(), clock(), (exchange, now) =>
            failureFromStatus(exchange.status, exchange.headers, now, jiraDetail(exchange)),
          ),
        lastStatus: () => http.last()?.status ?? null,
        notes,
      })
    },
  }
}
