import { isIP } from 'node:net'
import { getCACertificates } from 'node:tls'
import nodemailer from 'nodemailer'
import { ValidationError } from '../../../src/errors/index.ts'
import { isHostOrAddress } from '../../../src/notifications/index.ts'
import { OutboundTimeoutError } from '../../../src/outbound/index.ts'
import type { DeliveryChannel } from './channel.ts'
import { abortError, type Failure, failureFromError, heraldCause } from './classify.ts'
import { type ChannelOptions, fallbackNotes, oneLine, resultBuilder, sliceWhole } from './common.ts'
import { type EmailConfiguration, secretValues } from './configuration.ts'
import { messageScope } from './message.ts'
import { renderField } from './templates.ts'

export interface EmailChannelOptions extends ChannelOptions {
  /**
   * Extra trusted CA certificates (PEM) for SMTP servers behind an internal CA, added to
   * Node's store. HTTP channels use the guard's own `ca`.
   */
  readonly ca?: string | readonly string[]
}

/** Characters of a subject: mail clients show about a line of it, and RFC 5322 lines fold at 998. */
const MAX_SUBJECT = 250

/**
 * Characters of an event's text in a header of Herald's own (its type): nodemailer folds a
 * header only at a space, and a line of more than 998 characters breaks RFC 5322; mail filters
 * match on the type's start.
 */
const MAX_HEADER_TEXT = 200

/**
 * An event's text as a header's value: one line, cut to `MAX_HEADER_TEXT` ending in ASCII `...`
 * (a `…` would have the whole value MIME-encoded, which filters do not match).
 */
const headerText = (text: string): string => {
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length <= MAX_HEADER_TEXT ? line : `${sliceWhole(line, MAX_HEADER_TEXT - 3)}...`
}

const checkServer = ({ host, port }: EmailConfiguration): void => {
  const issues = []
  if (!isHostOrAddress(host))
    issues.push({
      path: 'smtp_host',
      message: 'must be a host name or an IP address (an IPv6 address without brackets)',
    })
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    issues.push({ path: 'smtp_port', message: 'must be a port number from 1 to 65535' })
  if (issues.length > 0) throw new ValidationError('invalid SMTP server', issues)
}

const TLS_CODE =
  /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|HOSTNAME_MISMATCH|ERR_TLS_CERT)/

/** nodemailer's error, by the fields it documents (`code`, `responseCode`, `command`, `response`). */
interface SmtpError {
  readonly code?: unknown
  readonly originalCode?: unknown
  readonly responseCode?: unknown
  readonly command?: unknown
  readonly response?: unknown
}

/**
 * An SMTP failure by its reply code and nodemailer's error code: a 4xx reply is transient by
 * SMTP's own definition, a 5xx permanent; refused authentication and certificates that do not
 * verify fail the same way next time; connection trouble may pass.
 */
export const smtpFailure = (error: unknown): Failure => {
  if (heraldCause(error) !== undefined) return failureFromError(error)
  const e = (typeof error === 'object' && error !== null ? error : {}) as SmtpError
  const code = typeof e.code === 'string' ? e.code : undefined
  const original = typeof e.originalCode === 'string' ? e.originalCode : undefined
  const reply = typeof e.responseCode === 'number' ? e.responseCode : null
  const response = typeof e.response === 'string' ? e.response : ''
  const command = typeof e.command === 'string' ? ` to ${e.command.split(' ', 1)[0]}` : ''
  if ((original !== undefined && TLS_CODE.test(original)) || code === 'ETLS')
    return {
      kind: 'permanent',
      code: 'tls',
      status: null,
      error: `the SMTP server's TLS could not be verified or negotiated (${original ?? code})`,
    }
  if (reply !== null) {
    const transient = reply >= 400 && reply < 500
    return {
      kind: transient ? 'retriable' : 'permanent',
      code: code === 'EAUTH' ? 'smtp_auth' : 'smtp_rejected',
      status: reply,
      error: `the SMTP server answered${command}: ${response || reply}`,
    }
  }
  switch (code) {
    case 'EAUTH':
      return {
        kind: 'permanent',
        code: 'smtp_auth',
        status: null,
        error: 'the SMTP server refused to authenticate',
      }
    case 'ETIMEDOUT':
      return {
        kind: 'retriable',
        code: 'timeout',
        status: null,
        error: 'the SMTP server did not answer in time',
      }
    case 'ECONNECTION':
    case 'ESOCKET':
    case 'EDNS':
    case 'EPROTOCOL':
      return {
        kind: 'retriable',
        code: 'network',
        status: null,
        error: `the connection to the SMTP server failed (${original ?? code})`,
      }
    case 'EENVELOPE':
    case 'EMESSAGE':
      return {
        kind: 'permanent',
        code: 'configuration',
        status: null,
        error: 'the message or its addresses were refused',
      }
    default:
      return failureFromError(error)
  }
}

/** nodemailer's answer to a message it sent, by the fields it documents. */
interface SentInfo {
  readonly accepted?: unknown
  readonly rejected?: unknown
  readonly rejectedErrors?: unknown
}

/**
 * The server took the message for some recipients and refused others at RCPT TO: a failure the
 * delivery log shows with who was refused and why, not a success. Permanent even when a refusal
 * was a 4xx: a retry would send the message again to everyone who already has it.
 */
