import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'

/** One message the server accepted, with its session's facts. */
export interface ReceivedMail {
  readonly from: string
  readonly to: readonly string[]
  readonly raw: string
  /** Who authenticated, or undefined. */
  readonly user: string | undefined
  /** Whether the session was encrypted (TLS from the start, or after STARTTLS). */
  readonly secure: boolean
  readonly mail: ParsedMail
}

export interface SmtpReceiverOptions {
  /** TLS from the first byte (port 465 style). */
  readonly secure?: boolean
  /** A certificate for TLS and STARTTLS; without it, STARTTLS is not offered. */
  readonly tls?: { readonly key: string; readonly cert: string }
  /** The one account that may authenticate; without it, AUTH is not offered. */
  readonly user?: { readonly username: string; readonly password: string }
  /** A reply for the next messages' DATA: e.g. 451 (try later) or 550 (refused). */
  readonly rejectData?: { readonly code: number; readonly message: string }
  /** A refused login's reply quotes the password it got, as a careless server might. */
  readonly echoRefusedPassword?: boolean
}

export interface SmtpReceiver {
  readonly port: number
  readonly received: ReceivedMail[]
  /** AUTH attempts, accepted or not (username only). */
  readonly authAttempts: string[]
  /** Connection errors the server saw (a client giving up on a certificate it does not trust). */
  readonly errors: string[]
  /** Makes the next DATA commands fail with `code` (`times` of them). */
  readonly rejectNext: (code: number, message: string, times?: number) => void
  readonly close: () => Promise<void>
}

/**
 * A real SMTP server (the `smtp-server` package) on 127.0.0.1 that keeps what it receives,
 * with the TLS mode and authentication the test asks for.
 */
export const startSmtpReceiver = async (options: SmtpReceiverOptions = {}): Promise<SmtpReceiver> => {
  const received: ReceivedMail[] = []
  const authAttempts: string[] = []
  const rejections: { code: number; message: string }[] = []
  const server = new SMTPServer({
    secure: options.secure ?? false,
    ...(options.tls === undefined
      ? { hideSTARTTLS: true }
      : { key: options.tls.key, cert: options.tls.cert }),
    disabledCommands: [
      ...(options.tls === undefined ? ['STARTTLS'] : []),
      ...(options.user === undefined ? ['AUTH'] : []),
    ],
    authOptional: options.user === undefined,
    // AUTH over plain text only when the test asked for a server without TLS.
    allowInsecureAuth: options.tls === undefined,
    logger: false,
    onAuth: (auth, _session, callback) => {
      authAttempts.push(auth.username ?? '')
      if (auth.username === options.user?.username && auth.password === options.user?.password)
        callback(null, { user: auth.username })
      else
        callback(
          Object.assign(
            new Error(
              `Invalid username or password${options.echoRefusedPassword === true ? ` ${auth.password}` : ''}`,
            ),
            { responseCode: 535 },
          ),
        )
    },
    onData: (stream, session, callback) => {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        const rejection = rejections.shift()
        if (rejection !== undefined) {
          callback(Object.assign(new Error(rejection.message), { responseCode: rejection.code }))
          return
        }
        const raw = Buffer.concat(chunks).toString('utf8')
        received.push({
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          user: typeof session.user === 'string' ? session.user : undefined,
          secure: session.secure,
          mail: parseMail(raw),
        })
        callback(null, 'Queued as herald-test')
      })
    },
  })
  const errors: string[] = []
  // A client that refuses the certificate hangs up mid-handshake; the server reports it as an error event.
  server.on('error', (error: Error) => errors.push(error.message))
  if (options.rejectData !== undefined) rejections.push(options.rejectData)
  server.listen(0, '127.0.0.1')
  await once(server.server, 'listening')
  const { port } = server.server.address() as AddressInfo
  return {
    port,
    received,
    authAttempts,
    errors,
    rejectNext: (code, message, times = 1) => {
      for (let i = 0; i < times; i++) rejections.push({ code, message })
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

// --- A small MIME reader, independent of nodemailer, for what nodemailer writes ---------

export interface ParsedMail {
  /** Header values by lower-case name, unfolded and decoded. */
  readonly headers: ReadonlyMap<string, string>
  readonly subject: string
  readonly text: string | undefined
  readonly html: string | undefined
}

const decodeQuotedPrintable = (input: string): string => {
  const bytes: number[] = []
  const soft = input.replace(/=\r?\n/g, '')
  for (let i = 0; i < soft.length; i++) {
    const char = soft[i]
    const hex = soft.slice(i + 1, i + 3)
    if (char === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16))
      i += 2
    } else bytes.push(...Buffer.from(char ?? '', 'utf8'))
  }
  return Buffer.from(bytes).toString('utf8')
}

/** RFC 2047 encoded words (`=?UTF-8?Q?…?=`, `=?UTF-8?B?…?=`). */
const decodeWords = (value: string): string =>
  value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_, _charset: string, encoding: string, text: string) =>
      encoding.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : decodeQuotedPrintable(text.replace(/_/g, ' ')),
    )

const splitHead = (raw: string): { head: Map<string, string>; body: string } => {
  const at = raw.indexOf('\r\n\r\n')
  const headText = at === -1 ? raw : raw.slice(0, at)
  const body = at === -1 ? '' : raw.slice(at + 4)
  const head = new Map<string, string>()
  for (const line of headText.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon > 0)
      head.set(line.slice(0, colon).trim().toLowerCase(), decodeWords(line.slice(colon + 1).trim()))
  }
  return { head, body }
}

const decodeBody = (head: ReadonlyMap<string, string>, body: string): string => {
  const encoding = (head.get('content-transfer-encoding') ?? '7bit').toLowerCase()
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body)
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
  return body
}

const collectParts = (
  head: ReadonlyMap<string, string>,
  body: string,
  into: { text?: string; html?: string },
) => {
  const type = head.get('content-type') ?? 'text/plain'
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1]
  if (type.toLowerCase().startsWith('multipart/') && boundary !== undefined) {
    const sections = body.split(`--${boundary}`).slice(1)
    for (const section of sections) {
      if (section.startsWith('--')) break
      const part = splitHead(section.replace(/^\r\n/, ''))
      collectParts(part.head, part.body, into)
    }
    return
  }
  // Mail travels with CRLF line ends; readers see lines.
  const decoded = decodeBody(head, body).replace(/\r\n/g, '\n').replace(/\n$/, '')
  if (type.toLowerCase().startsWith('text/html')) into.html ??= decoded
  else if (type.toLowerCase().startsWith('text/plain')) into.text ??= decoded
}

export const parseMail = (raw: string): ParsedMail => {
  const { head, body } = splitHead(raw)
  const parts: { text?: string; html?: string } = {}
  collectParts(head, body, parts)
  return { headers: head, subject: head.get('subject') ?? '', text: parts.text, html: parts.html }
}
