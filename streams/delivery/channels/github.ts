import { Octokit } from '@octokit/rest'
import { clipped } from '../../../src/errors/index.ts'
import { createSerialQueues } from '../../../src/serially.ts'
import type { DeliveryChannel, TicketOutcome } from './channel.ts'
import {
  type Failure,
  failureFromStatus,
  heraldCause,
  ResponseTooLargeError,
  UnexpectedResponseError,
} from './classify.ts'
import { type ChannelOptions, failureOfCall, jsonDetail, oneLine, resultBuilder, truncate } from './common.ts'
import { DEFAULT_GITHUB_API_URL, type GitHubConfiguration, secretValues } from './configuration.ts'
import { channelFetch, type Exchange, type FetchLike } from './guarded-fetch.ts'
import { createMemoryRecentTickets, type RecentTickets } from './recent-tickets.ts'
import {
  eventMark,
  fileTickets,
  keyFilings,
  type TicketSubject,
  ticketMessage,
  writePacer,
} from './tickets.ts'

export interface TicketChannelOptions extends ChannelOptions {
  /**
   * A vulnerability update with more findings than this to ticket (those without an open ticket
   * of their own) files one ticket for the tag instead of one per finding (default 20).
   */
  readonly maxFindingTickets?: number
  /**
   * The issues filed lately (for Jira's lagging search) and the filings whose answer never came
   * (default: this process's memory only).
   */
  readonly recentTickets?: RecentTickets
  /**
   * Jira: how long after a filing whose answer never came (a timeout, a crash) Herald waits for
   * search to show the issue before filing again (default 60 000). Longer than Jira's search
   * lag: a shorter wait risks a second issue for one key.
   */
  readonly searchLagMs?: number
}

/**
 * How long after a filing whose answer never came (a timeout, a 5xx, a crash) Herald waits to
 * see the issue before filing again. The issues list is consistent at once, but the request
 * may still be running at GitHub when Herald stops waiting for it (GitHub ends its own
 * requests after 10 s).
 */
export const GITHUB_FILING_DOUBT_MS = 60_000

/**
 * The repository a configuration files into: every configuration filing there shares its
 * tickets, one open issue per key. GitHub's owner and repository names ignore case.
 */
export const githubTarget = (configuration: Pick<GitHubConfiguration, 'apiUrl' | 'owner' | 'repository'>) =>
  `github ${(configuration.apiUrl ?? DEFAULT_GITHUB_API_URL).replace(/\/+$/, '').toLowerCase()} ${configuration.owner.toLowerCase()}/${configuration.repository.toLowerCase()}`

/** The label that finds a key's issues again. GitHub creates it with the first issue that carries it. */
export const githubKeyLabel = (subject: Pick<TicketSubject, 'hash'>): string => `herald:${subject.hash}`

/** Hidden in an issue's body: which key, which delivery and which event (see `eventMark`) filed it. */
export const githubIssueMarker = (
  subject: Pick<TicketSubject, 'hash'>,
  deliveryId: string,
  event: string,
): string => `<!-- herald:ticket key=${subject.hash} delivery=${deliveryId} event=${event} -->`

/**
 * The most comments read for a delivery's own comment before commenting: beyond them (on one
 * issue within the lookback), a retry may comment again.
 */
const MAX_COMMENTS_READ = 5_000

/**
 * Comments asked for per page. A comment may hold 65,536 characters, so a page of 100 busy
 * comments passes the 1 MiB Herald reads of an answer; a page that still does is asked for
 * again in pages half its size (a power of two, so the comments already read stay whole pages).
 */
const COMMENTS_PER_PAGE = 32

/**
 * Issues listed per key label: the open one is among the newest (a key has one open issue, and
 * a new one is filed only when none is open), and each body may hold 65,536 characters.
 */
const ISSUES_PER_PAGE = 10

/**
 * Hidden in a comment: which delivery and which event wrote it, so a retried delivery does not
 * comment twice, nor another configuration's delivery of the same event.
 */
