import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { AddressObject, ParsedMail } from 'mailparser'
import { createOutboundGuard, type Lookup } from '../../src/outbound/index.ts'
import { aDelivery, aPostureEvent } from '../../streams/delivery/channels/test-fixtures.ts'
import { createEmailChannel, type EmailConfiguration } from '../../streams/delivery/index.ts'
import { opensslMissing, selfSignedCertificate } from '../support/self-signed-cert.ts'
import { type SmtpReceiver, startSmtpReceiver } from '../support/smtp-receiver.ts'

const USER = { username: 'herald', password: 'smtp-Pa55word!' }

/** Resolves the test's host names to loopback, as a DNS server would. */
const lookup: Lookup = async (hostname) => {
  if (hostname === 'smtp.herald.test' || hostname === 'other.herald.test')
    return [{ address: '127.0.0.1', family: 4 }]
  throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
}

/** The addresses of a parsed From/To header, in order. */
const addresses = (field: AddressObject | AddressObject[] | undefined): string[] =>
  (Array.isArray(field) ? field : field === undefined ? [] : [field]).flatMap((object) =>
    object.value.map((entry) => entry.address ?? ''),
  )

/** Text parts end with the line break nodemailer writes; readers see the lines. */
const textOf = (mail: ParsedMail) => (mail.text ?? '').replace(/\n$/, '')
const htmlOf = (mail: ParsedMail) => (mail.html === false ? '' : mail.html.replace(/\n$/, ''))

const mailOf = (server: SmtpReceiver) => {
  const mail = server.received.at(-1)
  if (mail === undefined) assert.fail('the server received nothing')
  return mail
}