export const refusedRecipients = (info: SentInfo): Failure | undefined => {
  const rejected = Array.isArray(info.rejected) ? info.rejected.map(String) : []
  if (rejected.length === 0) return undefined
  const accepted = Array.isArray(info.accepted) ? info.accepted.length : 0
  const errors = (Array.isArray(info.rejectedErrors) ? info.rejectedErrors : []) as SmtpError[]
  const replies = rejected.map((recipient, i) => {
    const e = errors[i]
    const reply = typeof e?.response === 'string' ? e.response : undefined
    return reply === undefined ? recipient : `${recipient} (${reply})`
  })
  const first = errors.find((e) => typeof e.responseCode === 'number')?.responseCode
  return {
    kind: 'permanent',
    code: 'smtp_recipients_refused',
    status: typeof first === 'number' ? first : null,
    error:
      `the SMTP server refused ${rejected.length} of ${rejected.length + accepted} recipients, ` +
      `the others were sent the message: ${replies.join('; ')}`,
  }
}

const domainOf = (address: string): string => {
  const match = /@([A-Za-z0-9.-]+)>?\s*$/.exec(address)
  return match?.[1] ?? 'herald.invalid'
}

const trustStore = (ca: EmailChannelOptions['ca']): string[] | undefined => {
  const extra = ca === undefined ? [] : typeof ca === 'string' ? [ca] : [...ca]
  return extra.length === 0 ? undefined : [...getCACertificates('default'), ...extra]
}

/**
 * Email through SMTP with nodemailer. The server's host is checked by the SSRF guard like any
 * URL, and nodemailer connects to the checked address (so a second DNS answer cannot send it
 * elsewhere) while TLS verifies the certificate against the host name. TLS modes: `tls` from
 * the first byte, `starttls` required (never falls back to plain text), `none`.
 *
 * @example
 * await createEmailChannel({ guard }).send(command, { endpoint: 'email', host: 'smtp.example.com', port: 587, tls: 'starttls', … }, context)
 */
export const createEmailChannel = (options: EmailChannelOptions): DeliveryChannel<EmailConfiguration> => {
  const clock = options.clock ?? Date.now
  const ca = trustStore(options.ca)
  return {
    endpoint: 'email',
    send: async (delivery, configuration, context) => {
      const result = resultBuilder(secretValues(configuration), clock)
      let transport: ReturnType<typeof nodemailer.createTransport> | undefined
      try {
        checkServer(configuration)
        const { host, port } = configuration
        const target = await options.guard.checkSmtpHost(host, port)
        const servername = isIP(target.hostname) === 0 ? { servername: target.hostname } : {}

        const scope = messageScope(delivery, {
          uiUrl: context.uiUrl,
          includePayload: configuration.includePayload === true,
        })
        const subject = await renderField('email', 'subject', configuration.templates, scope)
        // The bodies' title is the subject as sent: one line, bounded like the scope's texts.
        const subjectLine = oneLine(subject.text, MAX_SUBJECT)
        const withTitle = { ...scope, title: subjectLine }
        const text = await renderField('email', 'text', configuration.templates, withTitle)
        const html = await renderField('email', 'html', configuration.templates, withTitle)
        const notes = fallbackNotes(
          options.logger,
          'email',
          { configurationId: configuration.id, delivery },
          [subject, text, html],
        )

        transport = nodemailer.createTransport({
          host: target.address,
          port,
          secure: configuration.tls === 'tls',
          requireTLS: configuration.tls === 'starttls',
          ignoreTLS: configuration.tls === 'none',
          ...servername,
          ...(configuration.username === undefined
            ? {}
            : { auth: { user: configuration.username, pass: configuration.password ?? '' } }),
          tls: {
            ...servername,
            rejectUnauthorized: configuration.verifyTls ?? true,
            minVersion: 'TLSv1.2',
            ...(ca === undefined ? {} : { ca }),
          },
          connectionTimeout: context.timeoutMs,
          greetingTimeout: context.timeoutMs,
          socketTimeout: context.timeoutMs,
          logger: false,
          debug: false,
          // Nothing in a message may make nodemailer read a file or fetch a URL.
          disableFileAccess: true,
          disableUrlAccess: true,
        })

        const sending = transport.sendMail({
          from: configuration.from,
          to: [...configuration.to],
          subject: subjectLine,
          text: text.text,
          html: html.text,
          date: new Date(clock()),
          messageId: `<${delivery.deliveryId}@${domainOf(configuration.from)}>`,
          headers: {
            'Auto-Submitted': 'auto-generated',
            'X-Herald-Delivery-Id': delivery.deliveryId,
            'X-Herald-Event-Id': delivery.event.id,
            'X-Herald-Event-Type': headerText(delivery.event.type),
            ...(delivery.digest === undefined
              ? {}
              : { 'X-Herald-Digest-Window': `${delivery.digest.windowStart}/${delivery.digest.windowEnd}` }),
          },
        })
        const info = await withinDeadline(sending, target.hostname, context.timeoutMs, context.signal, () =>
          transport?.close(),
        )
        const refused = refusedRecipients(info)
        if (refused !== undefined) return result.fail(refused)
        const response = typeof info.response === 'string' ? info.response : '250'
        return result.ok(Number(/^\d{3}/.exec(response)?.[0] ?? 250), response, { notes })
      } catch (error) {
        return result.fail(smtpFailure(error))
      } finally {
        transport?.close()
      }
    },
  }
}

/** nodemailer's timeouts are per phase; this bounds the whole session, and honours the caller's abort. */
const withinDeadline = async <T>(
  work: Promise<T>,
  host: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  stop: () => void,
): Promise<T> => {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      stop()
      reject(new OutboundTimeoutError(host, timeoutMs))
    }, timeoutMs)
    if (signal !== undefined) {
      onAbort = () => {
        stop()
        reject(abortError(signal.reason))
      }
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    }
  })
  try {
    return await Promise.race([work, expired])
  } finally {
    clearTimeout(timer)
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort)
    // The losing promise must not surface as an unhandled rejection.
    work.catch(() => {})
  }
}