export const githubCommentMarker = (deliveryId: string, event: string): string =>
  `<!-- herald:comment delivery=${deliveryId} event=${event} -->`

/** An issue's labels as GitHub answers them: names, or objects with a name. */
type IssueLabels = readonly (string | { readonly name?: string | undefined })[]

const labelNames = (labels: IssueLabels): string[] =>
  labels.flatMap((l) => (typeof l === 'string' ? [l] : l.name === undefined ? [] : [l.name]))

/**
 * Herald's markers in a body or comment (`githubIssueMarker`, `githubCommentMarker`), whole: an
 * event's text in the body may read ` delivery=… ` too, but never as a marker (GitHub Markdown
 * escaping puts a backslash before its `<` and `!`).
 */
const MARKER = /<!-- herald:(?:ticket key=[0-9a-f]+|comment) delivery=(\S+) event=(\S+) -->/g

/** Whether a body or comment holds a marker of this delivery, or of this event (any configuration's). */
export const marked = (
  text: string | null | undefined,
  deliveryId: string,
  event: string | undefined,
): boolean => {
  for (const [, delivery, mark] of (text ?? '').matchAll(MARKER))
    if (delivery === deliveryId || (event !== undefined && mark === event)) return true
  return false
}

// GitHub's limits: an issue title is at most 256 characters, a body or comment 65536.
const MAX_TITLE = 256
const MAX_BODY = 60_000

// A retried delivery looks for its own comment among those written since the router decided
// it; the margin covers a clock difference between Herald and GitHub.
const COMMENT_LOOKBACK_MS = 60 * 60 * 1000

const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} }

const SECONDARY_LIMIT_WAIT_MS = 60_000

const GITHUB_API = 'the GitHub API'

/** A filing GitHub refused (a 4xx) filed nothing; a 5xx or no answer leaves it in doubt. */
const refusedByGitHub = (error: unknown): boolean => {
  const status = (error as { status?: unknown }).status
  return typeof status === 'number' && status >= 400 && status < 500
}

/**
 * Octokit hands a 2xx answer that is not JSON on as text (an `api_url` pointing at a web UI or
 * a proxy), and the issue calls would fail on a string as a bug of Herald's: such an answer is
 * refused here, naming what came back.
 */
