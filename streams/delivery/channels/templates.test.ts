import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isValidationError } from '../../../src/errors/index.ts'
import { DefaultTemplateError, failureFromError } from './classify.ts'
import type { ChannelEndpoint } from './configuration.ts'
import { messageScope } from './message.ts'
import {
  renderField,
  TEMPLATE_FIELDS,
  TEMPLATE_LIMITS,
  templateIssues,
  validateTemplates,
} from './templates.ts'
import { aDelivery, anEvent, aPostureEvent, catalogData } from './test-fixtures.ts'

const posture = messageScope(aDelivery(aPostureEvent()), { uiUrl: 'https://herald.example.com' })
const vulnerabilities = messageScope(aDelivery(anEvent()), { uiUrl: null })

describe('default templates', () => {
  it("title a posture scan as the seed's example does", async () => {
    assert.equal(
      (await renderField('email', 'subject', undefined, posture)).text,
      'Validation completed: my-test-validation-scan',
    )
    const threshold = messageScope(
      aDelivery(aPostureEvent({ subtype: 'posture-scan-failure-threshold-limit-exceeds' })),
      { uiUrl: null },
    )
    assert.equal(
      (await renderField('slack', 'title', undefined, threshold)).text,
      'Validation failure threshold exceeded: my-test-validation-scan',
    )
  })

  it('title each event type, and the others by their catalog headline', async () => {
    const title = async (type: string, data: unknown) =>
      (
        await renderField(
          'teams',
          'title',
          undefined,
          messageScope(aDelivery(anEvent({ type, data })), { uiUrl: null }),
        )
      ).text
    assert.equal(
      await title(
        'user.checks.tag.vulnerabilities.update',
        catalogData('user.checks.tag.vulnerabilities.update'),
      ),
      'Vulnerability update: docker.io/library/nginx:1.27',
    )
    assert.equal(
      await title(
        'user.checks.tag.policy_evaluation.update',
        catalogData('user.checks.tag.policy_evaluation.update'),
      ),
      'Policy evaluation fail: docker.io/library/nginx:1.27',
    )
    assert.equal(
      await title('system.feeds.sync.failed', catalogData('system.feeds.sync.failed')),
      'Feeds sync task failed: vulnerabilities',
    )
  })

  it('title a vulnerability ticket by its one finding', async () => {
    const scope = messageScope(aDelivery(), { uiUrl: null })
    assert.equal(
      (await renderField('github', 'title', undefined, scope, { ticket: true })).text,
      'CVE-2024-6119 (high) in openssl 3.0.13-1~deb12u1: docker.io/library/nginx:1.27',
    )
  })

  it('write the text part with the metadata, the link when there is one, and the payload only when asked', async () => {
    const text = (await renderField('email', 'text', undefined, { ...posture, title: 't' })).text
    assert.match(text, /^Scan completed: 180 passed, 12 failed\.\n/)
    assert.match(text, /Resource: my-test-validation-scan\n/)
    assert.match(text, /View in Herald: https:\/\/herald\.example\.com\/events\/evt-posture-1/)
    assert.doesNotMatch(text, /Event payload/)
    const withoutLink = (await renderField('email', 'text', undefined, { ...vulnerabilities, title: 't' }))
      .text
    assert.doesNotMatch(withoutLink, /View in Herald|https?:/)
    const withPayload = messageScope(aDelivery(aPostureEvent()), { uiUrl: null, includePayload: true })
    assert.match(
      (await renderField('email', 'text', undefined, { ...withPayload, title: 't' })).text,
      /Event payload:\n\{\n {2}"specversion"/,
    )
  })

  it('escape values in HTML and in Slack mrkdwn, and nowhere else', async () => {
    const hostile = messageScope(
      aDelivery(
        anEvent({ data: { full_tag: '<img src=x onerror=alert(1)>&', added: [], removed: [], updated: [] } }),
      ),
      { uiUrl: null },
    )
    const html = (await renderField('email', 'html', undefined, { ...hostile, title: '<b>' })).text
    assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;&amp;/)
    assert.doesNotMatch(html, /<img|<b>/)
    const slack = (await renderField('slack', 'text', { text: '{{ resource }}' }, hostile)).text
    assert.equal(slack, '&lt;img src=x onerror=alert(1)&gt;&amp;')
    assert.equal(
      (await renderField('teams', 'text', { text: '{{ resource }}' }, hostile)).text,
      '<img src=x onerror=alert(1)>&',
    )
  })
})

