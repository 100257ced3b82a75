import {
  type HttpStandIn,
  isObject,
  mediaType,
  parseJson,
  type StandInReply,
  type StandInRequest,
  startHttpStandIn,
} from './http-stand-in.ts'

/**
 * One GitHub repository's issues, as GitHub's REST API documents them (docs.github.com,
 * "REST API endpoints for issues" and "for issue comments"): list with `labels`, `state`,
 * `sort`, `direction`, `per_page`; create (title required, labels created on the fly, labels
 * dropped silently without push access, assignees and milestone validated: 422), the list with
 * `page` too (the next page named in a `Link` header); get/update
 * with `state`, `state_reason` and `labels`; list comments with `since`, `per_page` and `page` (the next
 * page named in a `Link` header); create a comment (body
 * required). Every request needs a token (`Authorization: token …` or `Bearer …`: else 401)
 * and a User-Agent (else 403); errors are `{message, documentation_url, errors?}`.
 */

export interface GitHubIssue {
  number: number
  title: string
  body: string | null
  state: 'open' | 'closed'
  state_reason: 'completed' | 'not_planned' | 'reopened' | null
  labels: string[]
  assignees: string[]
  milestone: number | null
  created_at: string
  updated_at: string
  closed_at: string | null
  /** Set for a pull request, which the issues endpoints list too. */
  pull_request?: { url: string }
}

export interface GitHubComment {
  id: number
  issue: number
  body: string
  created_at: string
  updated_at: string
}

export interface GitHubStandInOptions {
  readonly owner: string
  readonly repo: string
  readonly token: string
  readonly collaborators?: readonly string[]
  readonly milestones?: readonly number[]
}

export interface GitHubStandIn extends HttpStandIn {
  /** What to configure as `api_url`. */
  readonly apiUrl: string
  readonly issues: GitHubIssue[]
  readonly comments: GitHubComment[]
  /** Shape problems of refused requests. */
  readonly problems: string[]
  /** Does what a user closing the issue in GitHub does. */
  readonly closeIssue: (number: number, reason?: 'completed' | 'not_planned') => void
  /** Adds a pull request, which carries the same labels as an issue would. */
  readonly addPullRequest: (labels: readonly string[]) => void
  /** Without push access GitHub creates the issue but silently drops its labels. */
  pushAccess: boolean
  /** Answers 410, as GitHub does for a repository whose issues are turned off. */
  issuesDisabled: boolean
  /**
   * The next `times` issue creations take `ms`: the issue is filed, and answered, only then,
   * as when GitHub is still working on a request its client stopped waiting for.
   */
  readonly slowCreates: (ms: number, times?: number) => void
}

const DOCS = 'https://docs.github.com/rest/issues/issues'