describe('email channel against a real SMTP server, plain SMTP', () => {
  let server: SmtpReceiver
  const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
  const channel = createEmailChannel({ guard })
  let configuration: EmailConfiguration
  const context = { uiUrl: 'https://herald.example.com', timeoutMs: 5_000 }

  before(async () => {
    server = await startSmtpReceiver({ user: USER })
    configuration = {
      endpoint: 'email',
      id: 'cfg-mail',
      account: 'acme',
      host: '127.0.0.1',
      port: server.port,
      from: 'Herald <herald@acme.example>',
      to: ['secops@acme.example', 'oncall@acme.example'],
      username: USER.username,
      password: USER.password,
      tls: 'none',
    }
  })
  after(async () => {
    guard.close()
    await server.close()
  })

  it("sends the seed's message: subject, text and HTML parts, authenticated", async () => {
    const delivery = aDelivery(aPostureEvent())
    const result = await channel.send(delivery, configuration, context)
    assert.equal(result.ok, true, JSON.stringify(result))
    assert.deepEqual(result.ok && [result.status, result.response], [250, '250 Queued as herald-test'])
    const received = mailOf(server)
    assert.equal(received.user, 'herald')
    assert.equal(received.from, 'herald@acme.example')
    assert.deepEqual(received.to, ['secops@acme.example', 'oncall@acme.example'])
    const { mail } = received
    assert.equal(mail.subject, 'Validation completed: my-test-validation-scan')
    assert.deepEqual(
      mail.from?.value.map(({ name, address }) => ({ name, address })),
      [{ name: 'Herald', address: 'herald@acme.example' }],
    )
    assert.deepEqual(addresses(mail.to), ['secops@acme.example', 'oncall@acme.example'])
    assert.match(
      textOf(mail),
      /^Scan completed: 180 passed, 12 failed\.\n\nLevel: {4}info\nResource: my-test-validation-scan\n/,
    )
    assert.match(textOf(mail), /View in Herald: https:\/\/herald\.example\.com\/events\/evt-posture-1/)
    assert.match(htmlOf(mail), /<h2>Validation completed: my-test-validation-scan<\/h2>/)
    assert.match(
      htmlOf(mail),
      /<a href="https:\/\/herald\.example\.com\/events\/evt-posture-1">View in Herald<\/a>/,
    )
    assert.doesNotMatch(textOf(mail), /Event payload/)
    assert.equal(mail.headers.get('x-herald-delivery-id'), delivery.deliveryId)
    assert.equal(mail.messageId, `<${delivery.deliveryId}@acme.example>`)
    assert.equal(mail.headers.get('auto-submitted'), 'auto-generated')
  })

  it('appends the full event only when the configuration asks, and links nowhere without ui_url', async () => {
    await channel.send(
      aDelivery(aPostureEvent()),
      { ...configuration, includePayload: true },
      { ...context, uiUrl: null },
    )
    const { mail } = mailOf(server)
    assert.match(textOf(mail), /Event payload:\n\{\n {2}"specversion": "1\.0",/)
    assert.match(htmlOf(mail), /<pre>\{\n {2}&quot;specversion&quot;/)
    assert.doesNotMatch(`${textOf(mail)}${htmlOf(mail)}`, /View in Herald|https?:\/\/herald/)
  })

  it('keeps every header line within 998 characters, an event type of 1,500 included', async () => {
    const type = `com.example.${'a'.repeat(1_500)}`
    const result = await channel.send(aDelivery(aPostureEvent({ type })), configuration, context)
    assert.equal(result.ok, true, JSON.stringify(result))
    const { raw, mail } = mailOf(server)
    const head = raw.toString('utf8').split('\r\n\r\n', 1)[0] ?? ''
    const longest = Math.max(...head.split('\r\n').map((line) => line.length))
    assert.ok(longest <= 998, `a header line of ${longest} characters`)
    const shown = String(mail.headers.get('x-herald-event-type'))
    assert.equal(shown, `${type.slice(0, 197)}...`)
  })

  it('renders the configuration templates', async () => {
    const templates = {
      subject: '[{{ level | upcase }}] {{ resource }}',
      text: 'Seen: {{ summary }}',
      html: '<p>{{ summary }}</p>',
    }
    await channel.send(aDelivery(aPostureEvent()), { ...configuration, templates }, context)
    const { mail } = mailOf(server)
    assert.equal(mail.subject, '[INFO] my-test-validation-scan')
    assert.equal(textOf(mail), 'Seen: Scan completed: 180 passed, 12 failed.')
    assert.equal(htmlOf(mail), '<p>Scan completed: 180 passed, 12 failed.</p>')
  })

  it('a refused login is permanent; a 4xx reply retriable; a 5xx permanent', async () => {
    const login = await channel.send(
      aDelivery(aPostureEvent()),
      { ...configuration, password: 'wrong' },
      context,
    )
    assert.deepEqual(login.ok ? login : [login.kind, login.code, login.status], [
      'permanent',
      'smtp_auth',
      535,
    ])
    server.rejectNext(451, 'Try again later')
    const later = await channel.send(aDelivery(aPostureEvent()), configuration, context)
    assert.deepEqual(later.ok ? later : [later.kind, later.code, later.status, later.error], [
      'retriable',
      'smtp_rejected',
      451,
      'the SMTP server answered to DATA: 451 Try again later',
    ])
    server.rejectNext(550, 'Mailbox unavailable')
    const refused = await channel.send(aDelivery(aPostureEvent()), configuration, context)
    assert.deepEqual(refused.ok ? refused : [refused.kind, refused.status], ['permanent', 550])
  })

  it('some recipients refused: a permanent failure naming them, though the others were sent it', async () => {
    const picky = await startSmtpReceiver({ refuseRecipients: ['gone@acme.example'] })
    try {
      const to = ['secops@acme.example', 'gone@acme.example']
      const partly = await channel.send(
        aDelivery(aPostureEvent()),
        { ...configuration, port: picky.port, username: undefined, password: undefined, to },
        context,
      )
      assert.deepEqual(partly.ok ? partly : [partly.kind, partly.code, partly.status, partly.error], [
        'permanent',
        'smtp_recipients_refused',
        550,
        'the SMTP server refused 1 of 2 recipients, the others were sent the message: ' +
          'gone@acme.example (550 5.1.1 <gone@acme.example>: no such mailbox)',
      ])
      assert.deepEqual(
        picky.received.map((m) => m.to),
        [['secops@acme.example']],
      )

      // Every recipient refused: nothing was sent, and it is the server's refusal as before.
      const none = await channel.send(
        aDelivery(aPostureEvent()),
        {
          ...configuration,
          port: picky.port,
          username: undefined,
          password: undefined,
          to: ['gone@acme.example'],
        },
        context,
      )
      assert.deepEqual(none.ok ? none : [none.kind, none.code, none.status], [
        'permanent',
        'smtp_rejected',
        550,
      ])
      assert.equal(picky.received.length, 1)
    } finally {
      await picky.close()
    }
  })

  it('STARTTLS required by the configuration but not offered: permanent, nothing sent in plain text', async () => {
    const count = server.received.length
    const logins = server.authAttempts.length
    const result = await channel.send(
      aDelivery(aPostureEvent()),
      { ...configuration, tls: 'starttls' },
      context,
    )
    assert.deepEqual(result.ok ? result : [result.kind, result.code], ['permanent', 'tls'])
    assert.equal(server.received.length, count)
    assert.equal(server.authAttempts.length, logins)
  })

  it('a server that is not there is retriable; an address the guard refuses, permanent', async () => {
    const gone = await startSmtpReceiver()
    const port = gone.port
    await gone.close()
    const refused = await channel.send(aDelivery(aPostureEvent()), { ...configuration, port }, context)
    assert.deepEqual(refused.ok ? refused : [refused.kind, refused.code], ['retriable', 'network'])
    assert.match(refused.ok ? '' : refused.error, /ECONNREFUSED/)
    const strictGuard = createOutboundGuard()
    const blocked = await createEmailChannel({ guard: strictGuard }).send(
      aDelivery(aPostureEvent()),
      configuration,
      context,
    )
    strictGuard.close()
    assert.deepEqual(blocked.ok ? blocked : [blocked.kind, blocked.code], ['permanent', 'blocked'])
    assert.equal(blocked.ok ? '' : blocked.error, 'the SMTP host is not allowed as a notification target')
    const invalid = await channel.send(
      aDelivery(aPostureEvent()),
      { ...configuration, host: 'smtp.example.com/../x' },
      context,
    )
    assert.deepEqual(invalid.ok ? invalid : [invalid.kind, invalid.code], ['permanent', 'configuration'])
  })
})

describe('email channel against a real SMTP server, with TLS', { skip: opensslMissing }, () => {
  const { key, cert } =
    opensslMissing === false ? selfSignedCertificate(['smtp.herald.test']) : { key: '', cert: '' }
  let starttls: SmtpReceiver
  let implicit: SmtpReceiver
  // The host names resolve through this lookup only: nodemailer resolving them itself would fail.
  const guard = createOutboundGuard({ allowlist: ['smtp.herald.test', 'other.herald.test'], lookup })
  const trusting = createEmailChannel({ guard, ca: cert })
  const context = { uiUrl: null, timeoutMs: 5_000 }
  const configuration = (
    port: number,
    tls: EmailConfiguration['tls'],
    host = 'smtp.herald.test',
  ): EmailConfiguration => ({
    endpoint: 'email',
    id: 'cfg-mail-tls',
    account: 'acme',
    host,
    port,
    from: 'herald@acme.example',
    to: ['secops@acme.example'],
    username: USER.username,
    password: USER.password,
    tls,
  })

  before(async () => {
    starttls = await startSmtpReceiver({ tls: { key, cert }, user: USER })
    implicit = await startSmtpReceiver({ tls: { key, cert }, secure: true, user: USER })
  })
  after(async () => {
    guard.close()
    await starttls.close()
    await implicit.close()
  })

  it('upgrades with STARTTLS, verifying the certificate against the host name, then authenticates', async () => {
    const result = await trusting.send(
      aDelivery(aPostureEvent()),
      configuration(starttls.port, 'starttls'),
      context,
    )
    assert.equal(result.ok, true, JSON.stringify(result))
    const received = mailOf(starttls)
    assert.equal(received.secure, true)
    assert.equal(received.user, 'herald')
    assert.equal(received.mail.subject, 'Validation completed: my-test-validation-scan')
    assert.deepEqual(addresses(received.mail.to), ['secops@acme.example'])
    assert.match(textOf(received.mail), /^Scan completed: 180 passed, 12 failed\./)
  })

  it('speaks TLS from the first byte in tls mode', async () => {
    const result = await trusting.send(
      aDelivery(aPostureEvent()),
      configuration(implicit.port, 'tls'),
      context,
    )
    assert.equal(result.ok, true, JSON.stringify(result))
    assert.equal(mailOf(implicit).secure, true)
  })

  it('refuses a certificate that does not verify: permanent, unless verify_tls is off', async () => {
    const untrusting = createEmailChannel({ guard })
    const untrusted = await untrusting.send(
      aDelivery(aPostureEvent()),
      configuration(starttls.port, 'starttls'),
      context,
    )
    assert.deepEqual(untrusted.ok ? untrusted : [untrusted.kind, untrusted.code], ['permanent', 'tls'])
    const wrongName = await trusting.send(
      aDelivery(aPostureEvent()),
      configuration(implicit.port, 'tls', 'other.herald.test'),
      context,
    )
    assert.deepEqual(wrongName.ok ? wrongName : [wrongName.kind, wrongName.code], ['permanent', 'tls'])
    const count = starttls.received.length
    const unverified = await untrusting.send(
      aDelivery(aPostureEvent()),
      { ...configuration(starttls.port, 'starttls'), verifyTls: false },
      context,
    )
    assert.equal(unverified.ok, true, JSON.stringify(unverified))
    assert.equal(starttls.received.length, count + 1)
    // The refused handshakes ended on the client's side, as the servers saw.
    assert.ok(starttls.errors.length + implicit.errors.length > 0)
  })
})