describe('a large event', () => {
  const fields = Object.entries(TEMPLATE_FIELDS).flatMap(([endpoint, names]) =>
    names.map((field) => [endpoint as ChannelEndpoint, field] as const),
  )

  it('renders in every default, its texts bounded before they are escaped', async () => {
    // 900 KB of `&`: 4.5 MB once escaped for HTML, which took email.html past its render limit.
    for (const [type, data] of [
      ['user.image.analysis.failed', { full_tag: 'docker.io/acme/api:1', error: '&'.repeat(900_000) }],
      ['user.image.analysis.failed', { full_tag: `&${'"'.repeat(900_000)}`, error: 'x' }],
      [
        'user.checks.tag.vulnerabilities.update',
        { ...catalogData('user.checks.tag.vulnerabilities.update'), summary: '<'.repeat(900_000) },
      ],
    ] as const) {
      const scope = messageScope(aDelivery(anEvent({ type, data })), { uiUrl: 'https://h.example' })
      for (const [endpoint, field] of fields)
        for (const ticket of [false, true]) {
          const { text } = await renderField(endpoint, field, undefined, { ...scope, title: 'T' }, { ticket })
          assert.ok(text.length <= TEMPLATE_LIMITS.maxOutputChars, `${endpoint}.${field}`)
        }
    }
  })

  it('failing a default template fails the message, naming the template and why', async () => {
    // A scope no event gives (its details are bounded): a million lines take any render past 250 ms.
    const scope = { ...vulnerabilities, title: 'T', details: Array.from({ length: 1_000_000 }, () => 'x') }
    const error = await renderField('email', 'html', undefined, scope).then(
      () => assert.fail('rendered'),
      (e: unknown) => e,
    )
    assert.ok(error instanceof DefaultTemplateError)
    assert.match(
      error.message,
      /^Herald's default email\.html template failed on this event: template render limit exceeded.*retried/,
    )
    assert.deepEqual([failureFromError(error).kind, failureFromError(error).code], ['retriable', 'template'])
    // So does an override's fallback: the failure names the default, which failed too.
    const override = { html: '{% for line in details %}{{ line }}{% endfor %}' }
    const fallback = await renderField('email', 'html', override, scope).catch((e: unknown) => e)
    assert.ok(fallback instanceof DefaultTemplateError)
  })
})

