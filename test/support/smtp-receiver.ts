import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { type ParsedMail, simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'

/** One message the server accepted, with its session's facts. */
export interface ReceivedMail {
  readonly from: string
  readonly to: readonly string[]
  /** The DATA exactly as the server received it. */
  readonly raw: Buffer
  /** Who authenticated, or undefined. */
  readonly user: string | undefined
  /** Whether the session was encrypted (TLS from the start, or after STARTTLS). */
  readonly secure: boolean
  /** `raw` read back by `mailparser`, a MIME parser independent of the nodemailer that wrote it. */
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
  /** Recipients refused at RCPT TO with 550, as a server refuses a mailbox it does not have. */
  readonly refuseRecipients?: readonly string[]
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
    onRcptTo: (address, _session, callback) => {
      if (options.refuseRecipients?.includes(address.address) === true)
        callback(
          Object.assign(new Error(`5.1.1 <${address.address}>: no such mailbox`), { responseCode: 550 }),
        )
      else callback()
    },
    onData: (stream, session, callback) => {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', async () => {
        const rejection = rejections.shift()
        if (rejection !== undefined) {
          callback(Object.assign(new Error(rejection.message), { responseCode: rejection.code }))
          return
        }
        const raw = Buffer.concat(chunks)
        // Parsed before the reply, so a message is readable as soon as the client's send resolves;
        // one the parser cannot read is refused, and the send that wrote it fails.
        let mail: ParsedMail
        try {
          mail = await simpleParser(raw)
        } catch (error) {
          callback(Object.assign(new Error(`unparseable message: ${String(error)}`), { responseCode: 554 }))
          return
        }
        received.push({
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          user: typeof session.user === 'string' ? session.user : undefined,
          secure: session.secure,
          mail,
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