const jsonAnswers =
  (fetch: FetchLike): FetchLike =>
  async (input, init) => {
    const response = await fetch(input, init)
    if (response.status < 200 || response.status > 299 || response.status === 204) return response
    const type = (response.headers.get('content-type') ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? ''
    // The types Octokit parses as JSON; anything else reaches the calls as a string.
    const json = type === 'application/json' || type === 'application/scim+json'
    if (json && parses(await response.clone().text())) return response
    await response.body?.cancel()
    throw new UnexpectedResponseError(
      `JSON (got ${type === '' ? 'no content type' : clipped(type)}; is api_url the REST API's base URL?)`,
      response.status,
      GITHUB_API,
    )
  }

const parses = (text: string): boolean => {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

/**
 * Whether a comment of the issue (since `since`, oldest first, page by page: an issue that many
 * repeats commented on holds more than one page, and the marker sought may be on any) is one
 * `wanted` picks. A page larger than Herald reads is asked for again in smaller pages, from the
 * comment it began at; a single comment that large fails as `ResponseTooLargeError`.
 */
const anyComment = async (
  octokit: Octokit,
  params: { owner: string; repo: string; issue_number: number; since?: string },
  wanted: (body: string | undefined) => boolean,
): Promise<boolean> => {
  let perPage = COMMENTS_PER_PAGE
  let read = 0
  for (;;) {
    try {
      for await (const { data: comments } of octokit.paginate.iterator(octokit.rest.issues.listComments, {
        ...params,
        per_page: perPage,
        page: read / perPage + 1,
      })) {
        if (!Array.isArray(comments)) throw new UnexpectedResponseError('a list of comments', 200, GITHUB_API)
        if (comments.some((c) => wanted(c.body))) return true
        read += perPage
        if (read >= MAX_COMMENTS_READ) return false
      }
      return false
    } catch (error) {
      if (perPage === 1 || !(heraldCause(error) instanceof ResponseTooLargeError)) throw error
      perPage /= 2
    }
  }
}

/**
 * GitHub's rate limits: a 403 or 429 with `x-ratelimit-remaining: 0` waits for
 * `x-ratelimit-reset` (epoch seconds), one with `retry-after` (the secondary limit) for that,
 * and a secondary limit naming neither a minute. All are retriable; any other 403 is a
 * permission problem.
 */
export const githubFailure = (exchange: Exchange, nowMs: number): Failure => {
  const detail = jsonDetail(exchange.body, (json) => [
    json.message,
    ...(Array.isArray(json.errors)
      ? json.errors.map((e: { message?: unknown; field?: unknown; code?: unknown }) =>
          typeof e.message === 'string' ? e.message : `${String(e.field)} ${String(e.code)}`,
        )
      : []),
  ])
  const { status, headers } = exchange
  if (status === 403 || status === 429) {
    const reset = Number(headers.get('x-ratelimit-reset'))
    if (headers.get('x-ratelimit-remaining') === '0' && Number.isFinite(reset) && reset > 0)
      return {
        kind: 'retriable',
        code: 'rate_limited',
        status,
        error: `HTTP ${status}: GitHub rate limit exceeded`,
        retryAfterMs: Math.max(0, reset * 1000 - nowMs),
      }
    if (headers.get('retry-after') !== null)
      return { ...failureFromStatus(429, headers, nowMs, detail), status }
    // GitHub's advice for a secondary limit that names no wait: at least a minute.
    if (/secondary rate limit/i.test(detail ?? ''))
      return {
        kind: 'retriable',
        code: 'rate_limited',
        status,
        error: `HTTP ${status}: GitHub secondary rate limit exceeded`,
        retryAfterMs: SECONDARY_LIMIT_WAIT_MS,
      }
  }
  return failureFromStatus(status, headers, nowMs, detail)
}

/**
 * GitHub issues through Octokit (`@octokit/rest`), its `request.fetch` the SSRF guard's. One
 * open issue per ticket key: a repeat comments on it, a regression after it was closed
 * reopens it (not one closed as "not planned": someone decided).
 *
 * Why GitHub itself holds the dedup state, not Herald: the issue is what users act on, they
 * close, reopen, relabel and delete it there, and a local (key → issue) table would drift from
 * that. Issues are found by a per-key label through the issues list endpoint, which reads the
 * database and is consistent at once, unlike the search API, whose index lags by up to a
 * minute, so two events a second apart would both miss and file two issues. The key and the
 * delivery are also marked in hidden HTML comments in the body, and each comment carries its
 * delivery id, so a retried delivery recognises what it already did and never files or
 * comments twice. Filings for one key run one at a time in this process only: two instances
 * (Kafka) serving two configurations of one repository may file one key at once, and converge
 * after filing (the newer issue closed as a duplicate of the oldest).
 *
 * @example
 * await createGitHubChannel({ guard }).send(command, { endpoint: 'github', owner, repository, token, … }, context)
 */
export const createGitHubChannel = (options: TicketChannelOptions): DeliveryChannel<GitHubConfiguration> => {
  const clock = options.clock ?? Date.now
  const maxFindings = options.maxFindingTickets ?? 20
  const recentTickets = options.recentTickets ?? createMemoryRecentTickets()
  // One filing per repository and key at a time: two configurations' deliveries (or two
  // events) for one key would otherwise both find no issue and both file one.
  const serially = createSerialQueues()
  return {
    endpoint: 'github',
    send: async (delivery, configuration, context) => {
      const result = resultBuilder(secretValues(configuration), clock)
      const http = channelFetch(options.guard, configuration, context, { wholeAnswers: true })
      const octokit = new Octokit({
        auth: configuration.token,
        baseUrl: (configuration.apiUrl ?? DEFAULT_GITHUB_API_URL).replace(/\/+$/, ''),
        userAgent: 'Herald-Notifications/1',
        log: quiet,
        request: { fetch: jsonAnswers(http.fetch) },
      })
      const owner = configuration.owner
      const repo = configuration.repository
      const target = githubTarget(configuration)
      const beforeWrite = writePacer(context)
      const notes: string[] = []
      const log = (event: string, fields: Record<string, unknown>) =>
        options.logger?.('info', `delivery.github.${event}`, {
          configuration_id: configuration.id,
          delivery_id: delivery.deliveryId,
          ...fields,
        })

      const filingsOf = (label: string) =>
        keyFilings({
          recentTickets,
          target,
          label,
          system: 'GitHub',
          doubtMs: GITHUB_FILING_DOUBT_MS,
          clock,
          beforeWrite,
        })

      const openLabelled = async (label: string): Promise<string[][]> => {
        const labels: string[][] = []
        for await (const { data: listed } of octokit.paginate.iterator(octokit.rest.issues.listForRepo, {
          owner,
          repo,
          labels: label,
          state: 'open',
          per_page: ISSUES_PER_PAGE,
        })) {
          if (!Array.isArray(listed)) throw new UnexpectedResponseError('a list of issues', 200, GITHUB_API)
          for (const issue of listed)
            if (issue.pull_request === undefined) labels.push(labelNames(issue.labels))
        }
        return labels
      }

      const file = async (subject: TicketSubject): Promise<TicketOutcome> => {
        const label = githubKeyLabel(subject)
        // Every mark names the event; a digest ticket, its configuration's own, is matched by
        // the delivery only.
        const mark = eventMark(subject.event)
        const event = subject.digest === true ? undefined : mark
        const ticketOf = (issue: { number: number; html_url: string }) => ({
          key: subject.hash,
          ticket: `${owner}/${repo}#${issue.number}`,
          url: issue.html_url,
        })
        const { render } = ticketMessage<'title' | 'body' | 'comment'>(
          'github',
          delivery,
          subject,
          context,
          configuration.templates,
          notes,
        )

        const filings = filingsOf(label)
        const create = (title: string, body: string) =>
          filings.create(async () => {
            const { data: issue } = await octokit.rest.issues.create({
              owner,
              repo,
              title,
              body: `${body}\n\n${githubIssueMarker(subject, delivery.deliveryId, mark)}\n`,
              labels: [
                ...new Set([
                  ...(configuration.labels ?? []),
                  label,
                  ...(subject.group === undefined ? [] : [githubKeyLabel({ hash: subject.group })]),
                ]),
              ],
              ...(configuration.assignees === undefined ? {} : { assignees: [...configuration.assignees] }),
              ...(configuration.milestone === undefined ? {} : { milestone: configuration.milestone }),
            })
            if (typeof issue?.number !== 'number')
              throw new UnexpectedResponseError('an issue number', 201, GITHUB_API)
            return issue
          }, refusedByGitHub)

        const listIssues = async (state: 'all' | 'open', direction: 'asc' | 'desc') => {
          const { data: listed } = await octokit.rest.issues.listForRepo({
            owner,
            repo,
            labels: label,
            state,
            sort: 'created',
            direction,
            per_page: ISSUES_PER_PAGE,
          })
          if (!Array.isArray(listed)) throw new UnexpectedResponseError('a list of issues', 200, GITHUB_API)
          return listed.filter((issue) => issue.pull_request === undefined)
        }
        /**
         * Comments on a duplicate of the key's kept issue, naming it, then closes it without the
         * key's label: found again, the closed duplicate would stand for the key once the kept
         * issue is closed, and a regression would find it "not planned" and leave it.
         */
        const closeDuplicate = async (issue: { number: number; labels: IssueLabels }, kept: number) => {
          const duplicate = issue.number
          await beforeWrite()
          await octokit.rest.issues.createComment({
            owner,
            repo,
            issue_number: duplicate,
            body: `Duplicate of #${kept}: filed for the same key at the same time by another Herald instance. Repeats go to #${kept}.`,
          })
          await beforeWrite()
          await octokit.rest.issues.update({
            owner,
            repo,
            issue_number: duplicate,
            state: 'closed',
            state_reason: 'not_planned',
            labels: labelNames(issue.labels).filter((name) => name !== label),
          })
          notes.push(`${owner}/${repo}#${duplicate} closed as a duplicate of #${kept}`)
          log('ticket_duplicate_closed', { key: subject.hash, issue: duplicate, kept })
        }

        const issues = await listIssues('all', 'desc')
        let found = filings.found(issues, (issue) => issue.state === 'open')
        // More than one open: a filing of another instance raced this key's, and its convergence
        // (below) never ran. The oldest is kept.
        const open = issues.filter((issue) => issue.state === 'open').sort((x, y) => x.number - y.number)
        const [oldest, ...newer] = open
        if (oldest !== undefined && newer.length > 0) {
          for (const duplicate of newer) await closeDuplicate(duplicate, oldest.number)
          found = oldest
        }

        if (found === undefined) {
          const title = oneLine(await render('title'), MAX_TITLE)
          const body = truncate(await render('body', { title }), MAX_BODY)
          const issue = await create(title, body)
          // GitHub drops labels silently when the token cannot push; without its label the
          // issue cannot be found again and the next event would file another.
          if (!labelNames(issue.labels).includes(label))
            notes.push(
              `GitHub dropped the label ${label}: the token needs push access, or repeats file new issues`,
            )
          log('ticket_created', { key: subject.hash, issue: issue.number })
          // Herald instances sharing the queues each list the key, see nothing, and file: the
          // listing is consistent at once, so every filer sees all of the key's open issues now,
          // and the one whose issue is not the oldest closes its own and repeats on the oldest.
          const kept = (await listIssues('open', 'asc'))[0]
          if (kept === undefined || kept.number >= issue.number)
            return { ...ticketOf(issue), action: 'created' }
          await closeDuplicate(issue, kept.number)
          found = kept
        }

        if (marked(found.body, delivery.deliveryId, event)) return { ...ticketOf(found), action: 'unchanged' }
        const closed = found.state === 'closed'
        if (closed && found.state_reason === 'not_planned') {
          notes.push(`${owner}/${repo}#${found.number} was closed as not planned; left closed`)
          return { ...ticketOf(found), action: 'unchanged' }
        }

        const since = new Date(Date.parse(delivery.createdAt) - COMMENT_LOOKBACK_MS)
        const marker = githubCommentMarker(delivery.deliveryId, mark)
        const commented = await anyComment(
          octokit,
          {
            owner,
            repo,
            issue_number: found.number,
            ...(Number.isNaN(since.getTime()) ? {} : { since: since.toISOString() }),
          },
          (body) => marked(body, delivery.deliveryId, event),
        )
        // Comment first, then reopen: a retry after the comment still reopens, and never comments twice.
        if (!commented) {
          const comment = truncate(
            await render('comment', { title: found.title, regression: closed }),
            MAX_BODY,
          )
          await beforeWrite()
          await octokit.rest.issues.createComment({
            owner,
            repo,
            issue_number: found.number,
            body: `${comment}\n\n${marker}\n`,
          })
        }
        if (closed) {
          await beforeWrite()
          await octokit.rest.issues.update({
            owner,
            repo,
            issue_number: found.number,
            state: 'open',
            state_reason: 'reopened',
          })
          log('ticket_reopened', { key: subject.hash, issue: found.number })
          return { ...ticketOf(found), action: 'reopened' }
        }
        if (commented) return { ...ticketOf(found), action: 'unchanged' }
        log('ticket_commented', { key: subject.hash, issue: found.number })
        return { ...ticketOf(found), action: 'commented' }
      }

      return fileTickets({
        delivery,
        maxFindings,
        serially,
        target,
        labelOf: githubKeyLabel,
        file,
        openLabelled,
        filingsOf,
        result,
        failureOf: (error) => failureOfCall(error, http.last(), clock(), githubFailure),
        lastStatus: () => http.last()?.status ?? null,
        notes,
      })
    },
  }
}
