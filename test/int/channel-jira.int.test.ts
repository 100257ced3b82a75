import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, beforeEach, describe, it } from 'node:test'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import { aDelivery, anEvent, aPostureEvent } from '../../streams/delivery/channels/test-fixtures.ts'
import {
  createJiraChannel,
  createMemoryRecentTickets,
  createSqliteRecentTickets,
  type JiraConfiguration,
  jiraKeyLabel,
  jiraTarget,
  type TicketSubject,
  ticketSubjects,
} from '../../streams/delivery/index.ts'
import { type JiraStandIn, startJiraStandIn } from '../support/jira-stand-in.ts'

const EMAIL = 'herald-bot@acme.example'
const API_TOKEN = 'ATATT3xFfGF0JiraIntegrationToken'

describe('Jira channel against a Jira Cloud stand-in', () => {
  let jira: JiraStandIn
  const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
  let configuration: JiraConfiguration
  const context = { uiUrl: 'https://herald.example.com', timeoutMs: 2_000 }

  before(async () => {
    // Search lags behind writes, as Jira's enhanced search does.
    jira = await startJiraStandIn({
      projectKey: 'SEC',
      email: EMAIL,
      apiToken: API_TOKEN,
      searchLagMs: 60_000,
    })
    configuration = {
      endpoint: 'jira',
      id: 'cfg-jira',
      account: 'acme',
      url: jira.siteUrl,
      username: EMAIL,
      apiToken: API_TOKEN,
      projectKey: 'SEC',
      issueType: 'Bug',
      priority: 'High',
      labels: ['security'],
      assignee: '5b10ac8d82e05b22cc7d4ef5',
    }
  })
  beforeEach(() => {
    jira.issues.length = 0
    jira.comments.length = 0
    jira.reopenable = true
  })
  after(async () => {
    guard.close()
    await jira.close()
  })

  const posture = (id: string) => aDelivery(aPostureEvent({ id }))
  /** The label of a delivery's one ticket key. */
  const labelOf = (delivery: ReturnType<typeof posture>) =>
    jiraKeyLabel(ticketSubjects(delivery, 20)[0] as TicketSubject)
  /** A channel on a clock the test moves, remembering its filings in memory, waiting 60 s for search. */
  const clockedChannel = () => {
    const clock = { now: Date.UTC(2026, 10, 22, 10) }
    const tickets = createMemoryRecentTickets()
    const channel = createJiraChannel({
      guard,
      recentTickets: tickets,
      clock: () => clock.now,
      searchLagMs: 60_000,
    })
    return { channel, tickets, clock }
  }

  it('files an issue with the project, type, priority, labels and assignee, its description in ADF', async () => {
    const channel = createJiraChannel({ guard })
    const delivery = posture('e-1')
    const result = await channel.send(delivery, configuration, context)
    assert.equal(result.ok, true, JSON.stringify(result))
    assert.deepEqual(jira.problems, [])
    const [issue] = jira.issues
    assert.equal(issue?.key, 'SEC-1')
    assert.equal(issue?.summary, 'Validation completed: my-test-validation-scan')
    assert.deepEqual(
      [issue?.issuetype, issue?.priority, issue?.assignee],
      ['Bug', 'High', '5b10ac8d82e05b22cc7d4ef5'],
    )
    assert.equal(issue?.labels[0], 'security')
    assert.match(issue?.labels[1] ?? '', /^herald-[0-9a-f]{16}$/)
    assert.deepEqual(issue?.properties.herald, {
      key: issue?.labels[1]?.slice('herald-'.length),
      delivery: delivery.deliveryId,
      event: encodeURIComponent(`${delivery.event.source} e-1`),
    })
    const text = JSON.stringify(issue?.description)
    assert.match(text, /"text":"Scan completed: 180 passed, 12 failed\."/)
    assert.match(
      text,
      /"marks":\[\{"type":"link","attrs":\{"href":"https:\/\/herald\.example\.com\/events\/e-1"\}\}\]/,
    )
    assert.deepEqual(result.ok && result.tickets, [
      {
        key: issue?.labels[1]?.slice('herald-'.length),
        action: 'created',
        ticket: 'SEC-1',
        url: `${jira.siteUrl}/browse/SEC-1`,
      },
    ])
    const create = jira.requests.find((r) => r.path === '/rest/api/3/issue')
    assert.equal(
      create?.headers.authorization,
      `Basic ${Buffer.from(`${EMAIL}:${API_TOKEN}`).toString('base64')}`,
    )
  })

  it('finds the issue it just filed although search lags, and comments instead of filing another', async () => {
    const channel = createJiraChannel({ guard })
    await channel.send(posture('e-1'), configuration, context)
    const again = await channel.send(posture('e-2'), configuration, context)
    assert.equal(again.ok && again.tickets?.[0]?.action, 'commented')
    assert.equal(jira.issues.length, 1)
    assert.equal(jira.comments.length, 1)
    const search = jira.requests.filter((r) => r.path === '/rest/api/3/search/jql').at(-1)
    assert.deepEqual(JSON.parse(search?.body ?? '{}').reconcileIssues, [Number(jira.issues[0]?.id)])
    assert.match(JSON.stringify(jira.comments[0]?.body), /This happened again\./)
  })

  it('does nothing twice when a delivery is retried', async () => {
    const channel = createJiraChannel({ guard })
    const first = posture('e-1')
    const second = posture('e-2')
    await channel.send(first, configuration, context)
    await channel.send(second, configuration, context)
    for (const delivery of [first, second]) {
      const replay = await channel.send(delivery, configuration, context)
      assert.equal(replay.ok && replay.tickets?.[0]?.action, 'unchanged')
    }
    assert.equal(jira.issues.length, 1)
    assert.equal(jira.comments.length, 1)
  })

  it('comments on a busy issue whose newest fifty comments weigh more than 1 MiB, and never twice', async () => {
    const channel = createJiraChannel({ guard })
    await channel.send(posture('e-0'), configuration, context)
    const issue = jira.issues[0]?.id as string
    // Fifty verbose ADF comments of 30,000 characters, each a paragraph of marked runs.
    const verbose = {
      type: 'doc',
      version: 1,
      content: [
        {
          type: 'paragraph',
          content: Array.from({ length: 300 }, () => ({
            type: 'text',
            text: 'y'.repeat(100),
            marks: [{ type: 'strong' }, { type: 'em' }],
          })),
        },
      ],
    }
    for (let i = 0; i < 50; i++)
      jira.comments.push({
        id: String(30_000 + i),
        issue,
        body: verbose,
        properties: {},
        created: new Date().toISOString(),
      })
    const repeat = posture('e-busy')
    const first = await channel.send(repeat, configuration, context)
    assert.equal(first.ok && first.tickets?.[0]?.action, 'commented', JSON.stringify(first))
    const retry = await channel.send(repeat, configuration, context)
    assert.equal(retry.ok && retry.tickets?.[0]?.action, 'unchanged', JSON.stringify(retry))
    assert.equal(jira.comments.length, 51)
  })

  it('transitions a done issue back, with a comment, when it comes back', async () => {
    const channel = createJiraChannel({ guard })
    await channel.send(posture('e-1'), configuration, context)
    jira.resolve('SEC-1')
    const result = await channel.send(posture('e-3'), configuration, context)
    assert.equal(result.ok && result.tickets?.[0]?.action, 'reopened')
    assert.equal(jira.issues.length, 1)
    assert.equal(jira.issues[0]?.status, '10000')
    assert.match(
      JSON.stringify(jira.comments.at(-1)?.body),
      /Regression: this happened again after the ticket was closed/,
    )
    const transition = jira.requests.find((r) => r.path.endsWith('/transitions') && r.method === 'POST')
    assert.deepEqual(JSON.parse(transition?.body ?? '{}'), { transition: { id: '31' } })
  })

  it('files a new issue when the workflow has no way back from done, naming the old one', async () => {
    const channel = createJiraChannel({ guard })
    await channel.send(posture('e-1'), configuration, context)
    jira.resolve('SEC-1')
    jira.reopenable = false
    const result = await channel.send(posture('e-3'), configuration, context)
    assert.deepEqual(result.ok && result.tickets?.map((t) => [t.ticket, t.action]), [['SEC-2', 'created']])
    assert.match(JSON.stringify(jira.issues[1]?.description), /Reopens SEC-1/)
    // The next repeat comments on the new, open one.
    const next = await channel.send(posture('e-4'), configuration, context)
    assert.deepEqual(next.ok && next.tickets?.map((t) => [t.ticket, t.action]), [['SEC-2', 'commented']])
  })

  it('relies on Jira, not on memory: a fresh process finds the issue once search has caught up', async () => {
    await createJiraChannel({ guard }).send(posture('e-1'), configuration, context)
    const issue = jira.issues[0]
    if (issue === undefined) assert.fail('no issue')
    issue.createdAt -= 61_000
    const restarted = createJiraChannel({ guard })
    const result = await restarted.send(posture('e-2'), configuration, context)
    assert.equal(result.ok && result.tickets?.[0]?.action, 'commented')
    assert.equal(jira.issues.length, 1)
  })

  it('finds an issue it filed before a restart while search still lags, from the file of recent tickets', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-jira-recent-'))
    try {
      const path = join(dir, 'recent-tickets.sqlite')
      const before = createSqliteRecentTickets(path)
      await createJiraChannel({ guard, recentTickets: before }).send(posture('e-1'), configuration, context)
      before.close() // killed and started again: only the file is left
      const after = createSqliteRecentTickets(path)
      const result = await createJiraChannel({ guard, recentTickets: after }).send(
        posture('e-2'),
        configuration,
        context,
      )
      after.close()
      assert.deepEqual(result.ok && result.tickets?.map((t) => [t.ticket, t.action]), [
        ['SEC-1', 'commented'],
      ])
      assert.equal(jira.issues.length, 1)
      // Without it, the lagging search shows nothing and a second issue is filed.
      const forgetful = await createJiraChannel({ guard }).send(posture('e-3'), configuration, context)
      assert.deepEqual(forgetful.ok && forgetful.tickets?.map((t) => t.action), ['created'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('never files twice when a filing\u2019s answer is lost: it waits for the lagging search, then finds the issue', async () => {
    const { channel, tickets, clock } = clockedChannel()
    const delivery = posture('e-1')
    jira.loseFilingAnswers()
    const lost = await channel.send(delivery, { ...configuration }, { ...context, timeoutMs: 300 })
    assert.equal(!lost.ok && lost.code, 'timeout')
    assert.equal(jira.issues.length, 1, 'Jira filed it; Herald never heard')

    // The retry: search does not show the issue yet, so it waits instead of filing again.
    clock.now += 5_000
    const waiting = await channel.send(delivery, configuration, context)
    assert.deepEqual(!waiting.ok && [waiting.kind, waiting.code, waiting.retryAfterMs], [
      'retriable',
      'ticket_unconfirmed',
      55_000,
    ])
    assert.equal(jira.issues.length, 1)

    // Once search has caught up, the issue is found: filed by this delivery, so nothing to do.
    clock.now += 55_000
    const issue = jira.issues[0]
    if (issue === undefined) assert.fail('no issue')
    issue.createdAt -= 61_000
    const found = await channel.send(delivery, configuration, context)
    assert.deepEqual(found.ok && found.tickets?.map((t) => [t.ticket, t.action]), [['SEC-1', 'unchanged']])
    assert.equal(jira.issues.length, 1)
    assert.equal(tickets.unanswered(jiraTarget(configuration), labelOf(delivery)), undefined)
  })

  /** A vulnerability update of the tag `t:1` with these findings added (and these updated). */
  const vulnerabilities = (id: string, added: readonly string[], updated: readonly string[] = []) => {
    const finding = (cve: string, severity: string) => ({
      id: cve,
      severity,
      package: 'openssl',
      version: '3',
      type: 'deb',
      fix_version: null,
      kev: false,
    })
    return aDelivery(
      anEvent({
        id,
        data: {
          full_tag: 't:1',
          digest: 'sha256:1',
          added: added.map((cve) => finding(cve, 'high')),
          removed: [],
          updated: updated.map((cve) => finding(cve, 'critical')),
        },
      }),
    )
  }
  const cves = (from: number, count: number) => Array.from({ length: count }, (_, i) => `CVE-${from + i}`)
  const actions = (result: Awaited<ReturnType<ReturnType<typeof createJiraChannel>['send']>>) =>
    result.ok ? result.tickets?.map((t) => [t.ticket, t.action]) : result
  const text = (doc: unknown) => JSON.stringify(doc)

  it('comments on the tag’s open grouped issue when one of its findings comes again alone, instead of filing another', async () => {
    const channel = createJiraChannel({ guard })
    const grouped = await channel.send(vulnerabilities('v-all', cves(1, 21)), configuration, context)
    assert.deepEqual(actions(grouped), [['SEC-1', 'created']])
    assert.equal(jira.issues[0]?.summary, 'Vulnerabilities: t:1')

    const again = await channel.send(vulnerabilities('v-one', [], ['CVE-3']), configuration, context)
    assert.deepEqual(actions(again), [['SEC-1', 'commented']])
    assert.equal(jira.issues.length, 1, 'no second issue for a finding the grouped one holds')
    assert.match(text(jira.comments[0]?.body), /Updated: CVE-3 \(critical/)
    const added = await channel.send(vulnerabilities('v-new', ['CVE-99']), configuration, context)
    assert.deepEqual(actions(added), [['SEC-1', 'commented']])

    // Once it is done, findings are ticketed apart again: a regression of one files its own.
    jira.resolve('SEC-1')
    const regression = await channel.send(vulnerabilities('v-back', ['CVE-3']), configuration, context)
    assert.deepEqual(actions(regression), [['SEC-2', 'created']])
    assert.equal(jira.issues[1]?.summary, 'CVE-3 (high) in openssl 3: t:1')
    // A grouped update transitions the grouped issue back, without the finding that has its own.
    const many = await channel.send(vulnerabilities('v-many', cves(1, 22)), configuration, context)
    assert.deepEqual(actions(many), [
      ['SEC-2', 'commented'],
      ['SEC-1', 'reopened'],
    ])
    assert.doesNotMatch(text(jira.comments.at(-1)?.body), /CVE-3 /)
    // With both open, the finding's own keeps its updates.
    const repeat = await channel.send(vulnerabilities('v-own', [], ['CVE-3']), configuration, context)
    assert.deepEqual(actions(repeat), [['SEC-2', 'commented']])
    assert.deepEqual(jira.problems, [])
  })

  it('repeats a grouped update’s findings that have open issues of their own on them, and groups only the rest', async () => {
    const channel = createJiraChannel({ guard })
    const own = await channel.send(vulnerabilities('v-own', cves(1, 12)), configuration, context)
    assert.equal(own.ok && own.tickets?.length, 12)
    jira.resolve('SEC-12') // done: its finding is grouped with the rest
    const grouped = await channel.send(vulnerabilities('v-all', [], cves(1, 33)), configuration, context)
    assert.ok(grouped.ok, JSON.stringify(grouped))
    assert.deepEqual(
      grouped.tickets?.map((t) => t.action),
      [...Array(11).fill('commented'), 'created'],
    )
    assert.equal(jira.issues.length, 13)
    const description = text(jira.issues[12]?.description)
    assert.equal(jira.issues[12]?.summary, 'Vulnerabilities: t:1')
    assert.match(description, /CVE-12 /)
    assert.doesNotMatch(
      description,
      /CVE-(1|11) /,
      'a finding with an open issue of its own is not grouped again',
    )
    const retry = await channel.send(vulnerabilities('v-all', [], cves(1, 33)), configuration, context)
    assert.deepEqual(retry.ok && retry.tickets?.map((t) => t.action), Array(12).fill('unchanged'))
    assert.equal(jira.comments.length, 11)
    assert.deepEqual(jira.problems, [])
  })

  it('waits for a grouped filing whose answer was lost, even after a restart, before a finding of it files its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-jira-recent-'))
    const path = join(dir, 'recent-tickets.sqlite')
    const clock = { now: Date.UTC(2026, 10, 22, 10) }
    const start = (recentTickets: ReturnType<typeof createSqliteRecentTickets>) =>
      createJiraChannel({ guard, recentTickets, clock: () => clock.now, searchLagMs: 60_000 })
    try {
      const before = createSqliteRecentTickets(path)
      jira.loseFilingAnswers()
      const lost = await start(before).send(vulnerabilities('v-all', cves(1, 21)), configuration, {
        ...context,
        timeoutMs: 300,
      })
      assert.equal(!lost.ok && lost.code, 'timeout')
      assert.equal(jira.issues.length, 1, 'Jira filed it; Herald never heard')
      before.close() // killed and started again: only the file is left
      const after = createSqliteRecentTickets(path)
      try {
        const restarted = start(after)
        clock.now += 5_000
        const waiting = await restarted.send(vulnerabilities('v-one', ['CVE-3']), configuration, context)
        assert.deepEqual(!waiting.ok && [waiting.code, waiting.retryAfterMs], ['ticket_unconfirmed', 55_000])
        assert.equal(jira.issues.length, 1)
        // Search catches up.
        clock.now += 55_000
        for (const issue of jira.issues) issue.createdAt -= 61_000
        const found = await restarted.send(vulnerabilities('v-one', ['CVE-3']), configuration, context)
        assert.deepEqual(actions(found), [['SEC-1', 'commented']])
        assert.equal(jira.issues.length, 1)
      } finally {
        after.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('files after the wait when the lost filing never reached Jira, and forgets a filing Jira refused', async () => {
    const { channel, tickets, clock } = clockedChannel()
    const delivery = posture('e-1')
    jira.hangNext() // the search hangs: the filing never went out
    tickets.filing(jiraTarget(configuration), labelOf(delivery), clock.now)
    clock.now += 61_000
    const filed = await channel.send(delivery, configuration, context)
    assert.equal(filed.ok, false, 'the hung search times out')
    const retried = await channel.send(delivery, configuration, context)
    assert.deepEqual(retried.ok && retried.tickets?.map((t) => t.action), ['created'])
    assert.equal(jira.issues.length, 1)

    const refused = posture('e-2')
    const label = labelOf(refused)
    jira.failWhen((r) => r.path === '/rest/api/3/issue' && r.method === 'POST', {
      status: 400,
      body: { errorMessages: ['no'], errors: {} },
    })
    jira.issues.length = 0
    const answer = await channel.send(refused, configuration, context)
    assert.equal(!answer.ok && answer.kind, 'permanent')
    assert.equal(tickets.unanswered(jiraTarget(configuration), label), undefined)
  })

  it('keeps a filing in doubt when Jira’s answer names no issue: the retry waits, then files', async () => {
    const { channel, tickets, clock } = clockedChannel()
    const delivery = posture('e-1')
    jira.failWhen((r) => r.path === '/rest/api/3/issue' && r.method === 'POST', { status: 201, body: {} })
    const unread = await channel.send(delivery, configuration, context)
    assert.equal(!unread.ok && unread.code, 'unexpected_response')
    assert.equal(tickets.unanswered(jiraTarget(configuration), labelOf(delivery)), clock.now)
    const waiting = await channel.send(delivery, configuration, context)
    assert.deepEqual(!waiting.ok && [waiting.code, waiting.retryAfterMs], ['ticket_unconfirmed', 60_000])
    clock.now += 60_000
    const filed = await channel.send(delivery, configuration, context)
    assert.deepEqual(filed.ok && filed.tickets?.map((t) => t.action), ['created'])
    assert.equal(jira.issues.length, 1)
    assert.equal(tickets.unanswered(jiraTarget(configuration), labelOf(delivery)), undefined)
  })

  it("reports Jira's refusals with its field errors, and its rate limit as retriable", async () => {
    const channel = createJiraChannel({ guard })
    const bad = await channel.send(posture('e-1'), { ...configuration, priority: 'Urgent!!' }, context)
    assert.deepEqual(bad.ok ? bad : [bad.kind, bad.status, bad.error], [
      'permanent',
      400,
      'HTTP 400: priority: Specify the Priority (name) in the string format',
    ])
    const unauthorized = await channel.send(posture('e-1'), { ...configuration, apiToken: 'wrong' }, context)
    assert.deepEqual(unauthorized.ok ? unauthorized : [unauthorized.kind, unauthorized.status], [
      'permanent',
      401,
    ])
    jira.failNext({
      status: 429,
      headers: { 'retry-after': '30' },
      body: { errorMessages: ['Rate limit exceeded.'] },
    })
    const limited = await channel.send(posture('e-1'), configuration, context)
    assert.deepEqual(limited.ok ? limited : [limited.kind, limited.retryAfterMs, limited.error], [
      'retriable',
      30_000,
      'HTTP 429: Rate limit exceeded.',
    ])
    const invalidKey = await channel.send(
      posture('e-1'),
      { ...configuration, projectKey: 'SEC" OR project != "X' },
      context,
    )
    assert.deepEqual(invalidKey.ok ? invalidKey : [invalidKey.kind, invalidKey.code], [
      'permanent',
      'configuration',
    ])
    assert.equal(jira.issues.length, 0)
  })

  it('says what came back when Jira’s address answers 200 with something that is not its API’s JSON, and files nothing', async () => {
    const channel = createJiraChannel({ guard })
    const answers = [
      { status: 200, body: 'Welcome to the Jira web UI' },
      { status: 200, body: '' },
      { status: 200, body: { message: 'a JSON object without issues' } },
    ]
    const errors: string[] = []
    for (const answer of answers) {
      jira.failNext(answer)
      const result = await channel.send(posture('e-1'), configuration, context)
      assert.ok(!result.ok, JSON.stringify(result))
      assert.deepEqual([result.kind, result.code, result.status], ['permanent', 'unexpected_response', 200])
      errors.push(result.error)
    }
    assert.deepEqual(errors, [
      'unexpected response from the Jira API: HTTP 200 without JSON',
      'unexpected response from the Jira API: HTTP 200 without a list of issues',
      'unexpected response from the Jira API: HTTP 200 without a list of issues',
    ])
    // A search answer without its list is not "no issue yet": nothing was filed on it.
    assert.equal(jira.issues.length, 0)
  })

  it('renders the configuration summary and description templates', async () => {
    const channel = createJiraChannel({ guard })
    const templated = {
      ...configuration,
      templates: {
        summary: '[Herald] {{ resource }}\nsecond line',
        description: 'Profile: {{ data.profile }}',
      },
    }
    await channel.send(posture('e-1'), templated, context)
    assert.equal(jira.issues[0]?.summary, '[Herald] my-test-validation-scan second line')
    assert.deepEqual(jira.issues[0]?.description, {
      type: 'doc',
      version: 1,
      content: [
        {
          type: 'paragraph',
          content: [{ type: 'text', text: 'Profile: CIS IBM Cloud Foundations Benchmark v1.1.0' }],
        },
      ],
    })
  })

  it('shares its issues between configurations filing into one project: one issue, no repeat comment for the same event', async () => {
    const channel = createJiraChannel({ guard })
    const other = { ...configuration, id: 'cfg-jira-2', labels: ['other'] }
    const event = aPostureEvent({ id: 'e-both' })
    const first = await channel.send(
      aDelivery(event, { configurationId: configuration.id }),
      configuration,
      context,
    )
    // Search still lags: the other configuration finds the issue through the shared recent tickets.
    const second = await channel.send(aDelivery(event, { configurationId: other.id }), other, context)
    assert.deepEqual(
      [first.ok && first.tickets?.[0]?.action, second.ok && second.tickets?.[0]?.action],
      ['created', 'unchanged'],
    )
    assert.equal(jira.issues.length, 1)
    assert.equal(jira.comments.length, 0, 'no "this happened again" for the same event')
    const [a, b] = await Promise.all([
      channel.send(
        aDelivery(aPostureEvent({ id: 'e-3' }), { configurationId: configuration.id }),
        configuration,
        context,
      ),
      channel.send(aDelivery(aPostureEvent({ id: 'e-3' }), { configurationId: other.id }), other, context),
    ])
    assert.deepEqual(
      [a.ok && a.tickets?.[0]?.action, b.ok && b.tickets?.[0]?.action],
      ['commented', 'unchanged'],
    )
    assert.equal(jira.comments.length, 1, 'a later event comments once, whichever configurations send it')
  })

  /** Two Herald instances sharing the queues: each its own serial queues and its own data dir. */
  const twoInstances = async <T>(
    work: (
      first: ReturnType<typeof createJiraChannel>,
      second: ReturnType<typeof createJiraChannel>,
    ) => Promise<T>,
  ): Promise<T> => {
    const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'herald-jira-recent-')))
    const stores = dirs.map((dir) => createSqliteRecentTickets(join(dir, 'recent-tickets.sqlite')))
    try {
      const [first, second] = stores.map((recentTickets) => createJiraChannel({ guard, recentTickets }))
      return await work(
        first as ReturnType<typeof createJiraChannel>,
        second as ReturnType<typeof createJiraChannel>,
      )
    } finally {
      for (const store of stores) store.close()
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    }
  }
  const other = () => ({ ...configuration, id: 'cfg-jira-2' })
  const isOpen = (issue: { status: string }) => issue.status !== '10002'

  it('converges to one open issue when two Herald instances file one key at once, where search shows both', async () => {
    const current = await startJiraStandIn({ projectKey: 'SEC', email: EMAIL, apiToken: API_TOKEN })
    try {
      const at = { ...configuration, url: current.siteUrl }
      // Both search before either files: each sees no issue.
      current.slowCreates(300, 2)
      const [a, b] = await twoInstances((first, second) =>
        Promise.all([
          first.send(aDelivery(aPostureEvent({ id: 'e-a' }), { configurationId: at.id }), at, context),
          second.send(
            aDelivery(aPostureEvent({ id: 'e-b' }), { configurationId: 'cfg-jira-2' }),
            { ...at, id: 'cfg-jira-2' },
            context,
          ),
        ]),
      )
      assert.equal(a.ok, true, JSON.stringify(a))
      assert.equal(b.ok, true, JSON.stringify(b))
      assert.equal(current.issues.length, 2, 'both filed')
      assert.deepEqual(
        current.issues.filter(isOpen).map((i) => i.key),
        ['SEC-1'],
        'the oldest is kept',
      )
      const duplicate = current.issues[1]
      assert.equal(duplicate?.status, '10002')
      assert.ok(
        !duplicate?.labels.some((l) => l.startsWith('herald-')),
        'the duplicate is not the key’s any more',
      )
      const onDuplicate = current.comments.filter((c) => c.issue === duplicate?.id)
      assert.equal(onDuplicate.length, 1)
      assert.match(JSON.stringify(onDuplicate[0]?.body), /Duplicate of SEC-1\b/)
      const onKept = current.comments.filter((c) => c.issue === current.issues[0]?.id)
      assert.equal(onKept.length, 1, 'the closed one’s event is told on the kept one')
      assert.match(JSON.stringify(onKept[0]?.body), /This happened again\./)
      assert.deepEqual(
        [a, b].map((r) => (r.ok ? r.tickets?.[0]?.ticket : undefined)),
        ['SEC-1', 'SEC-1'],
      )
    } finally {
      await current.close()
    }
  })

  it('converges two instances’ issues of one key at the key’s next delivery when search lagged behind both filings', async () => {
    jira.slowCreates(300, 2)
    await twoInstances(async (first, second) => {
      const [a, b] = await Promise.all([
        first.send(
          aDelivery(aPostureEvent({ id: 'e-a' }), { configurationId: configuration.id }),
          configuration,
          context,
        ),
        second.send(
          aDelivery(aPostureEvent({ id: 'e-b' }), { configurationId: 'cfg-jira-2' }),
          other(),
          context,
        ),
      ])
      assert.deepEqual(
        [a, b].map((r) => r.ok && r.tickets?.[0]?.action),
        ['created', 'created'],
      )
      // Each saw only its own: the limit of Jira's lagging search.
      assert.equal(jira.issues.filter(isOpen).length, 2)
      // The search's lag passes; the key's next event converges them.
      for (const issue of jira.issues) issue.createdAt -= 60_000
      const next = await second.send(aDelivery(aPostureEvent({ id: 'e-c' })), other(), context)
      assert.deepEqual(next.ok && [next.tickets?.[0]?.ticket, next.tickets?.[0]?.action], [
        'SEC-1',
        'commented',
      ])
      assert.deepEqual(
        jira.issues.filter(isOpen).map((i) => i.key),
        ['SEC-1'],
      )
      assert.match(
        JSON.stringify(jira.comments.find((c) => c.issue === jira.issues[1]?.id)?.body),
        /Duplicate of SEC-1\b/,
      )
    })
  })
})
