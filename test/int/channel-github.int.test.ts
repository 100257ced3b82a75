import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, beforeEach, describe, it } from 'node:test'
import type { LogFields } from '../../src/observability/index.ts'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import {
  aDelivery,
  anEvent,
  aPostureEvent,
  catalogData,
} from '../../streams/delivery/channels/test-fixtures.ts'
import {
  createGitHubChannel,
  createSqliteRecentTickets,
  type GitHubConfiguration,
} from '../../streams/delivery/index.ts'
import { type GitHubStandIn, startGitHubStandIn } from '../support/github-stand-in.ts'

const TOKEN = 'ghp_IntegrationToken0123456789abcdef'

describe('GitHub channel against a GitHub stand-in', () => {
  let github: GitHubStandIn
  const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
  const lines: { event: string; fields: LogFields | undefined }[] = []
  const channel = createGitHubChannel({
    guard,
    logger: (_level, event, fields) => lines.push({ event, fields }),
  })
  let configuration: GitHubConfiguration
  const context = { uiUrl: 'https://herald.example.com', timeoutMs: 2_000 }

  before(async () => {
    github = await startGitHubStandIn({
      owner: 'acme',
      repo: 'security',
      token: TOKEN,
      collaborators: ['octocat'],
      milestones: [3],
    })
    configuration = {
      endpoint: 'github',
      id: 'cfg-gh',
      account: 'acme',
      apiUrl: github.apiUrl,
      owner: 'acme',
      repository: 'security',
      token: TOKEN,
      labels: ['security', 'herald'],
      assignees: ['octocat'],
      milestone: 3,
    }
  })
  beforeEach(() => {
    github.issues.length = 0
    github.comments.length = 0
    github.pushAccess = true
  })
  after(async () => {
    guard.close()
    await github.close()
  })

  const posture = (id: string) => aDelivery(aPostureEvent({ id }))
  /** A channel of its own (its own filings in doubt), on a clock the test moves. */
  const clockedChannel = () => {
    const clock = { now: Date.now() }
    return { clock, channel: createGitHubChannel({ guard, clock: () => clock.now }) }
  }

  it('files an issue with the labels, assignees and milestone, and marks it', async () => {
    const delivery = posture('e-1')
    const result = await channel.send(delivery, configuration, context)
    assert.equal(result.ok, true, JSON.stringify(result))
    assert.deepEqual(github.problems, [])
    assert.equal(github.issues.length, 1)
    const [issue] = github.issues
    assert.equal(issue?.title, 'Validation completed: my-test-validation-scan')
    assert.deepEqual(issue?.assignees, ['octocat'])
    assert.equal(issue?.milestone, 3)
    const keyLabel = issue?.labels.find((l) => l.startsWith('herald:'))
    assert.deepEqual(issue?.labels, ['security', 'herald', keyLabel])
    assert.match(issue?.body ?? '', /\[View in Herald\]\(https:\/\/herald\.example\.com\/events\/e-1\)/)
    assert.match(
      issue?.body ?? '',
      new RegExp(
        `<!-- herald:ticket key=[0-9a-f]{16} delivery=${delivery.deliveryId} event=${encodeURIComponent(`${delivery.event.source} e-1`)} -->`,
      ),
    )
    assert.deepEqual(result.ok && result.tickets, [
      {
        key: keyLabel?.slice('herald:'.length),
        action: 'created',
        ticket: 'acme/security#1',
        url: 'https://github.example/acme/security/issues/1',
      },
    ])
    assert.equal(result.ok && result.response, 'created acme/security#1')
    const request = github.requests.find((r) => r.method === 'POST')
    assert.equal(request?.headers.authorization, `token ${TOKEN}`)
    assert.equal(lines.at(-1)?.event, 'delivery.github.ticket_created')
  })

  it('comments on the open issue when the same key comes again, instead of filing another', async () => {
    await channel.send(posture('e-1'), configuration, context)
    const again = await channel.send(posture('e-2'), configuration, context)
    assert.equal(again.ok && again.tickets?.[0]?.action, 'commented')
    assert.equal(github.issues.length, 1)
    assert.equal(github.comments.length, 1)
    assert.match(github.comments[0]?.body ?? '', /^This happened again\./)
    assert.match(github.comments[0]?.body ?? '', /<!-- herald:comment delivery=[0-9a-f]{64} event=\S+ -->/)
  })

  it('does nothing twice when a delivery is retried or replayed', async () => {
    const first = posture('e-1')
    const second = posture('e-2')
    await channel.send(first, configuration, context)
    await channel.send(second, configuration, context)
    const replayFirst = await channel.send(first, configuration, context)
    const replaySecond = await channel.send(second, configuration, context)
    assert.equal(replayFirst.ok && replayFirst.tickets?.[0]?.action, 'unchanged')
    assert.equal(replaySecond.ok && replaySecond.tickets?.[0]?.action, 'unchanged')
    assert.equal(github.issues.length, 1)
    assert.equal(github.comments.length, 1)
  })

  it('finds its own comment past the first page of comments, and does not comment twice', async () => {
    await channel.send(posture('e-0'), configuration, context)
    const issue = github.issues[0]?.number as number
    // 150 comments by repeats and people since the delivery was decided: a page and a half.
    const at = new Date().toISOString()
    for (let i = 0; i < 150; i++)
      github.comments.push({ id: 9000 + i, issue, body: `comment ${i}`, created_at: at, updated_at: at })
    const late = posture('e-late')
    const first = await channel.send(late, configuration, context)
    const retry = await channel.send(late, configuration, context)
    assert.equal(first.ok && first.tickets?.[0]?.action, 'commented')
    assert.equal(retry.ok && retry.tickets?.[0]?.action, 'unchanged')
    const marker = `<!-- herald:comment delivery=${late.deliveryId} `
    assert.equal(github.comments.filter((c) => c.body.includes(marker)).length, 1)
  })

  it('comments on a busy issue whose comments since the lookback weigh more than 1 MiB a page of 100', async () => {
    await channel.send(posture('e-0'), configuration, context)
    const issue = github.issues[0]?.number as number
    // 100 comments of 40 KB: a page of 32 is still past what Herald reads of an answer.
    const at = new Date().toISOString()
    for (let i = 0; i < 100; i++)
      github.comments.push({
        id: 9000 + i,
        issue,
        body: `${i} ${'x'.repeat(40_000)}`,
        created_at: at,
        updated_at: at,
      })
    const repeat = posture('e-busy')
    const first = await channel.send(repeat, configuration, context)
    assert.equal(first.ok && first.tickets?.[0]?.action, 'commented', JSON.stringify(first))
    const retry = await channel.send(repeat, configuration, context)
    assert.equal(retry.ok && retry.tickets?.[0]?.action, 'unchanged', JSON.stringify(retry))
    const marker = `<!-- herald:comment delivery=${repeat.deliveryId} `
    assert.equal(github.comments.filter((c) => c.body.includes(marker)).length, 1)
    const pages = github.requests.filter((r) => r.path.endsWith('/comments') && r.method === 'GET')
    assert.ok(
      pages.some((r) => r.query.get('per_page') === '16'),
      'a page too large is asked for again in smaller pages',
    )
  })

  it('fails as response_too_large, naming the request, when a listing is more than Herald reads, and files nothing', async () => {
    await channel.send(posture('e-0'), configuration, context)
    const [issue] = github.issues
    assert.ok(issue !== undefined)
    // Eleven issues of the key, each body 65,536 two-byte characters: 1.4 MB in a page of ten.
    const at = new Date().toISOString()
    for (let i = 0; i < 10; i++)
      github.issues.push({ ...issue, number: issue.number + 1 + i, body: 'é'.repeat(65_536), created_at: at })
    const result = await channel.send(posture('e-big'), configuration, context)
    assert.ok(!result.ok, JSON.stringify(result))
    assert.deepEqual([result.kind, result.code, result.status], ['permanent', 'response_too_large', 200])
    assert.match(
      result.error,
      /^GET \/repos\/acme\/security\/issues answered HTTP 200 with more than Herald reads/,
    )
    assert.equal(github.comments.length, 0)
    assert.equal(github.issues.length, 11)
  })

  it('reopens the issue, with a comment, when it comes back after being closed', async () => {
    await channel.send(posture('e-1'), configuration, context)
    github.closeIssue(1)
    const regression = await channel.send(posture('e-3'), configuration, context)
    assert.equal(regression.ok && regression.tickets?.[0]?.action, 'reopened')
    assert.equal(github.issues.length, 1)
    assert.equal(github.issues[0]?.state, 'open')
    assert.equal(github.issues[0]?.state_reason, 'reopened')
    assert.match(
      github.comments.at(-1)?.body ?? '',
      /^Regression: this happened again after the ticket was closed\./,
    )
    // And a repeat of the regression comments on the reopened issue.
    const repeat = await channel.send(posture('e-4'), configuration, context)
    assert.equal(repeat.ok && repeat.tickets?.[0]?.action, 'commented')
    assert.equal(github.issues.length, 1)
  })

  it('leaves an issue closed as not planned alone, and says so', async () => {
    await channel.send(posture('e-1'), configuration, context)
    github.closeIssue(1, 'not_planned')
    const result = await channel.send(posture('e-5'), configuration, context)
    assert.equal(result.ok && result.tickets?.[0]?.action, 'unchanged')
    assert.match((result.ok && result.notes?.[0]) || '', /closed as not planned/)
    assert.equal(github.issues[0]?.state, 'closed')
    assert.equal(github.comments.length, 0)
  })

  it('files one issue per new finding of a vulnerability update, titled by the finding', async () => {
    const data = {
      full_tag: 'docker.io/library/nginx:1.27',
      digest: 'sha256:1',
      added: [
        {
          id: 'CVE-1',
          severity: 'high',
          package: 'openssl',
          version: '3',
          type: 'deb',
          fix_version: null,
          kev: false,
        },
        {
          id: 'CVE-2',
          severity: 'low',
          package: 'zlib',
          version: '1',
          type: 'deb',
          fix_version: '1.1',
          kev: false,
        },
      ],
      removed: [],
      updated: [],
    }
    // Each write after the first waits for a slot of the rate limit (the attempt took one for the first).
    const before = github.requests.filter((r) => r.method !== 'GET').length
    const writes = () => github.requests.filter((r) => r.method !== 'GET').length - before
    const pacedAfter: number[] = []
    const result = await channel.send(aDelivery(anEvent({ id: 'v-1', data })), configuration, {
      ...context,
      pace: async () => void pacedAfter.push(writes()),
    })
    assert.deepEqual(pacedAfter, [1], 'one wait, between the two filings')
    assert.deepEqual(
      github.issues.map((i) => i.title),
      [
        'CVE-1 (high) in openssl 3: docker.io/library/nginx:1.27',
        'CVE-2 (low) in zlib 1: docker.io/library/nginx:1.27',
      ],
    )
    assert.deepEqual(result.ok && result.tickets?.map((t) => t.action), ['created', 'created'])
    // A later update with one of them changed comments on its issue only.
    const later = await channel.send(
      aDelivery(
        anEvent({
          id: 'v-2',
          data: { ...data, added: [], updated: [{ ...data.added[1], severity: 'medium' }] },
        }),
      ),
      configuration,
      context,
    )
    assert.deepEqual(later.ok && later.tickets?.map((t) => [t.ticket, t.action]), [
      ['acme/security#2', 'commented'],
    ])
    assert.equal(github.issues.length, 2)
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
  const actions = (result: Awaited<ReturnType<typeof channel.send>>) =>
    result.ok ? result.tickets?.map((t) => [t.ticket, t.action]) : result

  it('comments on the tag’s open grouped issue when one of its findings comes again alone, instead of filing another', async () => {
    const grouped = await channel.send(vulnerabilities('v-all', cves(1, 21)), configuration, context)
    assert.deepEqual(actions(grouped), [['acme/security#1', 'created']])
    assert.equal(github.issues[0]?.title, 'Vulnerabilities: t:1')

    const again = await channel.send(vulnerabilities('v-one', [], ['CVE-3']), configuration, context)
    assert.deepEqual(actions(again), [['acme/security#1', 'commented']])
    assert.equal(github.issues.length, 1, 'no second issue for a finding the grouped one holds')
    assert.match(github.comments[0]?.body ?? '', /Updated: CVE-3 \\?\(critical/)
    // A finding new to the tag goes there too while the grouped issue is open.
    const added = await channel.send(vulnerabilities('v-new', ['CVE-99']), configuration, context)
    assert.deepEqual(actions(added), [['acme/security#1', 'commented']])
    assert.equal(github.issues.length, 1)

    // Once it is closed, findings are ticketed apart again: a regression of one files its own.
    github.closeIssue(1)
    const regression = await channel.send(vulnerabilities('v-back', ['CVE-3']), configuration, context)
    assert.deepEqual(actions(regression), [['acme/security#2', 'created']])
    assert.equal(github.issues[1]?.title, 'CVE-3 (high) in openssl 3: t:1')
    assert.equal(github.issues[0]?.state, 'closed')
    // And a grouped update reopens the grouped issue, without the finding that has its own.
    const many = await channel.send(vulnerabilities('v-many', cves(1, 22)), configuration, context)
    assert.deepEqual(actions(many), [
      ['acme/security#2', 'commented'],
      ['acme/security#1', 'reopened'],
    ])
    assert.doesNotMatch(github.comments.at(-1)?.body ?? '', /CVE-3 /)
    // With both open, the finding's own keeps its updates.
    const repeat = await channel.send(vulnerabilities('v-own', [], ['CVE-3']), configuration, context)
    assert.deepEqual(actions(repeat), [['acme/security#2', 'commented']])
    assert.deepEqual(github.problems, [])
  })

  it('repeats a grouped update’s findings that have open issues of their own on them, and groups only the rest', async () => {
    // Twelve findings with issues of their own: more than a page of the tag's open issues.
    const own = await channel.send(vulnerabilities('v-own', cves(1, 12)), configuration, context)
    assert.equal(own.ok && own.tickets?.length, 12)
    const grouped = await channel.send(vulnerabilities('v-all', [], cves(1, 33)), configuration, context)
    assert.ok(grouped.ok, JSON.stringify(grouped))
    assert.deepEqual(
      grouped.tickets?.map((t) => t.action),
      [...Array(12).fill('commented'), 'created'],
    )
    assert.equal(github.issues.length, 13)
    const body = github.issues[12]?.body ?? ''
    assert.equal(github.issues[12]?.title, 'Vulnerabilities: t:1')
    assert.match(body, /CVE-13 /)
    assert.doesNotMatch(body, /CVE-(1|12) /, 'a finding with an issue of its own is not grouped again')
    assert.match(github.comments.find((c) => c.issue === 1)?.body ?? '', /Updated: CVE-1 \\?\(critical/)
    // Its retry changes nothing.
    const retry = await channel.send(vulnerabilities('v-all', [], cves(1, 33)), configuration, context)
    assert.deepEqual(retry.ok && retry.tickets?.map((t) => t.action), Array(13).fill('unchanged'))
    assert.equal(github.comments.length, 12)
    assert.deepEqual(github.problems, [])
  })

  it('waits for a grouped filing whose answer never came, even after a restart, before a finding of it files its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-github-recent-'))
    const path = join(dir, 'recent-tickets.sqlite')
    const clock = { now: Date.now() }
    const start = (recentTickets: ReturnType<typeof createSqliteRecentTickets>) =>
      createGitHubChannel({ guard, recentTickets, clock: () => clock.now })
    try {
      const before = createSqliteRecentTickets(path)
      github.slowCreates(600)
      const lost = await start(before).send(vulnerabilities('v-all', cves(1, 21)), configuration, {
        ...context,
        timeoutMs: 300,
      })
      assert.equal(!lost.ok && lost.code, 'timeout')
      before.close() // killed and started again: only the file is left
      const after = createSqliteRecentTickets(path)
      try {
        const restarted = start(after)
        const waiting = await restarted.send(vulnerabilities('v-one', ['CVE-3']), configuration, context)
        assert.deepEqual(!waiting.ok && [waiting.code, waiting.retryAfterMs], ['ticket_unconfirmed', 60_000])
        await new Promise((resolve) => setTimeout(resolve, 500))
        assert.equal(github.issues.length, 1, 'GitHub filed the grouped issue; Herald never heard')
        clock.now += 60_000
        const found = await restarted.send(vulnerabilities('v-one', ['CVE-3']), configuration, context)
        assert.deepEqual(actions(found), [['acme/security#1', 'commented']])
        assert.equal(github.issues.length, 1)
      } finally {
        after.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('files nothing for an update that only resolved findings', async () => {
    const sent = github.requests.length
    const result = await channel.send(
      aDelivery(
        anEvent({
          data: { ...catalogData('user.checks.tag.vulnerabilities.update', 1), added: [], updated: [] },
        }),
      ),
      configuration,
      context,
    )
    assert.deepEqual(result.ok && [result.response, result.tickets], [
      'nothing to file: the event has no open finding',
      [],
    ])
    assert.equal(github.issues.length, 0)
    assert.equal(github.requests.length, sent)
  })

  it('ignores pull requests that carry the same label', async () => {
    await channel.send(posture('e-1'), configuration, context)
    const label = github.issues[0]?.labels.find((l) => l.startsWith('herald:')) ?? ''
    github.issues.length = 0
    github.addPullRequest([label])
    const result = await channel.send(posture('e-2'), configuration, context)
    assert.equal(result.ok && result.tickets?.[0]?.action, 'created')
    assert.equal(github.issues.filter((i) => i.pull_request === undefined).length, 1)
  })

  it('notes when GitHub dropped the key label (no push access)', async () => {
    github.pushAccess = false
    const result = await channel.send(posture('e-1'), configuration, context)
    assert.equal(result.ok, true)
    assert.match((result.ok && result.notes?.join(' ')) || '', /GitHub dropped the label herald:[0-9a-f]{16}/)
  })

  it('renders the configuration title and body templates', async () => {
    const templated = {
      ...configuration,
      templates: { title: 'Herald: {{ resource }}', body: 'Level {{ level }} at {{ time }}' },
    }
    await channel.send(posture('e-1'), templated, context)
    assert.equal(github.issues[0]?.title, 'Herald: my-test-validation-scan')
    assert.match(github.issues[0]?.body ?? '', /^Level info at 2026-11-22T10:00:00Z\n\n<!-- herald:ticket/)
  })

  it('reports what GitHub refused: an invalid assignee (permanent), bad credentials, issues turned off (gone)', async () => {
    const invalid = await channel.send(posture('e-1'), { ...configuration, assignees: ['nobody'] }, context)
    assert.deepEqual(invalid.ok ? invalid : [invalid.kind, invalid.status, invalid.error], [
      'permanent',
      422,
      'HTTP 422: Validation Failed; assignees invalid',
    ])
    const unauthorized = await channel.send(posture('e-1'), { ...configuration, token: 'ghp_wrong' }, context)
    assert.deepEqual(
      unauthorized.ok ? unauthorized : [unauthorized.kind, unauthorized.status, unauthorized.error],
      ['permanent', 401, 'HTTP 401: Bad credentials'],
    )
    github.issuesDisabled = true
    const gone = await channel.send(posture('e-1'), configuration, context)
    github.issuesDisabled = false
    assert.deepEqual(gone.ok ? gone : [gone.kind, gone.status], ['gone', 410])
  })

  it('says what came back when GitHub’s address answers 200 with something that is not its API’s JSON, and files nothing', async () => {
    const answers = [
      { status: 200, body: 'Welcome to the GitHub web UI' },
      { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>proxy</html>' },
      { status: 200, body: { message: 'a JSON object, not a list of issues' } },
    ]
    const errors: string[] = []
    for (const answer of answers) {
      github.failNext(answer)
      const result = await channel.send(posture('e-1'), configuration, context)
      assert.ok(!result.ok, JSON.stringify(result))
      assert.deepEqual([result.kind, result.code, result.status], ['permanent', 'unexpected_response', 200])
      errors.push(result.error)
    }
    assert.deepEqual(errors, [
      "unexpected response from the GitHub API: HTTP 200 without JSON (got text/plain; is api_url the REST API's base URL?)",
      "unexpected response from the GitHub API: HTTP 200 without JSON (got text/html; is api_url the REST API's base URL?)",
      'unexpected response from the GitHub API: HTTP 200 without a list of issues',
    ])
    assert.equal(github.issues.length, 0)
  })

  it("waits for GitHub's rate-limit reset", async () => {
    const reset = Math.floor(Date.now() / 1000) + 120
    github.failNext({
      status: 403,
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
      body: { message: 'API rate limit exceeded for installation.' },
    })
    const result = await channel.send(posture('e-1'), configuration, context)
    assert.ok(!result.ok)
    assert.deepEqual([result.kind, result.code], ['retriable', 'rate_limited'])
    assert.ok(
      result.retryAfterMs !== undefined && result.retryAfterMs > 100_000 && result.retryAfterMs <= 121_000,
    )
  })

  it('keeps the tickets of a partly failed delivery, and its retry files only the rest', async () => {
    const finding = (id: string) => ({
      id,
      severity: 'high',
      package: id.toLowerCase(),
      version: '1',
      type: 'deb',
      fix_version: null,
      kev: false,
    })
    const delivery = aDelivery(
      anEvent({
        id: 'v-3',
        data: {
          full_tag: 't:1',
          digest: 'sha256:2',
          added: [finding('CVE-C'), finding('CVE-D')],
          removed: [],
          updated: [],
        },
      }),
    )
    github.failWhen((r) => r.method === 'POST' && r.body.includes('"title":"CVE-D'), {
      status: 502,
      body: 'bad gateway',
    })
    const { channel: clockedGitHub, clock } = clockedChannel()
    const partial = await clockedGitHub.send(delivery, configuration, context)
    assert.ok(!partial.ok)
    assert.deepEqual([partial.kind, partial.status], ['retriable', 502])
    assert.deepEqual(
      partial.tickets?.map((t) => [t.ticket, t.action]),
      [['acme/security#1', 'created']],
    )
    // A 502 leaves the filing in doubt (GitHub may have filed it): the retry waits a minute.
    const waiting = await clockedGitHub.send(delivery, configuration, context)
    assert.deepEqual(!waiting.ok && [waiting.code, waiting.retryAfterMs], ['ticket_unconfirmed', 60_000])
    assert.deepEqual(
      waiting.tickets?.map((t) => [t.ticket, t.action]),
      [['acme/security#1', 'unchanged']],
    )
    clock.now += 60_000
    const retried = await clockedGitHub.send(delivery, configuration, context)
    assert.deepEqual(retried.ok && retried.tickets?.map((t) => [t.ticket, t.action]), [
      ['acme/security#1', 'unchanged'],
      ['acme/security#2', 'created'],
    ])
    assert.equal(github.issues.length, 2)
    assert.equal(github.comments.length, 0)
  })

  it('never files twice when GitHub files an issue after Herald stopped waiting: the retry waits, then finds it', async () => {
    const { channel: clockedGitHub, clock } = clockedChannel()
    const delivery = posture('e-slow')
    github.slowCreates(600)
    const lost = await clockedGitHub.send(delivery, configuration, { ...context, timeoutMs: 300 })
    assert.equal(!lost.ok && lost.code, 'timeout')
    // The schedule's first retry comes at once, while GitHub is still filing the issue.
    const waiting = await clockedGitHub.send(delivery, configuration, context)
    assert.deepEqual(!waiting.ok && [waiting.kind, waiting.code, waiting.retryAfterMs], [
      'retriable',
      'ticket_unconfirmed',
      60_000,
    ])
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal(github.issues.length, 1, 'GitHub filed it; Herald never heard')
    clock.now += 60_000
    const found = await clockedGitHub.send(delivery, configuration, context)
    assert.deepEqual(found.ok && found.tickets?.map((t) => t.action), ['unchanged'])
    assert.equal(github.issues.length, 1)
  })

  it('files after the wait when the lost filing never reached GitHub, and forgets a filing GitHub refused', async () => {
    const { channel: clockedGitHub, clock } = clockedChannel()
    github.failWhen((r) => r.method === 'POST', { status: 503, body: 'unavailable' })
    const failed = await clockedGitHub.send(posture('e-1'), configuration, context)
    assert.equal(!failed.ok && failed.status, 503)
    clock.now += 60_000
    const filed = await clockedGitHub.send(posture('e-1'), configuration, context)
    assert.deepEqual(filed.ok && filed.tickets?.map((t) => t.action), ['created'])

    github.issues.length = 0
    github.failWhen((r) => r.method === 'POST', { status: 422, body: { message: 'Validation Failed' } })
    const refused = await clockedGitHub.send(posture('e-2'), configuration, context)
    assert.equal(!refused.ok && refused.status, 422)
    const next = await clockedGitHub.send(posture('e-2'), configuration, context)
    assert.deepEqual(
      next.ok && next.tickets?.map((t) => t.action),
      ['created'],
      'nothing in doubt after a 422',
    )
  })

  it('keeps a filing in doubt when GitHub’s answer names no issue: the retry waits, then files', async () => {
    const { channel: clockedGitHub, clock } = clockedChannel()
    github.failWhen((r) => r.method === 'POST', { status: 201, body: {} })
    const unread = await clockedGitHub.send(posture('e-1'), configuration, context)
    assert.equal(!unread.ok && unread.code, 'unexpected_response')
    const waiting = await clockedGitHub.send(posture('e-1'), configuration, context)
    assert.deepEqual(!waiting.ok && [waiting.code, waiting.retryAfterMs], ['ticket_unconfirmed', 60_000])
    clock.now += 60_000
    const filed = await clockedGitHub.send(posture('e-1'), configuration, context)
    assert.deepEqual(filed.ok && filed.tickets?.map((t) => t.action), ['created'])
    assert.equal(github.issues.length, 1)
  })

  it('files one issue for two configurations on one repository, whose deliveries of an event run at once', async () => {
    const other = { ...configuration, id: 'cfg-gh-2', labels: ['other'] }
    github.slowCreates(200)
    const event = aPostureEvent({ id: 'e-both' })
    const [a, b] = await Promise.all([
      channel.send(aDelivery(event, { configurationId: configuration.id }), configuration, context),
      channel.send(aDelivery(event, { configurationId: other.id }), other, context),
    ])
    assert.equal(github.issues.length, 1)
    assert.deepEqual(
      [a.ok && a.tickets?.[0]?.action, b.ok && b.tickets?.[0]?.action].sort(),
      ['created', 'unchanged'],
      'the second sees the event filed already',
    )
    assert.equal(github.comments.length, 0, 'no "this happened again" for the same event')
    const later = await channel.send(
      aDelivery(aPostureEvent({ id: 'e-later' }), { configurationId: other.id }),
      other,
      context,
    )
    assert.equal(
      later.ok && later.tickets?.[0]?.action,
      'commented',
      'a later event is a repeat, whichever configuration sends it',
    )
  })

  it('converges to one open issue when two Herald instances file one key at once: the newer is closed, linking the older', async () => {
    // Two instances sharing the queues: each its own serial queues and its own data dir.
    const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'herald-github-recent-')))
    const stores = dirs.map((dir) => createSqliteRecentTickets(join(dir, 'recent-tickets.sqlite')))
    try {
      const [first, second] = stores.map((recentTickets) => createGitHubChannel({ guard, recentTickets }))
      const other = { ...configuration, id: 'cfg-gh-2' }
      // Both list before either files: each sees no issue.
      github.slowCreates(300, 2)
      const [a, b] = await Promise.all([
        first?.send(
          aDelivery(aPostureEvent({ id: 'e-a' }), { configurationId: configuration.id }),
          configuration,
          context,
        ),
        second?.send(aDelivery(aPostureEvent({ id: 'e-b' }), { configurationId: other.id }), other, context),
      ])
      assert.equal(a?.ok, true, JSON.stringify(a))
      assert.equal(b?.ok, true, JSON.stringify(b))
      assert.equal(github.issues.length, 2, 'both filed')
      const open = github.issues.filter((i) => i.state === 'open')
      assert.deepEqual(
        open.map((i) => i.number),
        [1],
        'the oldest is kept',
      )
      const closed = github.issues[1]
      assert.deepEqual([closed?.state, closed?.state_reason], ['closed', 'not_planned'])
      assert.ok(
        !closed?.labels.some((l) => l.startsWith('herald:')),
        'the closed duplicate is not the key’s any more',
      )
      assert.deepEqual(closed?.labels, ['security', 'herald'])
      const onClosed = github.comments.filter((c) => c.issue === 2)
      assert.equal(onClosed.length, 1)
      assert.match(onClosed[0]?.body ?? '', /^Duplicate of #1\b/)
      // The closed one's event is told on the kept one, once.
      const onKept = github.comments.filter((c) => c.issue === 1)
      assert.equal(onKept.length, 1)
      assert.match(onKept[0]?.body ?? '', /^This happened again\./)
      const results = [a, b].map((r) => r?.ok && r.tickets?.[0])
      assert.deepEqual(results.map((t) => t?.ticket).sort(), ['acme/security#1', 'acme/security#1'])
      // Once the kept issue is closed, a regression reopens it; the duplicate stays closed.
      github.closeIssue(1)
      const regression = await first?.send(posture('e-c'), configuration, context)
      assert.equal(regression?.ok && regression.tickets?.[0]?.action, 'reopened', JSON.stringify(regression))
      assert.deepEqual(
        github.issues.map((i) => i.state),
        ['open', 'closed'],
      )
    } finally {
      for (const store of stores) store.close()
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    }
  })

  it('closes a duplicate it finds open (a filer stopped before converging), keeping the oldest', async () => {
    await channel.send(posture('e-1'), configuration, context)
    const [kept] = github.issues
    assert.ok(kept !== undefined)
    github.issues.push({ ...kept, number: 2, labels: [...kept.labels] })
    const repeat = await channel.send(posture('e-2'), configuration, context)
    assert.deepEqual(repeat.ok && [repeat.tickets?.[0]?.action, repeat.tickets?.[0]?.ticket], [
      'commented',
      'acme/security#1',
    ])
    assert.deepEqual(
      github.issues.map((i) => i.state),
      ['open', 'closed'],
    )
    assert.match(github.comments.find((c) => c.issue === 2)?.body ?? '', /^Duplicate of #1\b/)
  })
})