export const startGitHubStandIn = async (options: GitHubStandInOptions): Promise<GitHubStandIn> => {
  const issues: GitHubIssue[] = []
  const comments: GitHubComment[] = []
  const problems: string[] = []
  const collaborators = new Set(options.collaborators ?? [])
  const milestones = new Set(options.milestones ?? [])
  let clock = Date.parse('2026-11-22T10:00:00Z')
  const now = () => {
    clock += 1000
    return new Date(clock).toISOString().replace('.000Z', 'Z')
  }
  let origin = ''
  const createDelays: number[] = []

  const error = (status: number, message: string, errors?: object[]) => ({
    status,
    body: {
      message,
      documentation_url: DOCS,
      ...(errors === undefined ? {} : { errors }),
      status: String(status),
    },
  })
  const refuse = (status: number, message: string, found: string[], errors?: object[]) => {
    problems.push(...found)
    return error(status, message, errors)
  }

  const issueJson = (issue: GitHubIssue) => ({
    id: 1_000_000 + issue.number,
    node_id: `I_${issue.number}`,
    url: `${origin}/repos/${options.owner}/${options.repo}/issues/${issue.number}`,
    html_url: `https://github.example/${options.owner}/${options.repo}/issues/${issue.number}`,
    number: issue.number,
    state: issue.state,
    state_reason: issue.state_reason,
    title: issue.title,
    body: issue.body,
    user: { login: 'herald-bot', id: 1 },
    labels: issue.labels.map((name, i) => ({
      id: i + 1,
      name,
      color: 'ededed',
      default: false,
      description: null,
    })),
    assignee: issue.assignees[0] === undefined ? null : { login: issue.assignees[0] },
    assignees: issue.assignees.map((login) => ({ login })),
    milestone: issue.milestone === null ? null : { number: issue.milestone, title: `m${issue.milestone}` },
    locked: false,
    comments: comments.filter((c) => c.issue === issue.number).length,
    created_at: issue.created_at,
    updated_at: issue.updated_at,
    closed_at: issue.closed_at,
    author_association: 'OWNER',
    ...(issue.pull_request === undefined ? {} : { pull_request: issue.pull_request }),
  })

  const commentJson = (comment: GitHubComment) => ({
    id: comment.id,
    node_id: `IC_${comment.id}`,
    url: `${origin}/repos/${options.owner}/${options.repo}/issues/comments/${comment.id}`,
    html_url: `https://github.example/${options.owner}/${options.repo}/issues/${comment.issue}#issuecomment-${comment.id}`,
    issue_url: `${origin}/repos/${options.owner}/${options.repo}/issues/${comment.issue}`,
    body: comment.body,
    user: { login: 'herald-bot', id: 1 },
    created_at: comment.created_at,
    updated_at: comment.updated_at,
    author_association: 'OWNER',
  })

  const jsonBody = (
    request: StandInRequest,
  ): { ok: true; value: Record<string, unknown> } | { ok: false } => {
    if (mediaType(request.headers) !== 'application/json') {
      problems.push(`${request.method} ${request.path}: content-type must be application/json`)
      return { ok: false }
    }
    const parsed = parseJson(request.body)
    if (!parsed.ok || !isObject(parsed.value)) {
      problems.push(`${request.method} ${request.path}: body must be a JSON object`)
      return { ok: false }
    }
    return { ok: true, value: parsed.value }
  }

  /** GitHub names the next page of a list in a Link header, an absolute URL with the same query. */
  const nextPage = (request: StandInRequest, page: number, more: boolean): Record<string, string> => {
    if (!more) return {}
    const next = new URLSearchParams(request.query)
    next.set('page', String(page + 1))
    return { link: `<http://${request.headers.host}${request.path}?${next}>; rel="next"` }
  }

  const handle = (request: StandInRequest): StandInReply | Promise<StandInReply> => {
    const authorization = request.headers.authorization
    if (request.headers['user-agent'] === undefined)
      return refuse(
        403,
        'Request forbidden by administrative rules. Please make sure your request has a User-Agent header',
        ['no User-Agent'],
      )
    if (authorization === undefined) return refuse(401, 'Requires authentication', ['no Authorization'])
    if (authorization !== `token ${options.token}` && authorization !== `Bearer ${options.token}`)
      return error(401, 'Bad credentials')
    const accept = request.headers.accept ?? ''
    if (!/application\/vnd\.github(\.v3)?\+json|application\/json/.test(accept))
      problems.push(`${request.method} ${request.path}: accept ${accept} is not GitHub's media type`)

    const match = /^\/repos\/([^/]+)\/([^/]+)\/issues(?:\/(\d+)(\/comments)?)?$/.exec(request.path)
    if (match === null || match[1] !== options.owner || match[2] !== options.repo)
      return error(404, 'Not Found')
    const number = match[3] === undefined ? undefined : Number(match[3])
    const onComments = match[4] !== undefined

    if (issuesDisabled()) return error(410, 'Issues are disabled for this repo')

    if (number === undefined) {
      if (request.method === 'GET') {
        const wanted = (request.query.get('labels') ?? '').split(',').filter((l) => l !== '')
        const stateFilter = request.query.get('state') ?? 'open'
        if (!['open', 'closed', 'all'].includes(stateFilter))
          return refuse(422, 'Validation Failed', ['bad state'])
        const perPage = Math.min(Number(request.query.get('per_page') ?? 30), 100)
        const page = Math.max(1, Number(request.query.get('page') ?? 1) || 1)
        const direction = request.query.get('direction') ?? 'desc'
        const matching = issues
          .filter((i) => stateFilter === 'all' || i.state === stateFilter)
          .filter((i) => wanted.every((w) => i.labels.includes(w)))
          .sort((a, b) => (direction === 'asc' ? a.number - b.number : b.number - a.number))
        const listed = matching.slice((page - 1) * perPage, page * perPage)
        return {
          status: 200,
          headers: nextPage(request, page, matching.length > page * perPage),
          body: listed.map(issueJson),
        }
      }
      if (request.method === 'POST') {
        const delay = createDelays.shift()
        if (delay !== undefined)
          return new Promise<StandInReply>((resolve) => setTimeout(() => resolve(handle(request)), delay))
        const body = jsonBody(request)
        if (!body.ok) return error(400, 'Problems parsing JSON')
        const input = body.value
        if (typeof input.title !== 'string' || input.title.trim() === '')
          return refuse(
            422,
            'Validation Failed',
            ['issue without a title'],
            [{ resource: 'Issue', code: 'missing_field', field: 'title' }],
          )
        if (input.title.length > 256) return refuse(422, 'Validation Failed', ['title longer than 256'])
        if (input.body !== undefined && (typeof input.body !== 'string' || input.body.length > 65_536))
          return refuse(422, 'Validation Failed', ['body must be a string of at most 65536'])
        const labels = input.labels ?? []
        if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string'))
          return refuse(422, 'Validation Failed', ['labels must be strings'])
        const assignees = input.assignees ?? []
        if (!Array.isArray(assignees)) return refuse(422, 'Validation Failed', ['assignees must be an array'])
        const unknownAssignee = assignees.find((a) => !collaborators.has(String(a)))
        if (unknownAssignee !== undefined)
          return error(422, 'Validation Failed', [
            { value: unknownAssignee, resource: 'Issue', field: 'assignees', code: 'invalid' },
          ])
        if (
          input.milestone !== undefined &&
          input.milestone !== null &&
          !milestones.has(Number(input.milestone))
        )
          return error(422, 'Validation Failed', [
            { value: input.milestone, resource: 'Issue', field: 'milestone', code: 'invalid' },
          ])
        const at = now()
        const issue: GitHubIssue = {
          number: issues.length + 1,
          title: input.title,
          body: typeof input.body === 'string' ? input.body : null,
          state: 'open',
          state_reason: null,
          labels: standIn.pushAccess ? [...new Set(labels as string[])] : [],
          assignees: assignees.map(String),
          milestone:
            input.milestone === undefined || input.milestone === null ? null : Number(input.milestone),
          created_at: at,
          updated_at: at,
          closed_at: null,
        }
        issues.push(issue)
        return { status: 201, body: issueJson(issue) }
      }
      return error(404, 'Not Found')
    }

    const issue = issues.find((i) => i.number === number)
    if (issue === undefined) return error(404, 'Not Found')
    if (onComments) {
      if (request.method === 'GET') {
        const since = request.query.get('since')
        if (since !== null && Number.isNaN(Date.parse(since)))
          return refuse(422, 'Validation Failed', ['bad since'])
        const perPage = Math.min(Number(request.query.get('per_page') ?? 30), 100)
        const page = Math.max(1, Number(request.query.get('page') ?? 1) || 1)
        const matching = comments
          .filter((c) => c.issue === number)
          .filter((c) => since === null || Date.parse(c.updated_at) >= Date.parse(since))
        const listed = matching.slice((page - 1) * perPage, page * perPage)
        return {
          status: 200,
          headers: nextPage(request, page, matching.length > page * perPage),
          body: listed.map(commentJson),
        }
      }
      if (request.method === 'POST') {
        const body = jsonBody(request)
        if (!body.ok) return error(400, 'Problems parsing JSON')
        if (typeof body.value.body !== 'string' || body.value.body.trim() === '')
          return refuse(
            422,
            'Validation Failed',
            ['comment without a body'],
            [{ resource: 'IssueComment', code: 'missing_field', field: 'body' }],
          )
        const at = now()
        const comment = {
          id: 5000 + comments.length,
          issue: number,
          body: body.value.body,
          created_at: at,
          updated_at: at,
        }
        comments.push(comment)
        issue.updated_at = at
        return { status: 201, body: commentJson(comment) }
      }
      return error(404, 'Not Found')
    }
    if (request.method === 'GET') return { status: 200, body: issueJson(issue) }
    if (request.method === 'PATCH') {
      const body = jsonBody(request)
      if (!body.ok) return error(400, 'Problems parsing JSON')
      const { state: next, state_reason: reason, labels } = body.value
      if (labels !== undefined && (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')))
        return refuse(422, 'Validation Failed', ['labels must be strings'])
      if (next !== undefined && next !== 'open' && next !== 'closed')
        return refuse(422, 'Validation Failed', [`bad state ${String(next)}`])
      if (
        reason !== undefined &&
        reason !== null &&
        !['completed', 'not_planned', 'reopened'].includes(String(reason))
      )
        return refuse(422, 'Validation Failed', [`bad state_reason ${String(reason)}`])
      const at = now()
      if (next === 'open') {
        issue.state = 'open'
        issue.closed_at = null
        issue.state_reason = (reason as GitHubIssue['state_reason']) ?? 'reopened'
      } else if (next === 'closed') {
        issue.state = 'closed'
        issue.closed_at = at
        issue.state_reason = (reason as GitHubIssue['state_reason']) ?? 'completed'
      }
      // Labels given replace the issue's (an empty list removes them all).
      if (labels !== undefined) issue.labels = [...new Set(labels as string[])]
      issue.updated_at = at
      return { status: 200, body: issueJson(issue) }
    }
    return error(404, 'Not Found')
  }

  const base = await startHttpStandIn(handle)
  origin = base.url('')
  const standIn: GitHubStandIn = {
    ...base,
    apiUrl: base.url(''),
    issues,
    comments,
    problems,
    pushAccess: true,
    issuesDisabled: false,
    slowCreates: (ms, times = 1) => {
      for (let i = 0; i < times; i++) createDelays.push(ms)
    },
    closeIssue: (number, reason = 'completed') => {
      const issue = issues.find((i) => i.number === number)
      if (issue === undefined) throw new Error(`no issue #${number}`)
      issue.state = 'closed'
      issue.state_reason = reason
      issue.closed_at = now()
      issue.updated_at = issue.closed_at
    },
    addPullRequest: (labels) => {
      const at = now()
      const number = issues.length + 1
      issues.push({
        number,
        title: 'A pull request',
        body: null,
        state: 'open',
        state_reason: null,
        labels: [...labels],
        assignees: [],
        milestone: null,
        created_at: at,
        updated_at: at,
        closed_at: null,
        pull_request: { url: `${origin}/repos/${options.owner}/${options.repo}/pulls/${number}` },
      })
    },
  }
  const issuesDisabled = () => standIn.issuesDisabled
  return standIn
}
