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
 * Microsoft Teams' webhooks, as documented (learn.microsoft.com: "Create an Incoming Webhook",
 * "Send Adaptive Cards with Workflows"; adaptivecards.io schema): a JSON POST of
 * `{type: "message", attachments: [{contentType: "application/vnd.microsoft.card.adaptive",
 * content: <AdaptiveCard>}]}`. The legacy Office 365 connector (`/webhookb2/…`) answers
 * `200 1`; a Workflows trigger (`/workflows/…/triggers/manual/paths/invoke?…&sig=…`) answers
 * `202` with no body and refuses a request without its `sig`.
 *
 * The legacy connector relays a card to Teams and reports Teams' refusal inside its own `200`,
 * as text naming Teams' status: `Webhook message delivery failed with error: Microsoft Teams
 * endpoint returned HTTP error 413 with ContextId …`. It refuses that way a message over Teams'
 * 28 KB limit (413), and Teams throttling it (429).
 */

/** Teams' limit on one message, in bytes of its JSON. */
const MAX_MESSAGE_BYTES = 28 * 1024

/**
 * The legacy connector's answer when Teams refused the card with `status`: a 200, whose text is
 * the only sign of it.
 *
 * @example
 * teams.failNext(connectorRefusal(429))
 */
export const connectorRefusal = (status: number): StandInReply => ({
  status: 200,
  body: `Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error ${status} with ContextId tcid=0,server=msgapi-production-eus-azsc2-4-170,cv=deMpXYH2B0ChJ3uU4IjJQA.0.`,
})

const ELEMENTS = new Set([
  'TextBlock',
  'FactSet',
  'Container',
  'ColumnSet',
  'Image',
  'RichTextBlock',
  'ActionSet',
])

// The schema's enumerations (adaptivecards.io/explorer) for what Herald's cards set.
const SPACINGS = new Set(['None', 'Small', 'Default', 'Medium', 'Large', 'ExtraLarge', 'Padding'])
const TEXT_STYLES: Readonly<Record<string, ReadonlySet<string>>> = {
  size: new Set(['Default', 'Small', 'Medium', 'Large', 'ExtraLarge']),
  weight: new Set(['Default', 'Lighter', 'Bolder']),
  color: new Set(['Default', 'Dark', 'Light', 'Accent', 'Good', 'Warning', 'Attention']),
}

/** A card's version as a number (1.4 → 1.4), for elements introduced in a later one. */
const versionOf = (version: unknown): number => (typeof version === 'string' ? Number(version) : 0)

/** RichTextBlock's inlines: TextRuns (or their shorthand, a string), each with text. */
const inlineProblems = (inlines: unknown, at: string, problems: string[]): void => {
  if (!Array.isArray(inlines) || inlines.length === 0) {
    problems.push(`${at}.inlines must be a non-empty array`)
    return
  }
  for (const [k, inline] of inlines.entries()) {
    if (typeof inline === 'string') continue
    if (!isObject(inline) || inline.type !== 'TextRun') {
      problems.push(`${at}.inlines[${k}] must be a TextRun`)
      continue
    }
    if (typeof inline.text !== 'string' || inline.text === '')
      problems.push(`${at}.inlines[${k}].text must be a non-empty string`)
    for (const [name, allowed] of Object.entries(TEXT_STYLES))
      if (inline[name] !== undefined && !allowed.has(String(inline[name])))
        problems.push(`${at}.inlines[${k}].${name} must be one of ${[...allowed].join(', ')}`)
  }
}

const elementProblems = (element: unknown, at: string, version: number, problems: string[]): void => {
  if (!isObject(element) || !ELEMENTS.has(String(element.type))) {
    problems.push(`${at} is not a card element`)
    return
  }
  if (element.spacing !== undefined && !SPACINGS.has(String(element.spacing)))
    problems.push(`${at}.spacing must be one of ${[...SPACINGS].join(', ')}`)
  switch (element.type) {
    case 'TextBlock':
      if (typeof element.text !== 'string' || element.text === '')
        problems.push(`${at}.text must be a non-empty string`)
      return
    case 'RichTextBlock':
      if (version < 1.2) problems.push(`${at}: RichTextBlock needs card version 1.2 or later`)
      inlineProblems(element.inlines, at, problems)
      return
    case 'Container':
      if (!Array.isArray(element.items) || element.items.length === 0) {
        problems.push(`${at}.items must be a non-empty array`)
        return
      }
      for (const [k, item] of element.items.entries())
        elementProblems(item, `${at}.items[${k}]`, version, problems)
      return
    case 'FactSet':
      if (!Array.isArray(element.facts) || element.facts.length === 0) {
        problems.push(`${at}.facts must be a non-empty array`)
        return
      }
      for (const [k, fact] of element.facts.entries())
        if (!isObject(fact) || typeof fact.title !== 'string' || typeof fact.value !== 'string')
          problems.push(`${at}.facts[${k}] needs string title and value`)
  }
}

/**
 * Every text of a card Teams renders as Markdown — a TextBlock's text, a fact's title and
 * value (learn.microsoft.com, "Text formatting in cards") — and every text it shows as
 * written: a TextRun's.
 */
export const cardTexts = (card: unknown): { markdown: string[]; plain: string[] } => {
  const texts = { markdown: [] as string[], plain: [] as string[] }
  const visit = (element: unknown): void => {
    if (!isObject(element)) return
    if (element.type === 'TextBlock' && typeof element.text === 'string') texts.markdown.push(element.text)
    if (element.type === 'FactSet' && Array.isArray(element.facts))
      for (const fact of element.facts)
        if (isObject(fact)) texts.markdown.push(String(fact.title), String(fact.value))
    if (element.type === 'RichTextBlock' && Array.isArray(element.inlines))
      for (const inline of element.inlines)
        texts.plain.push(typeof inline === 'string' ? inline : String((inline as { text?: unknown }).text))
    if (Array.isArray(element.items)) for (const item of element.items) visit(item)
  }
  if (isObject(card) && Array.isArray(card.body)) for (const element of card.body) visit(element)
  return texts
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
      elementProblems(element, `${at}.content.body[${j}]`, versionOf(card.version), problems)
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
    if (!workflow && Buffer.byteLength(request.body) > MAX_MESSAGE_BYTES) return connectorRefusal(413)
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