describe('a long detail line or summary', () => {
  it('leaves the link, the payload and GitHub’s and Jira’s footers in the message', async () => {
    const page = `upstream answered: ${'<html><body>502 Bad Gateway & "retry"</body></html> '.repeat(1_000)}`
    const events = [
      anEvent({
        type: 'user.image.analysis.failed',
        data: { full_tag: 'docker.io/acme/api:1', error: page },
      }),
      anEvent({
        type: 'user.image.analysis.failed',
        data: { full_tag: 'docker.io/acme/api:1', summary: page, error: 'x' },
      }),
      anEvent({ type: 'user.image.analysis.failed', data: { full_tag: page, error: page } }),
    ]
    for (const event of events) {
      const scope = messageScope(aDelivery(event), { uiUrl: 'https://herald.example', includePayload: true })
      const render = async (
        endpoint: ChannelEndpoint,
        field: 'text' | 'html' | 'body' | 'comment' | 'description',
      ) => (await renderField(endpoint, field, undefined, { ...scope, title: 'T' }, { ticket: true })).text
      const link = 'https://herald.example/events/evt-1'
      const text = await render('email', 'text')
      assert.ok(
        text.includes(`View in Herald: ${link}`) && text.includes('\n\nEvent payload:\n{'),
        'email.text',
      )
      const html = await render('email', 'html')
      assert.ok(html.includes(`<a href="${link}">View in Herald</a>`), 'email.html link')
      assert.match(html, /<h3>Event payload<\/h3><pre>\{/, 'email.html payload')
      assert.match(html, /<\/pre><\/body><\/html>$/, 'email.html')
      const body = await render('github', 'body')
      assert.ok(body.includes(`[View in Herald](${link})`), 'github.body link')
      assert.match(body, /\n_Filed by Herald\. .*_\n$/, 'github.body footer')
      const description = await render('jira', 'description')
      assert.ok(description.endsWith(`View in Herald: ${link}\n\nFiled by Herald.`), 'jira.description')
      for (const endpoint of ['github', 'jira'] as const)
        assert.ok(
          (await render(endpoint, 'comment')).endsWith(`View in Herald: ${link}\n`),
          `${endpoint}.comment`,
        )
    }
  })
})

describe('GitHub Markdown', () => {
  it('keeps an event’s text from mentioning anyone, breaking out of a table or linking', async () => {
    const hostile = messageScope(
      aDelivery(
        anEvent({
          data: {
            full_tag: 'docker.io/acme/api:`x` @octocat | cell\r\n| row',
            added: [],
            removed: [],
            updated: [],
          },
        }),
      ),
      { uiUrl: null },
    )
    const body = (
      await renderField('github', 'body', undefined, { ...hostile, title: 't' }, { ticket: true })
    ).text
    const row = body.split('\n').find((line) => line.startsWith('| Resource |'))
    assert.equal(row, '| Resource | docker.io/acme/api:\\`x\\` @\u200boctocat \\| cell \\| row |')
    assert.doesNotMatch(body, /(^|[^A-Za-z0-9_])@octocat/)
    const comment = (
      await renderField('github', 'comment', { comment: 'see [docs](https://evil.test) @acme/sec' }, hostile)
    ).text
    assert.equal(comment, 'see [docs](https://evil.test) @acme/sec', 'a template’s own text is not escaped')
    const value = (
      await renderField(
        'github',
        'comment',
        { comment: '{{ resource }}' },
        {
          ...hostile,
          resource: 'see [docs](https://evil.test) @acme/sec, repo@sha256:ab',
        },
      )
    ).text
    assert.equal(value, 'see \\[docs\\]\\(https:\u200b//evil.test\\) @\u200bacme/sec, repo@sha256:ab')
    const bare = (
      await renderField(
        'github',
        'comment',
        { comment: '{{ resource }}' },
        { ...hostile, resource: 'reset at https://evil.test/x or WWW.evil.test, &#64;octocat & co' },
      )
    ).text
    assert.equal(
      bare,
      'reset at https:\u200b//evil.test/x or WWW\u200b.evil.test, \\&\\#\u200b64;octocat \\& co',
    )
    // Nor refer to another issue or pull request, which GitHub links and notifies.
    const references = (
      await renderField(
        'github',
        'comment',
        { comment: '{{ resource }}' },
        { ...hostile, resource: 'see #1, acme/other-repo#42, GH-7 and gh-8; #tag, GH-x and a#b stay' },
      )
    ).text
    assert.equal(
      references,
      'see \\#\u200b1, acme/other-repo\\#\u200b42, GH\u200b-7 and gh\u200b-8; \\#tag, GH-x and a\\#b stay',
    )
    // Jira and the plain fields are left as they were.
    assert.equal(
      (
        await renderField(
          'jira',
          'comment',
          { comment: '{{ resource }}' },
          { ...hostile, resource: '@x [y]' },
        )
      ).text,
      '@x [y]',
    )
  })
})

describe('digest templates', () => {
  const digest = {
    windowStart: '2026-11-22T09:00:00Z',
    windowEnd: '2026-11-22T10:00:00Z',
    total: 3,
    counts: [
      { type: 'user.checks.tag.vulnerabilities.update', level: 'info', count: 2 },
      { type: 'system.feeds.sync.failed', level: 'error', count: 1 },
    ],
    events: [anEvent()],
  }
  const scope = messageScope(aDelivery(anEvent(), { digest }), { uiUrl: 'https://herald.example.com' })

  it('title and summarise a digest by its counts and first events', async () => {
    assert.equal(
      (await renderField('email', 'subject', undefined, scope)).text,
      'Herald digest: 3 events for acme',
    )
    const text = (await renderField('email', 'text', undefined, { ...scope, title: 't' })).text
    assert.equal(
      text,
      '3 events between 2026-11-22T09:00:00Z and 2026-11-22T10:00:00Z:\n- 2 × user.checks.tag.vulnerabilities.update (info)\n- 1 × system.feeds.sync.failed (error)' +
        '\n\nFirst events:\n- 2026-11-22T10:00:00Z user.checks.tag.vulnerabilities.update (info): docker.io/library/nginx:1.27\n… and 2 more' +
        '\n\nView in Herald: https://herald.example.com/notifications/deliveries?configuration=cfg-1&from=2026-11-22T09%3A00%3A00Z&to=2026-11-22T10%3A00%3A00Z\n',
    )
    assert.match(
      (await renderField('slack', 'text', undefined, { ...scope, title: 't' })).text,
      /^\*3\* events between .*\n• 2 × user\.checks.*\n• 1 × system.*\n\nFirst events:\n• 2026-11-22T10:00:00Z /,
    )
    const html = (await renderField('email', 'html', undefined, { ...scope, title: 't' })).text
    assert.match(html, /<li>1 × system\.feeds\.sync\.failed \(error\)<\/li>/)
    assert.match(html, /<p>… and 2 more<\/p>/)
  })

  it('say so when a digest lists none of its events, too large for one message', async () => {
    const none = messageScope(aDelivery(anEvent(), { digest: { ...digest, events: [] } }), { uiUrl: null })
    const text = (await renderField('email', 'text', undefined, { ...none, title: 't' })).text
    assert.equal(
      text,
      '3 events between 2026-11-22T09:00:00Z and 2026-11-22T10:00:00Z:\n- 2 × user.checks.tag.vulnerabilities.update (info)\n- 1 × system.feeds.sync.failed (error)' +
        '\n\nThe events are too large to list here.\n',
    )
    assert.match(
      (await renderField('slack', 'text', undefined, { ...none, title: 't' })).text,
      /\n• 1 × system\.feeds\.sync\.failed \(error\)\n\nThe events are too large to list here\.$/,
    )
    const html = (await renderField('email', 'html', undefined, { ...none, title: 't' })).text
    assert.match(html, /<\/ul><p>The events are too large to list here\.<\/p>/)
    assert.doesNotMatch(html, /First events/)
  })

  it('is as severe as the worst event of its window', () => {
    assert.equal(scope.level, 'error')
    assert.deepEqual(scope.digest?.levels, [
      { level: 'error', count: 1 },
      { level: 'info', count: 2 },
    ])
  })

  it('titles a ticket after the configuration, and writes each later digest as a comment', async () => {
    assert.equal(
      (await renderField('github', 'title', undefined, scope, { ticket: true })).text,
      'Herald digests for acme: configuration cfg-1',
    )
    const body = (await renderField('github', 'body', undefined, { ...scope, title: 't' }, { ticket: true }))
      .text
    assert.match(body, /^3 events between .*\n- 2 × user\.checks/)
    assert.match(body, /each later digest comments here/)
    const comment = (
      await renderField(
        'jira',
        'comment',
        undefined,
        { ...scope, title: 't', regression: true },
        { ticket: true },
      )
    ).text
    assert.match(comment, /^A new digest after the ticket was closed\.\n\n3 events between/)
  })
})

describe('overrides', () => {
  const overrides = {
    subject: 'top: {{ type }}',
    event_types: {
      'com.ibm.*': { subject: 'ibm: {{ resource }}' },
      'com.ibm.cloud.compliance.*': { subject: 'compliance: {{ resource | upcase }}' },
      'com.ibm.cloud.compliance.posture': { text: 'exact: {{ summary }}' },
    },
  }

  it('take the exact type, then the longest matching pattern, then the top level, then the default', async () => {
    assert.equal(
      (await renderField('email', 'subject', overrides, posture)).text,
      'compliance: MY-TEST-VALIDATION-SCAN',
    )
    assert.equal(
      (await renderField('email', 'text', overrides, posture)).text,
      'exact: Scan completed: 180 passed, 12 failed.',
    )
    assert.equal(
      (await renderField('email', 'subject', overrides, vulnerabilities)).text,
      'top: user.checks.tag.vulnerabilities.update',
    )
    assert.match(
      (await renderField('email', 'html', overrides, { ...vulnerabilities, title: 'x' })).text,
      /^<!doctype html>/,
    )
  })

  it('that break a limit on this event fall back to the default, and say so', async () => {
    // Longer than any resource of an event's scope (`MAX_SCOPE_TEXT`).
    const big = { ...messageScope(aDelivery(anEvent()), { uiUrl: null }), resource: 'x'.repeat(300_000) }
    const template = { subject: '{{ resource | split: "" | join: "," }}' }
    await validateTemplates(template, 'email')
    const rendered = await renderField('email', 'subject', template, big)
    // The default's text, cut to 40,000 characters with the last one saying so.
    assert.equal(rendered.text, `${`Vulnerability update: ${'x'.repeat(300_000)}`.slice(0, 39_999)}…`)
    assert.match(
      rendered.fallback ?? '',
      /^templates\.subject: memory alloc limit exceeded.*; Herald's default was used$/,
    )
  })
})

describe('a rendered field', () => {
  // Longer than any resource of an event's scope (`MAX_SCOPE_TEXT`), as a template may render.
  const withResource = (resource: string) => ({
    ...messageScope(aDelivery(anEvent({ data: { full_tag: 'r', added: [], removed: [], updated: [] } })), {
      uiUrl: null,
    }),
    resource,
  })
  const html = { html: '{{ resource }}<p>end</p>' }

  it('past 40,000 characters is cut to them, saying so, and HTML not inside a tag or entity', async () => {
    const plain = await renderField(
      'email',
      'text',
      { text: '{{ resource }} end' },
      withResource('a'.repeat(50_000)),
    )
    assert.equal(plain.text, `${'a'.repeat(39_999)}…`)
    // The cut falls inside <p>: the tag is left out whole.
    const tag = await renderField('email', 'html', html, { ...withResource('a'.repeat(39_997)), title: 't' })
    assert.equal(tag.text, `${'a'.repeat(39_997)}…`)
    // Inside &amp; (the resource's escaped &): the entity is left out whole.
    const entity = await renderField('email', 'html', html, {
      ...withResource(`${'a'.repeat(39_996)}&`),
      title: 't',
    })
    assert.equal(entity.text, `${'a'.repeat(39_996)}…`)
    // Nor is a character split: 😀 is two UTF-16 units, and the cut falls between them.
    const emoji = await renderField(
      'email',
      'text',
      { text: '{{ resource }} end' },
      withResource(`${'a'.repeat(39_998)}😀😀`),
    )
    assert.equal(emoji.text, `${'a'.repeat(39_998)}…`)
    assert.equal(
      (await renderField('email', 'text', { text: '{{ resource }}' }, withResource('a'.repeat(40_000)))).text
        .length,
      40_000,
    )
  })

  it('shows at most 16,000 characters of a large event’s payload, then says how many are not shown', async () => {
    const notes = 'x'.repeat(60_000)
    const event = aPostureEvent({ data: { ...(aPostureEvent().data as object), notes } })
    const scope = { ...messageScope(aDelivery(event), { uiUrl: null, includePayload: true }), title: 't' }
    const whole = JSON.stringify(event, null, 2)
    for (const field of ['text', 'html'] as const) {
      const { text } = await renderField('email', field, undefined, scope)
      const shown = /\n… ([\d,]+) more characters of event evt-posture-1 not shown/.exec(text)
      assert.ok(shown, field)
      assert.ok(text.length < 40_000, `${field}: ${text.length}`)
      // What is shown and what is not add up to the event.
      const before = text.slice(0, shown.index)
      const start =
        field === 'html' ? before.lastIndexOf('<pre>') + 5 : before.lastIndexOf('Event payload:\n') + 15
      const head = before.slice(start).replaceAll('&quot;', '"')
      assert.ok(whole.startsWith(head), field)
      assert.equal(head.length + Number(shown[1]?.replaceAll(',', '')), whole.length, field)
      assert.ok(head.length > 15_000 && head.length <= 16_000, `${field}: ${head.length}`)
    }
    const html = (await renderField('email', 'html', undefined, scope)).text
    assert.match(html, /not shown<\/pre><\/body><\/html>$/)
    // An event within the limit is shown whole.
    const small = {
      ...messageScope(aDelivery(aPostureEvent()), { uiUrl: null, includePayload: true }),
      title: 't',
    }
    assert.ok(
      (await renderField('email', 'text', undefined, small)).text.includes(
        JSON.stringify(aPostureEvent(), null, 2),
      ),
    )
  })
})

describe('validateTemplates', () => {
  it('accepts good templates, and nothing at all', async () => {
    await validateTemplates(undefined, 'slack')
    await validateTemplates(
      {
        title: '[{{ level | upcase }}] {{ headline }}: {{ resource }}',
        text: '{% for f in findings %}{{ f.id }}{% unless forloop.last %}, {% endunless %}{% endfor %}',
        event_types: { 'user.checks.*': { text: '{{ summary }} {% if link %}<{{ link }}>{% endif %}' } },
      },
      'slack',
    )
  })

  const refusals: [name: string, overrides: unknown, path: string, message: RegExp][] = [
    [
      'a syntax error',
      { subject: '{{ title ' },
      'templates.subject',
      /^invalid template: output "\{\{ title " not closed/,
    ],
    [
      'an unknown filter',
      { text: '{{ title | shout }}' },
      'templates.text',
      /^invalid template: undefined filter: shout/,
    ],
    [
      'an unknown variable',
      { text: '{{ evnt.type }}' },
      'templates.text',
      /^unknown variable evnt; templates can use type, /,
    ],
    ['a title that reads itself', { subject: '{{ title }}' }, 'templates.subject', /^unknown variable title/],
    [
      'include',
      { html: '{% include "/etc/passwd" %}' },
      'templates.html',
      /the include tag is not available/,
    ],
    ['render', { html: '{% render "secrets" %}' }, 'templates.html', /the render tag is not available/],
    ['layout', { html: '{% layout "x" %}' }, 'templates.html', /the layout tag is not available/],
    [
      'a runaway loop',
      { text: '{% for i in (1..100000000) %}{{ i }}{% endfor %}' },
      'templates.text',
      /^fails when rendered: memory alloc limit exceeded/,
    ],
    [
      'a field the channel does not render',
      { body: '{{ summary }}' },
      'templates.body',
      /^not a template field of email; one of subject, text, html$/,
    ],
    [
      'a template too long',
      { text: 'x'.repeat(8_001) },
      'templates.text',
      /^must be at most 8000 characters$/,
    ],
    ['a template that is not a string', { text: 42 }, 'templates.text', /^must be a string$/],
    [
      'a bad event type pattern',
      { event_types: { 'user checks': { text: 'x' } } },
      'templates.event_types["user checks"]',
      /^must be an event type/,
    ],
    [
      'a bad template under a pattern',
      { event_types: { 'user.*': { subject: '{% if %}' } } },
      'templates.event_types["user.*"].subject',
      /^invalid template/,
    ],
    ['overrides that are not an object', 'Hello {{ title }}', 'templates', /^must be an object/],
  ]
  for (const [name, overrides, path, message] of refusals) {
    it(`refuses ${name}, naming the field`, async () => {
      await assert.rejects(validateTemplates(overrides, 'email'), (error: unknown) => {
        assert.ok(isValidationError(error))
        assert.equal(error.code, 'validation_failed')
        assert.equal(error.issues.length, 1, JSON.stringify(error.issues))
        assert.equal(error.issues[0]?.path, path)
        assert.match(error.issues[0]?.message ?? '', message)
        return true
      })
    })
  }

  it('names every bad field at once', async () => {
    const issues = await templateIssues({ subject: '{{ x }}', text: '{{ y | nope }}', html: 'fine' }, 'email')
    assert.deepEqual(
      issues.map((i) => i.path),
      ['templates.subject', 'templates.text'],
    )
  })

  it('refuses any template for webhooks, whose payload is the event itself', async () => {
    assert.deepEqual(await templateIssues({ text: 'x' }, 'webhook'), [
      { path: 'templates.text', message: 'webhook messages are not templated' },
    ])
  })

  it('without an endpoint, accepts every template field', async () => {
    await validateTemplates({ subject: '{{ resource }}', body: '{{ summary }}', description: 'x' })
  })
})
