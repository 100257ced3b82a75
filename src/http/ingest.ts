import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import {
  type FieldIssue,
  ForbiddenError,
  HeraldError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../errors/index.ts'
import { encodeLogEvent, heraldClaims } from '../events/index.ts'
import {
  BATCH_MEDIA_TYPE as BATCH,
  dataFromBody,
  decodeEvent,
  decodeEventBatch,
  eventFromBinary,
  HTTP_HEADER_PREFIX,
  type IngressEvent,
  mediaType,
  prefixedAttributes,
  STRUCTURED_MEDIA_TYPE as STRUCTURED,
} from '../ingress/index.ts'
import type { Metrics } from '../observability/index.ts'
import type { EventLog, OutgoingMessage } from '../ports/event-log.ts'
import { authorize } from './authorize.ts'
import { utf8Body } from './body.ts'
import type { AppEnv } from './env.ts'
import { noQueryParameters } from './query.ts'

export interface IngestOptions {
  readonly log: EventLog
  readonly topic: string
  readonly metrics: Metrics
  /** Largest request body accepted, in bytes. */
  readonly maxBodyBytes: number
  /**
   * Told each event as it is published, with the message that carries it: the decoder of this
   * process's engine-event consumers (`IngressDecoder.remember`), so they need not read again
   * what was just judged here.
   */
  readonly remember?: (message: OutgoingMessage, event: IngressEvent) => void
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new ValidationError('the body is not valid JSON', [
      { path: '(body)', message: (error as Error).message },
    ])
  }
}

/**
 * The CloudEvents HTTP binding percent-encodes attribute values in `ce-` headers (a space, `"`,
 * `%` and anything outside printable ASCII), so they are decoded back; a value whose
 * percent-encoding is broken is refused, naming its header.
 */
const percentDecoded = (attributes: Record<string, string>): Record<string, string> => {
  const decoded: Record<string, string> = {}
  const issues: FieldIssue[] = []
  for (const [name, value] of Object.entries(attributes)) {
    if (!value.includes('%')) {
      decoded[name] = value
      continue
    }
    try {
      decoded[name] = decodeURIComponent(value)
    } catch {
      issues.push({ path: `${HTTP_HEADER_PREFIX}${name}`, message: 'is not valid percent-encoded UTF-8' })
    }
  }
  if (issues.length > 0) throw new ValidationError('the request holds invalid events', issues)
  return decoded
}

/**
 * Where a binary-mode request carries what an issue names: an attribute in its `ce-` header,
 * `datacontenttype` in `content-type`, and `data` in the body, so `data.digest` is
 * `(body).digest`.
 */
const binaryModePath = (path: string): string => {
  const end = path.search(/[.[]/)
  const attribute = end < 0 ? path : path.slice(0, end)
  const rest = end < 0 ? '' : path.slice(end)
  if (attribute === 'data') return `(body)${rest}`
  if (attribute === 'datacontenttype') return `content-type${rest}`
  return `${HTTP_HEADER_PREFIX}${attribute}${rest}`
}

const inBinaryMode = (issues: readonly FieldIssue[]): FieldIssue[] =>
  issues.map((issue) => ({ ...issue, path: binaryModePath(issue.path) }))

/**
 * CloudEvents' HTTP binary mode: attributes in `ce-*` headers, the body is `data` — read by the
 * same rules as Kafka's binary mode, so both ways in accept the same events.
 */
const fromBinaryMode = (headers: Headers, contentType: string, body: string): unknown => {
  const data = dataFromBody(contentType, body)
  if (!data.ok) {
    // Binary data would need `data_base64`, which Herald does not take: the media type is refused.
    if (data.code === 'content_type_unsupported')
      throw new UnsupportedMediaTypeError(contentType, ['JSON', 'text/*'])
    throw new ValidationError('the body cannot be the event’s data', inBinaryMode(data.issues))
  }
  return eventFromBinary(
    percentDecoded(prefixedAttributes(headers, HTTP_HEADER_PREFIX)),
    contentType,
    data.data,
  )
}

/**
 * `POST /v1/events`: the CloudEvents HTTP binding. Events are judged by the same contract as
 * on Kafka (the event catalog: envelope, then `data` by `type`). A request is validated whole
 * and appended in one publish, so a batch with one bad event writes nothing. A principal may publish only
 * its own account's events; an admin may publish any account's. No one may publish an event of
 * Herald's own types or sources (`heraldClaims`): Herald's own never come this way.
 */
export const createIngestRoutes = ({ log, topic, metrics, maxBodyBytes, remember }: IngestOptions) => {
  const app = new Hono<AppEnv>()
  app.post(
    '/',
    authorize('publishEvents'),
    noQueryParameters,
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: () => {
        throw new HeraldError('payload_too_large', `the body exceeds ${maxBodyBytes} bytes`)
      },
    }),
    async (c) => {
      const contentType = mediaType(c.req.header('content-type'))
      const body = utf8Body(await c.req.arrayBuffer())
      let decoded: ReturnType<typeof decodeEventBatch>
      // Where the request carries event `i`'s `path`: under its index in a batch, in a header
      // or the body in binary mode, as it is in one structured event.
      let where = (_i: number, path: string) => path
      if (contentType === STRUCTURED) {
        const one = decodeEvent(parseJson(body))
        decoded = one.ok ? { ok: true, value: [one.value] } : one
      } else if (contentType === BATCH) {
        decoded = decodeEventBatch(parseJson(body))
        where = (i, path) => `[${i}].${path}`
      } else if (c.req.header('ce-specversion') !== undefined) {
        const one = decodeEvent(fromBinaryMode(c.req.raw.headers, contentType, body))
        decoded = one.ok ? { ok: true, value: [one.value] } : { ok: false, issues: inBinaryMode(one.issues) }
        where = (_i, path) => binaryModePath(path)
      } else {
        throw new UnsupportedMediaTypeError(contentType, [
          STRUCTURED,
          BATCH,
          `binary mode with ${HTTP_HEADER_PREFIX}* headers`,
        ])
      }
      if (!decoded.ok) {
        metrics.eventsRejected.inc()
        throw new ValidationError('the request holds invalid events', decoded.issues)
      }
      const events: IngressEvent[] = decoded.value
      const principal = c.get('principal')
      if (principal.role !== 'admin') {
        const foreign = events.findIndex((e) => e.account !== principal.account)
        if (foreign >= 0) {
          // A permission, not a malformed event: 403, naming the event.
          throw new ForbiddenError('this token may publish events for its own account only', [
            {
              path: where(foreign, 'account'),
              message: `must be ${principal.account}`,
            },
          ])
        }
      }
      const claims = events.flatMap((event, i) =>
        heraldClaims(event).map((issue) => ({ ...issue, path: where(i, issue.path) })),
      )
      if (claims.length > 0)
        throw new ForbiddenError('only Herald emits events of its own types and sources', claims)
      if (events.length > 0) {
        // The contract refused anything nested too deep to write out (`MAX_EVENT_DEPTH`).
        const messages = events.map(encodeLogEvent)
        if (remember !== undefined)
          for (let i = 0; i < events.length; i++)
            remember(messages[i] as OutgoingMessage, events[i] as IngressEvent)
        await log.publish(topic, messages)
      }
      for (const event of events) metrics.countIngested(event.account)
      return c.json({ accepted: events.length, ids: events.map((e) => e.id) }, 202)
    },
  )
  return app
}
