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
 * One Jira Cloud project, as the REST API v3 documents it (developer.atlassian.com, "The Jira
 * Cloud platform REST API", groups Issues, Issue search, Issue comments): basic auth with an
 * account's email and API token (else 401); `POST /rest/api/3/search/jql` (the enhanced
 * search: `jql`, `fields`, `properties`, `maxResults`, `nextPageToken`, `reconcileIssues`;
 * anything else, `startAt` included, is an invalid payload; eventually consistent: a new issue
 * shows only after `searchLagMs` unless its id is in `reconcileIssues`); `POST
 * /rest/api/3/issue` with rich text in Atlassian Document Format and entity `properties`;
 * comments with `expand=properties`, `orderBy`, `startAt` and `maxResults`; transitions; edit
 * issue with `update.labels`. Errors are `{errorMessages, errors}`.
 */

type Category = 'new' | 'indeterminate' | 'done'

const STATUSES: Readonly<Record<string, { name: string; category: Category }>> = {
  '10000': { name: 'To Do', category: 'new' },
  '10001': { name: 'In Progress', category: 'indeterminate' },
  '10002': { name: 'Done', category: 'done' },
}

export interface JiraIssue {
  id: string
  key: string
  summary: string
  description: unknown
  status: string
  labels: string[]
  issuetype: string
  priority: string | null
  assignee: string | null
  properties: Record<string, unknown>
  createdAt: number
}

export interface JiraComment {
  id: string
  issue: string
  body: unknown
  properties: Record<string, unknown>
  created: string
}

export interface JiraStandInOptions {
  readonly projectKey: string
  readonly email: string
  readonly apiToken: string
  /** How long a new issue stays invisible to search unless reconciled (default 0). */
  readonly searchLagMs?: number
  readonly issueTypes?: readonly string[]
  readonly priorities?: readonly string[]
}

export interface JiraStandIn extends HttpStandIn {
  /** The site URL to configure. */
  readonly siteUrl: string
  readonly issues: JiraIssue[]
  readonly comments: JiraComment[]
  readonly problems: string[]
  /** What a user resolving the issue in Jira does. */
  readonly resolve: (key: string) => void
  /**
   * The next `times` issue creations take `ms` before the issue is filed and answered: two
   * filers racing one key both search before either files.
   */
  readonly slowCreates: (ms: number, times?: number) => void
  /** The next `times` issues are filed, but the answers to their requests never come. */
  readonly loseFilingAnswers: (times?: number) => void
  /** Whether the workflow has a way back from Done (default true). */
  reopenable: boolean
}

const SEARCH_KEYS = new Set([
  'jql',
  'nextPageToken',
  'maxResults',
  'fields',
  'expand',
  'properties',
  'fieldsByKeys',
  'failFast',
  'reconcileIssues',
])

const MARKS = new Set(['link', 'strong', 'em', 'code', 'strike', 'underline'])
const NODES = new Set([
  'paragraph',
  'text',
  'hardBreak',
  'heading',
  'bulletList',
  'orderedList',
  'listItem',
  'codeBlock',
  'rule',
])

/** Every way `doc` is not an Atlassian Document Format document; empty when it is one. */
export const adfProblems = (doc: unknown, path: string): string[] => {
  const problems: string[] = []
  if (!isObject(doc) || doc.type !== 'doc' || doc.version !== 1 || !Array.isArray(doc.content))
    return [`${path} must be an ADF document {type: "doc", version: 1, content: [...]}`]
  const walk = (node: unknown, at: string): void => {
    if (!isObject(node) || !NODES.has(String(node.type))) {
      problems.push(`${at} is not an ADF node`)
      return
    }
    if (node.type === 'text') {
      if (typeof node.text !== 'string' || node.text === '')
        problems.push(`${at}.text must be a non-empty string`)
      if (node.marks === undefined) return
      if (!Array.isArray(node.marks)) {
        problems.push(`${at}.marks must be an array`)
        return
      }
      for (const mark of node.marks) {
        if (!isObject(mark) || !MARKS.has(String(mark.type))) problems.push(`${at} has an unknown mark`)
        else if (mark.type === 'link' && (!isObject(mark.attrs) || typeof mark.attrs.href !== 'string'))
          problems.push(`${at} has a link mark without href`)
      }
      return
    }
    if (node.content === undefined) return
    if (!Array.isArray(node.content)) {
      problems.push(`${at}.content must be an array`)
      return
    }
    for (const [i, child] of node.content.entries()) walk(child, `${at}.content[${i}]`)
  }
  for (const [i, node] of doc.content.entries()) {
    if (isObject(node) && (node.type === 'text' || node.type === 'hardBreak'))
      problems.push(`${path}.content[${i}]: inline nodes must be inside a block`)
    walk(node, `${path}.content[${i}]`)
  }
  return problems
}

