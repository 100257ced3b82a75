import {
  type HttpStandIn,
  isObject,
  mediaType,
  parseJson,
  type StandInRequest,
  startHttpStandIn,
} from './http-stand-in.ts'

/**
 * Microsoft Teams' webhooks, as documented (learn.microsoft.com: "Create an Incoming Webhook",
 * "Send Adaptive Cards with Workflows"; adaptivecards.io schema): a JSON POST of
 * `{type: "message", attachments: [{contentType: "application/vnd.microsoft.card.adaptive",
 * content: <AdaptiveCard>}]}`. The legacy Office 365 connector (`/webhookb2/…`) answers
 * `200 1`; a Workflows trigger (`/workflows/…/triggers/manual/paths/invoke?…&sig=…`) answers
 * `202` with no body and refuses a request without its `sig`.
 */

const ELEMENTS = new Set([
  'TextBlock',
  'FactSet',
  'Container',
  'ColumnSet',
  'Image',
  'RichTextBlock',
  'ActionSet',
])

const elementProblems = (element: unknown, at: string, problems: string[]): void => {
  if (!isObject(element) || !ELEMENTS.has(String(element.type))) {
    problems.push(`${at} is not a card element`)
    return
  }
  if (element.type === 'TextBlock' && (typeof element.text !== 'string' || element.text === ''))
    problems.push(`${at}.text must be a non-empty string`)
  if (element.type !== 'FactSet') return
  if (!Array.isArray(element.facts) || element.facts.length === 0) {
    problems.push(`${at}.facts must be a non-empty array`)
    return
  }
  for (const [k, fact] of element.facts.entries())
    if (!isObject(fact) || typeof fact.title !== 'string' || typeof fact.value !== 'string')
      problems.push(`${at}.facts[${k}] needs string title and value`)
}

const cardProblems = (attachment: unknown, at: string, problems: string[]): void => {
  if (!isObject(attachment)) {
    problems.push(`${at} must be an object`)
    return
  }
  if (attachment.contentType !== 'application/vnd.microsoft.card.adaptive')
    problems.push(`${at}.contentType must be application/vnd.microsoft.card.adaptive`)
  const card = attachment.content
  if (!isObject(card)) {
    problems.push(`${at}.content must be an Adaptive Card`)
    return
  }
  if (card.type !== 'AdaptiveCard') problems.push(`${at}.content.type must be AdaptiveCard`)
  if (typeof card.version !== 'string' || !/^1\.[0-6]$/.test(card.version))
    problems.push(`${at}.content.version must be 1.0 to 1.6`)
  if (!Array.isArray(card.body) || card.body.length === 0)
    problems.push(`${at}.content.body must be a non-empty array`)
  else
    for (const [j, element] of card.body.entries())
      elementProblems(element, `${at}.content.body[${j}]`, problems)
  if (card.actions === undefined) return
  if (!Array.isArray(card.actions)) {
    problems.push(`${at}.content.actions must be an array`)
    return
  }
  for (const [j, action] of card.actions.entries()) {
    const ac = `${at}.content.actions[${j}]`
    if (!isObject(action) || action.type !== 'Action.OpenUrl') {
      problems.push(`${ac} must be Action.OpenUrl`)
      continue
    }
    if (typeof action.url !== 'string' || !/^https?:\/\//.test(action.url))
      problems.push(`${ac}.url must be absolute`)
    if (typeof action.title !== 'string') problems.push(`${ac}.title must be a string`)
  }
}

/** Every way `message` breaks the Teams message and Adaptive Card shapes; empty when valid. */
export const teamsMessageProblems = (message: unknown): string[] => {
  const problems: string[] = []
  if (!isObject(message)) return ['the payload must be a JSON object']
  if (message.type !== 'message') problems.push('type must be "message"')
  if (!Array.isArray(message.attachments) || message.attachments.length === 0)
    return [...problems, 'attachments must hold at least one card']
  for (const [i, attachment] of message.attachments.entries())
    cardProblems(attachment, `attachments[${i}]`, problems)
  return problems
}

export interface TeamsStandIn extends HttpStandIn {
  /** A legacy Office 365 connector URL. */
  readonly connectorUrl: string
  /** A Workflows trigger URL (its `sig` is the credential). */
  readonly workflowUrl: string
  readonly cards: Record<string, unknown>[]
  readonly problems: string[]
}

export const startTeamsStandIn = async (): Promise<TeamsStandIn> => {
  const connectorPath =
    '/webhookb2/7f1c2e4a-0000-4000-8000-000000000001@tenant/IncomingWebhook/9d8e7f6a5b4c/owner'
  const workflowPath = '/workflows/3f2e1d0c9b8a/triggers/manual/paths/invoke'
  const sig = 'sigSecretQ2hlY2tUaGlzU2lnbmF0dXJl'
  const cards: Record<string, unknown>[] = []
  const problems: string[] = []
  const handle = (request: StandInRequest) => {
    const workflow = request.path === workflowPath
    if (!workflow && request.path !== connectorPath) return { status: 404, body: '' }
    if (workflow && request.query.get('sig') !== sig)
      return {
        status: 401,
        body: { error: { code: 'DirectApiAuthorizationRequired', message: 'missing or bad sig' } },
      }
    if (request.method !== 'POST') return { status: 405, body: '' }
    const found =
      mediaType(request.headers) !== 'application/json'
        ? ['content-type must be application/json']
        : (() => {
            const parsed = parseJson(request.body)
            return parsed.ok ? teamsMessageProblems(parsed.value) : [`not JSON: ${parsed.error}`]
          })()
    if (found.length > 0) {
      problems.push(...found)
      return workflow
        ? { status: 400, body: { error: { code: 'InvalidRequestContent', message: found.join('; ') } } }
        : { status: 400, body: 'Bad payload received by generic incoming webhook.' }
    }
    cards.push(JSON.parse(request.body) as Record<string, unknown>)
    return workflow ? { status: 202 } : { status: 200, body: '1' }
  }
  const standIn = await startHttpStandIn(handle)
  return {
    ...standIn,
    connectorUrl: standIn.url(connectorPath),
    workflowUrl: standIn.url(
      `${workflowPath}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=${sig}`,
    ),
    cards,
    problems,
  }
}
