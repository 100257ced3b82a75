import {
  type HttpStandIn,
  isObject,
  mediaType,
  parseJson,
  type StandInRequest,
  startHttpStandIn,
} from './http-stand-in.ts'

/**
 * Slack's incoming webhooks, as documented (docs.slack.dev: "Sending messages using incoming
 * webhooks", the Block Kit reference): `POST /services/T…/B…/<token>` with a JSON message that
 * has `text` and/or `blocks`; `200 ok` as text; errors as a plain-text code with a status:
 * `invalid_payload`/`invalid_blocks`/`no_text` 400, `invalid_token` 403, `no_service` 404
 * (a removed webhook), `channel_is_archived` 410.
 */

// Block Kit's limits, per the reference of each block and composition object.
const LIMITS = {
  blocks: 50,
  header: 150,
  sectionText: 3000,
  fields: 10,
  field: 2000,
  buttonText: 75,
  url: 3000,
  context: 10,
}

const textObject = (
  value: unknown,
  path: string,
  max: number,
  types: readonly string[],
  problems: string[],
) => {
  if (!isObject(value)) {
    problems.push(`${path} must be a text object`)
    return
  }
  if (!types.includes(String(value.type))) problems.push(`${path}.type must be one of ${types.join(', ')}`)
  if (typeof value.text !== 'string' || value.text.length === 0)
    problems.push(`${path}.text must be a non-empty string`)
  else if (value.text.length > max) problems.push(`${path}.text is longer than ${max}`)
}

const blockProblems = (block: unknown, at: string, problems: string[]): void => {
  if (!isObject(block)) {
    problems.push(`${at} must be an object`)
    return
  }
  switch (block.type) {
    case 'header':
      textObject(block.text, `${at}.text`, LIMITS.header, ['plain_text'], problems)
      return
    case 'section':
      if (block.text === undefined && block.fields === undefined) problems.push(`${at} needs text or fields`)
      if (block.text !== undefined)
        textObject(block.text, `${at}.text`, LIMITS.sectionText, ['mrkdwn', 'plain_text'], problems)
      if (block.fields === undefined) return
      if (!Array.isArray(block.fields) || block.fields.length === 0 || block.fields.length > LIMITS.fields) {
        problems.push(`${at}.fields must hold 1 to ${LIMITS.fields} text objects`)
        return
      }
      for (const [j, field] of block.fields.entries())
        textObject(field, `${at}.fields[${j}]`, LIMITS.field, ['mrkdwn', 'plain_text'], problems)
      return
    case 'actions':
      if (!Array.isArray(block.elements) || block.elements.length === 0 || block.elements.length > 25) {
        problems.push(`${at}.elements must hold 1 to 25 elements`)
        return
      }
      for (const [j, element] of block.elements.entries()) {
        const el = `${at}.elements[${j}]`
        if (!isObject(element) || element.type !== 'button') {
          problems.push(`${el} must be a button`)
          continue
        }
        textObject(element.text, `${el}.text`, LIMITS.buttonText, ['plain_text'], problems)
        if (element.url !== undefined && (typeof element.url !== 'string' || element.url.length > LIMITS.url))
          problems.push(`${el}.url must be a string of at most ${LIMITS.url}`)
        if (typeof element.url === 'string' && !/^https?:\/\//.test(element.url))
          problems.push(`${el}.url must be absolute`)
      }
      return
    case 'context':
      if (
        !Array.isArray(block.elements) ||
        block.elements.length === 0 ||
        block.elements.length > LIMITS.context
      ) {
        problems.push(`${at}.elements must hold 1 to ${LIMITS.context} elements`)
        return
      }
      for (const [j, element] of block.elements.entries())
        textObject(element, `${at}.elements[${j}]`, LIMITS.sectionText, ['mrkdwn', 'plain_text'], problems)
      return
    case 'divider':
      return
    default:
      problems.push(`${at}.type ${String(block.type)} is not a block this stand-in knows`)
  }
}

/** Every way `message` breaks Slack's message and Block Kit shapes; empty when it is valid. */
export const slackMessageProblems = (message: unknown): string[] => {
  const problems: string[] = []
  if (!isObject(message)) return ['the payload must be a JSON object']
  const hasText = typeof message.text === 'string' && message.text.trim() !== ''
  if (message.blocks === undefined && !hasText) problems.push('no_text: a message needs text or blocks')
  if (message.blocks === undefined) return problems
  if (!Array.isArray(message.blocks)) return ['blocks must be an array']
  if (message.blocks.length > LIMITS.blocks) problems.push(`more than ${LIMITS.blocks} blocks`)
  for (const [i, block] of message.blocks.entries()) blockProblems(block, `blocks[${i}]`, problems)
  return problems
}

export interface SlackStandIn extends HttpStandIn {
  /** A webhook URL Slack issued (credentials in its path). */
  readonly webhookUrl: string
  /** Messages Slack accepted, in order. */
  readonly messages: Record<string, unknown>[]
  /** Shape problems of refused requests: a test that sends valid messages expects none. */
  readonly problems: string[]
  /** Makes the webhook answer as Slack does after its channel was archived. */
  readonly archive: () => void
}

export const startSlackStandIn = async (): Promise<SlackStandIn> => {
  const hookPath = '/services/T0HERALD01/B0HERALD02/xoxSecretToken4f9c2a7e81b3d6'
  const messages: Record<string, unknown>[] = []
  const problems: string[] = []
  let archived = false
  const refuse = (status: number, code: string, found: string[] = []) => {
    problems.push(...(found.length === 0 ? [code] : found))
    return { status, body: code }
  }
  const handle = (request: StandInRequest) => {
    if (request.path !== hookPath) return { status: 404, body: 'no_service' }
    if (request.method !== 'POST') return refuse(405, 'invalid_method')
    if (archived) return { status: 410, body: 'channel_is_archived' }
    if (mediaType(request.headers) !== 'application/json')
      return refuse(400, 'invalid_payload', ['content-type must be application/json'])
    const parsed = parseJson(request.body)
    if (!parsed.ok) return refuse(400, 'invalid_payload', [`not JSON: ${parsed.error}`])
    const found = slackMessageProblems(parsed.value)
    if (found.length > 0)
      return refuse(400, found[0]?.startsWith('no_text') ? 'no_text' : 'invalid_blocks', found)
    messages.push(parsed.value as Record<string, unknown>)
    return { status: 200, headers: { 'content-type': 'text/html' }, body: 'ok' }
  }
  const standIn = await startHttpStandIn(handle)
  return {
    ...standIn,
    webhookUrl: standIn.url(hookPath),
    messages,
    problems,
    archive: () => {
      archived = true
    },
  }
}