/**
 * The JQL this stand-in understands: `field = "value"` and `field != "value"` clauses joined by
 * AND, an optional ORDER BY.
 */
const parseJql = (jql: string): { clauses: [string, '=' | '!=', string][] } | undefined => {
  const [where = '', order] = jql.split(/\s+ORDER\s+BY\s+/i)
  if (order !== undefined && !/^\w+(\s+(ASC|DESC))?$/i.test(order.trim())) return undefined
  const clauses: [string, '=' | '!=', string][] = []
  for (const part of where.split(/\s+AND\s+/i)) {
    const match = /^\s*(\w+)\s*(!?=)\s*"((?:[^"\\]|\\.)*)"\s*$/.exec(part)
    if (match === null) return undefined
    clauses.push([match[1] ?? '', match[2] === '!=' ? '!=' : '=', (match[3] ?? '').replace(/\\(.)/g, '$1')])
  }
  return { clauses }
}

/** A status category as JQL names it: its name (`To Do`, `In Progress`, `Done`) or its key. */
const CATEGORY_NAMES: Readonly<Record<Category, readonly string[]>> = {
  new: ['to do', 'new'],
  indeterminate: ['in progress', 'indeterminate'],
  done: ['done'],
}

export const startJiraStandIn = async (options: JiraStandInOptions): Promise<JiraStandIn> => {
  const issues: JiraIssue[] = []
  const comments: JiraComment[] = []
  const problems: string[] = []
  const issueTypes = new Set(options.issueTypes ?? ['Bug', 'Task'])
  const priorities = new Set(options.priorities ?? ['Highest', 'High', 'Medium', 'Low'])
  const lag = options.searchLagMs ?? 0
  let origin = ''
  let lostAnswers = 0
  const createDelays: number[] = []

  const errors = (status: number, errorMessages: string[], fieldErrors: Record<string, string> = {}) => ({
    status,
    body: { errorMessages, errors: fieldErrors },
  })
  const refuse = (status: number, errorMessages: string[], fieldErrors: Record<string, string> = {}) => {
    problems.push(...errorMessages, ...Object.entries(fieldErrors).map(([f, m]) => `${f}: ${m}`))
    return errors(status, errorMessages, fieldErrors)
  }
  const statusJson = (id: string) => {
    const status = STATUSES[id] ?? { name: 'To Do', category: 'new' as const }
    return { id, name: status.name, statusCategory: { key: status.category, name: status.name } }
  }
  const find = (keyOrId: string) => issues.find((i) => i.key === keyOrId || i.id === keyOrId)

  const readJson = (request: StandInRequest): Record<string, unknown> | undefined => {
    if (mediaType(request.headers) !== 'application/json') {
      problems.push(`${request.method} ${request.path}: content-type must be application/json`)
      return undefined
    }
    const parsed = parseJson(request.body)
    return parsed.ok && isObject(parsed.value) ? parsed.value : undefined
  }

  const search = (request: StandInRequest) => {
    const body = readJson(request)
    if (body === undefined)
      return refuse(400, ['Invalid request payload. Refer to the REST API documentation and try again.'])
    const unknown = Object.keys(body).filter((k) => !SEARCH_KEYS.has(k))
    if (unknown.length > 0 || typeof body.jql !== 'string')
      return refuse(400, ['Invalid request payload. Refer to the REST API documentation and try again.'])
    const jql = parseJql(body.jql)
    if (jql === undefined) return refuse(400, [`Error in the JQL Query: cannot parse ${body.jql}`])
    const reconcile = new Set((Array.isArray(body.reconcileIssues) ? body.reconcileIssues : []).map(String))
    const fields = new Set(Array.isArray(body.fields) ? body.fields.map(String) : [])
    const properties = Array.isArray(body.properties) ? body.properties.map(String) : []
    const now = Date.now()
    const matched = issues
      .filter((i) => now - i.createdAt >= lag || reconcile.has(i.id))
      .filter((i) =>
        jql.clauses.every(([field, op, value]) => {
          const category = STATUSES[i.status]?.category ?? 'new'
          const holds =
            field === 'project'
              ? i.key.startsWith(`${value}-`)
              : field === 'labels'
                ? i.labels.includes(value)
                : field === 'statusCategory'
                  ? CATEGORY_NAMES[category].includes(value.toLowerCase())
                  : false
          return op === '=' ? holds : !holds
        }),
      )
      .sort((a, b) => Number(b.id) - Number(a.id))
      .slice(0, Math.min(Number(body.maxResults ?? 50), 5000))
    return {
      status: 200,
      body: {
        issues: matched.map((i) => ({
          id: i.id,
          key: i.key,
          self: `${origin}/rest/api/3/issue/${i.id}`,
          fields: {
            ...(fields.has('status') ? { status: statusJson(i.status) } : {}),
            ...(fields.has('summary') ? { summary: i.summary } : {}),
            ...(fields.has('labels') ? { labels: i.labels } : {}),
          },
          ...(properties.length === 0
            ? {}
            : {
                properties: Object.fromEntries(
                  properties.filter((p) => p in i.properties).map((p) => [p, i.properties[p]]),
                ),
              }),
        })),
        isLast: true,
      },
    }
  }

  const propertiesOf = (value: unknown, path: string, fieldErrors: Record<string, string>) => {
    if (value === undefined) return {}
    if (!Array.isArray(value)) {
      fieldErrors[path] = 'must be an array of {key, value}'
      return {}
    }
    const out: Record<string, unknown> = {}
    for (const entry of value) {
      if (!isObject(entry) || typeof entry.key !== 'string' || entry.key.length > 255)
        fieldErrors[path] = 'bad property'
      else out[entry.key] = entry.value
    }
    return out
  }

  const createIssue = (request: StandInRequest) => {
    const body = readJson(request)
    if (body === undefined || !isObject(body.fields)) return refuse(400, ['Invalid request payload.'])
    const f = body.fields
    const fieldErrors: Record<string, string> = {}
    if (!isObject(f.project) || f.project.key !== options.projectKey)
      fieldErrors.project = 'valid project is required'
    const issuetype = isObject(f.issuetype) ? (f.issuetype.name ?? f.issuetype.id) : undefined
    if (typeof issuetype !== 'string' || !issueTypes.has(issuetype))
      fieldErrors.issuetype = 'valid issue type is required'
    if (typeof f.summary !== 'string' || f.summary.trim() === '')
      fieldErrors.summary = 'You must specify a summary of the issue.'
    else if (f.summary.length > 255) fieldErrors.summary = 'Summary must be less than 255 characters.'
    else if (/[\r\n]/.test(f.summary))
      fieldErrors.summary = 'The summary is invalid because it contains newline characters.'
    if (f.description !== undefined) {
      const found = adfProblems(f.description, 'description')
      if (found.length > 0)
        fieldErrors.description = `Operation value must be an Atlassian Document: ${found.join('; ')}`
    }
    const labels = f.labels ?? []
    if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string' && l !== '' && !/\s/.test(l)))
      fieldErrors.labels = 'labels are strings without spaces'
    if (f.priority !== undefined && (!isObject(f.priority) || !priorities.has(String(f.priority.name))))
      fieldErrors.priority = 'Specify the Priority (name) in the string format'
    if (f.assignee !== undefined && (!isObject(f.assignee) || typeof f.assignee.accountId !== 'string'))
      fieldErrors.assignee = 'Specify a valid value for assignee (accountId)'
    const properties = propertiesOf(body.properties, 'properties', fieldErrors)
    if (Object.keys(fieldErrors).length > 0) return refuse(400, [], fieldErrors)
    const id = String(10_000 + issues.length + 1)
    const key = `${options.projectKey}-${issues.length + 1}`
    issues.push({
      id,
      key,
      summary: String(f.summary),
      description: f.description,
      status: '10000',
      labels: labels as string[],
      issuetype: String(issuetype),
      priority: isObject(f.priority) ? String(f.priority.name) : null,
      assignee: isObject(f.assignee) ? String(f.assignee.accountId) : null,
      properties,
      createdAt: Date.now(),
    })
    return { status: 201, body: { id, key, self: `${origin}/rest/api/3/issue/${id}` } }
  }

  const onIssue = (request: StandInRequest, issue: JiraIssue, sub: string | undefined) => {
    if (sub === 'comment' && request.method === 'GET') {
      const expand = (request.query.get('expand') ?? '').split(',')
      const newestFirst = request.query.get('orderBy') === '-created'
      const max = Number(request.query.get('maxResults') ?? 5000)
      const startAt = Number(request.query.get('startAt') ?? 0)
      const listed = comments.filter((c) => c.issue === issue.id)
      const ordered = newestFirst ? [...listed].reverse() : listed
      return {
        status: 200,
        body: {
          startAt,
          maxResults: max,
          total: listed.length,
          comments: ordered.slice(startAt, startAt + max).map((c) => ({
            id: c.id,
            self: `${origin}/rest/api/3/issue/${issue.id}/comment/${c.id}`,
            body: c.body,
            created: c.created,
            updated: c.created,
            ...(expand.includes('properties')
              ? { properties: Object.entries(c.properties).map(([key, value]) => ({ key, value })) }
              : {}),
          })),
        },
      }
    }
    if (sub === 'comment' && request.method === 'POST') {
      const body = readJson(request)
      if (body === undefined) return refuse(400, ['Invalid request payload.'])
      const fieldErrors: Record<string, string> = {}
      const found = adfProblems(body.body, 'body')
      if (found.length > 0)
        fieldErrors.comment = `Comment body must be an Atlassian Document: ${found.join('; ')}`
      const properties = propertiesOf(body.properties, 'properties', fieldErrors)
      if (Object.keys(fieldErrors).length > 0) return refuse(400, [], fieldErrors)
      const comment = {
        id: String(20_000 + comments.length),
        issue: issue.id,
        body: body.body,
        properties,
        created: new Date().toISOString(),
      }
      comments.push(comment)
      return {
        status: 201,
        body: { id: comment.id, self: `${origin}/rest/api/3/issue/${issue.id}/comment/${comment.id}` },
      }
    }
    const transitions = () => {
      const category = STATUSES[issue.status]?.category
      if (category === 'done')
        return standIn.reopenable
          ? [{ id: '31', name: 'Reopen', to: statusJson('10000'), isAvailable: true }]
          : []
      return [
        { id: '11', name: 'Start progress', to: statusJson('10001'), isAvailable: true },
        { id: '21', name: 'Done', to: statusJson('10002'), isAvailable: true },
      ]
    }
    if (sub === undefined && request.method === 'PUT') {
      // Edit issue: only `update.labels` operations (`add`, `remove`, `set`) are understood.
      const body = readJson(request)
      const operations = isObject(body?.update) ? body.update.labels : undefined
      if (body === undefined || !Array.isArray(operations) || Object.keys(body).some((k) => k !== 'update'))
        return refuse(400, ['Invalid request payload. Refer to the REST API documentation and try again.'])
      for (const operation of operations) {
        if (!isObject(operation)) return refuse(400, ['Invalid label operation.'])
        if (typeof operation.add === 'string') issue.labels = [...new Set([...issue.labels, operation.add])]
        else if (typeof operation.remove === 'string')
          issue.labels = issue.labels.filter((l) => l !== operation.remove)
        else if (Array.isArray(operation.set)) issue.labels = operation.set.map(String)
        else return refuse(400, ['Invalid label operation.'])
      }
      return { status: 204 }
    }
    if (sub === 'transitions' && request.method === 'GET')
      return { status: 200, body: { transitions: transitions() } }
    if (sub === 'transitions' && request.method === 'POST') {
      const body = readJson(request)
      const id = isObject(body?.transition) ? String(body.transition.id) : undefined
      const transition = transitions().find((t) => t.id === id)
      if (transition === undefined) return refuse(400, ['Transition id is not valid for this issue.'])
      issue.status = transition.to.id
      return { status: 204 }
    }
    return errors(404, ['Not found'])
  }

  const handle = (request: StandInRequest) => {
    const expected = `Basic ${Buffer.from(`${options.email}:${options.apiToken}`).toString('base64')}`
    if (request.headers.authorization !== expected)
      return errors(401, ['You are not authorized to perform this operation. Please log in.'])
    if (!(request.headers.accept ?? '').includes('application/json'))
      problems.push(`${request.method} ${request.path}: accept must include application/json`)
    if (request.path === '/rest/api/3/search/jql' && request.method === 'POST') return search(request)
    if (request.path === '/rest/api/3/issue' && request.method === 'POST') {
      const delay = createDelays.shift()
      if (delay !== undefined)
        return new Promise<StandInReply>((resolve) => setTimeout(() => resolve(handle(request)), delay))
      const reply = createIssue(request)
      if (reply.status !== 201 || lostAnswers === 0) return reply
      // Filed, but the answer never leaves: what a timeout or a crash mid-request looks like.
      lostAnswers--
      return new Promise<StandInReply>(() => {})
    }
    const match = /^\/rest\/api\/3\/issue\/([^/]+)(?:\/(comment|transitions))?$/.exec(request.path)
    if (match === null) return errors(404, ['Not found'])
    const issue = find(decodeURIComponent(match[1] ?? ''))
    if (issue === undefined)
      return errors(404, ['Issue does not exist or you do not have permission to see it.'])
    return onIssue(request, issue, match[2])
  }

  const base = await startHttpStandIn(handle)
  origin = base.url('')
  const standIn: JiraStandIn = {
    ...base,
    siteUrl: base.url(''),
    issues,
    comments,
    problems,
    reopenable: true,
    slowCreates: (ms, times = 1) => {
      for (let i = 0; i < times; i++) createDelays.push(ms)
    },
    loseFilingAnswers: (times = 1) => {
      lostAnswers += times
    },
    resolve: (key) => {
      const issue = find(key)
      if (issue === undefined) throw new Error(`no issue ${key}`)
      issue.status = '10002'
    },
  }
  return standIn
}
