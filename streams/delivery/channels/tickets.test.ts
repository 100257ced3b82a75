import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createMemoryRecentTickets } from './recent-tickets.ts'
import { aDelivery, anEvent, aPostureEvent, catalogData } from './test-fixtures.ts'
import {
  deliveryFor,
  keyFilings,
  ticketSubjects,
  ticketSubjectsOf,
  UnconfirmedFilingError,
} from './tickets.ts'

const finding = (id: string, pkg = 'openssl') => ({
  id,
  severity: 'high',
  package: pkg,
  version: '1',
  type: 'deb',
  fix_version: null,
  kev: false,
})

describe('ticketSubjectsOf', () => {
  it('files one ticket per new or changed finding, keyed by account, resource and finding', () => {
    const event = anEvent({ data: catalogData('user.checks.tag.vulnerabilities.update', 1) })
    const subjects = ticketSubjectsOf(event, 20)
    assert.deepEqual(
      subjects.map((s) => s.key),
      [
        'acme | image_tag:docker.io/library/nginx:1.27 | vulnerability:CVE-2024-6119:openssl@3.0.13-1~deb12u1',
      ],
    )
    assert.match(subjects[0]?.hash ?? '', /^[0-9a-f]{16}$/)
    assert.deepEqual(
      subjects[0]?.findings?.map((f) => f.id),
      ['CVE-2024-6119'],
    )
  })

  it('gives the same finding on the same resource the same key, whatever else the event says', () => {
    const one = ticketSubjectsOf(
      anEvent({ id: 'a', data: catalogData('user.checks.tag.vulnerabilities.update', 0) }),
      20,
    )
    const other = ticketSubjectsOf(
      anEvent({
        id: 'b',
        time: '2027-01-01T00:00:00Z',
        data: catalogData('user.checks.tag.vulnerabilities.update', 1),
      }),
      20,
    )
    assert.equal(one[0]?.hash, other[0]?.hash)
    const elsewhere = ticketSubjectsOf(anEvent({ account: 'globex' }), 20)
    assert.notEqual(one[0]?.hash, elsewhere[0]?.hash)
  })

  it('keys an event without a resource type by the catalog’s, as its message names it', () => {
    const data = catalogData('user.checks.tag.vulnerabilities.update', 0)
    const typed = ticketSubjectsOf(anEvent({ data }), 20)
    const untyped = ticketSubjectsOf(anEvent({ data, resourcetype: undefined }), 20)
    assert.equal(untyped[0]?.hash, typed[0]?.hash)
    assert.match(untyped[0]?.key ?? '', /^acme \| image_tag:/)
    // An event type the catalog does not know is keyed as its message shows it.
    const unknown = ticketSubjectsOf(
      anEvent({ type: 'com.example.thing', resourcetype: undefined, data: {} }),
      20,
    )
    assert.match(unknown[0]?.key ?? '', /^acme \| unknown:\/engine\/policy \| com\.example\.thing$/)
  })

  it('files one ticket for the tag when there are more findings than tickets allowed', () => {
    const data = {
      full_tag: 't:1',
      digest: 'sha256:1',
      added: ['A', 'B', 'C'].map((id) => finding(id)),
      removed: [],
      updated: [],
    }
    assert.equal(ticketSubjectsOf(anEvent({ data }), 3).length, 3)
    const grouped = ticketSubjectsOf(anEvent({ data }), 2)
    assert.deepEqual(
      grouped.map((s) => [s.key, s.findings?.length]),
      [['acme | image_tag:t:1 | vulnerabilities', 3]],
    )
  })

  it('marks each finding’s ticket with its tag’s group, which no ticket key has', () => {
    const data = (ids: string[]) => ({
      full_tag: 't:1',
      digest: 'sha256:1',
      added: ids.map((id) => finding(id)),
      removed: [],
      updated: [],
    })
    const [a, b] = ticketSubjectsOf(anEvent({ data: data(['A', 'B']) }), 20)
    assert.match(a?.group ?? '', /^[0-9a-f]{16}$/)
    assert.equal(a?.group, b?.group)
    const [grouped] = ticketSubjectsOf(anEvent({ data: data(['A', 'B']) }), 1)
    assert.equal(grouped?.group, undefined)
    assert.notEqual(grouped?.hash, a?.group)
    const [other] = ticketSubjectsOf(anEvent({ data: { ...data(['A']), full_tag: 't:2' } }), 20)
    assert.notEqual(other?.group, a?.group)
  })

  it('files nothing for an update that only removed findings, or a passing evaluation', () => {
    assert.deepEqual(
      ticketSubjectsOf(
        anEvent({ data: { full_tag: 't', digest: 'd', added: [], removed: [finding('X')], updated: [] } }),
        20,
      ),
      [],
    )
    const pass = { full_tag: 't', digest: 'd', curr_eval: { status: 'pass' } }
    assert.deepEqual(
      ticketSubjectsOf(anEvent({ type: 'user.checks.tag.policy_evaluation.update', data: pass }), 20),
      [],
    )
  })

  it('files a failing evaluation per tag and policy bundle, other events per resource and type', () => {
    const policy = anEvent({
      type: 'user.checks.tag.policy_evaluation.update',
      data: catalogData('user.checks.tag.policy_evaluation.update', 1),
    })
    assert.deepEqual(
      ticketSubjectsOf(policy, 20).map((s) => s.key),
      ['acme | image_tag:docker.io/library/nginx:1.27 | policy:2c53a13c-1765-11e8-82ef-23527761d060'],
    )
    assert.deepEqual(
      ticketSubjectsOf(aPostureEvent(), 20).map((s) => s.key),
      [
        'acme | posture_scan:my-test-validation-scan | com.ibm.cloud.compliance.posture/posture-scan-completed',
      ],
    )
  })
})

describe('ticketSubjects', () => {
  it('files a digest as the one ticket of its configuration, whatever events its window held', () => {
    const first = anEvent({ id: 'e1', data: catalogData('user.checks.tag.vulnerabilities.update', 0) })
    const repeat = anEvent({ id: 'e2', data: catalogData('user.checks.tag.vulnerabilities.update', 1) })
    const posture = aPostureEvent()
    const digest = {
      windowStart: 's',
      windowEnd: 'e',
      total: 30,
      counts: [],
      events: [posture, repeat, first],
    }
    const delivery = aDelivery(posture, { digest })
    const subjects = ticketSubjects(delivery, 20)
    assert.equal(subjects.length, 1)
    assert.equal(subjects[0]?.key, 'acme | configuration:cfg-1 | digest')
    // The next window's digest files under the same key; another configuration's does not.
    const next = aDelivery(first, { digest: { ...digest, windowStart: 'e', events: [first] } })
    assert.equal(ticketSubjects(next, 20)[0]?.hash, subjects[0]?.hash)
    assert.notEqual(
      ticketSubjects(aDelivery(first, { configurationId: 'cfg-2', digest }), 20)[0]?.hash,
      subjects[0]?.hash,
    )
    // It is rendered from the whole digest.
    assert.deepEqual(deliveryFor(delivery, subjects[0] ?? assert.fail()).digest, digest)
  })

  it('files the same vulnerability in one package at two versions as two findings, two tickets', () => {
    const log4j = (version: string, path: string) => ({
      ...finding('CVE-2021-44228', 'log4j-core'),
      version,
      type: 'java-archive',
      package_path: path,
    })
    const data = {
      full_tag: 'docker.io/acme/api:1',
      digest: 'sha256:ab',
      // Two copies of 2.14.0 are one finding, as Herald's reports count them.
      added: [log4j('2.14.0', '/app/a.jar'), log4j('2.16.0', '/opt/b.jar'), log4j('2.14.0', '/opt/c.jar')],
      removed: [],
      updated: [],
    }
    const subjects = ticketSubjects(aDelivery(anEvent({ data })), 20)
    assert.deepEqual(
      subjects.map((s) => [s.key.split(' | ')[2], s.findings?.map((f) => f.version)]),
      [
        ['vulnerability:CVE-2021-44228:log4j-core@2.14.0', ['2.14.0']],
        ['vulnerability:CVE-2021-44228:log4j-core@2.16.0', ['2.16.0']],
      ],
    )
  })

  it('files a single delivery by its own event', () => {
    const posture = aPostureEvent()
    const [subject] = ticketSubjects(aDelivery(posture), 20)
    assert.equal(subject?.event.id, 'evt-posture-1')
    assert.equal(deliveryFor(aDelivery(posture), subject ?? assert.fail()).digest, undefined)
  })
})

describe('keyFilings', () => {
  const setup = () => {
    const recentTickets = createMemoryRecentTickets()
    const clock = { now: Date.UTC(2026, 10, 22, 10) }
    const steps: string[] = []
    const filings = keyFilings({
      recentTickets,
      target: 'github https://api.github.com acme/security',
      label: 'herald:0123456789abcdef',
      system: 'GitHub',
      doubtMs: 60_000,
      clock: () => clock.now,
      beforeWrite: async () => {
        steps.push('slot')
      },
    })
    const unanswered = () =>
      recentTickets.unanswered('github https://api.github.com acme/security', 'herald:0123456789abcdef')
    return { filings, clock, steps, unanswered }
  }
  const tickets = [
    { id: 2, open: false },
    { id: 1, open: false },
  ]
  const isOpen = (ticket: { open: boolean }) => ticket.open
  const waitOf = (f: () => unknown): number | undefined => {
    try {
      f()
      return undefined
    } catch (error) {
      if (error instanceof UnconfirmedFilingError) return error.waitMs
      throw error
    }
  }

  it('writes the filing after its write slot and before its request, and settles it with the answer', async () => {
    const { filings, clock, steps, unanswered } = setup()
    const ticket = await filings.create(
      async () => {
        steps.push(`request, in doubt since ${unanswered()}`)
        return { id: 3 }
      },
      () => true,
    )
    assert.deepEqual(ticket, { id: 3 })
    assert.deepEqual(steps, ['slot', `request, in doubt since ${clock.now}`])
    assert.equal(unanswered(), undefined)
  })

  it('forgets a filing the system refused, and keeps one whose answer never came or named no ticket', async () => {
    const { filings, clock, unanswered } = setup()
    const refusal = new Error('HTTP 422')
    await assert.rejects(
      filings.create(
        () => Promise.reject(refusal),
        (error) => error === refusal,
      ),
      refusal,
    )
    assert.equal(unanswered(), undefined)
    await assert.rejects(
      filings.create(
        () => Promise.reject(new Error('timeout')),
        (error) => error === refusal,
      ),
      /timeout/,
    )
    assert.equal(unanswered(), clock.now)
  })

  it('waits out a filing in doubt unless the key’s ticket shows open, then works on the newest', async () => {
    const { filings, clock, unanswered } = setup()
    assert.equal(filings.found([], isOpen), undefined, 'nothing filed, nothing in doubt')
    await assert.rejects(
      filings.create(
        () => Promise.reject(new Error('HTTP 502')),
        () => false,
      ),
    )
    // Neither no ticket nor only closed ones: the filing may still be on its way.
    assert.equal(
      waitOf(() => filings.found([], isOpen)),
      60_000,
    )
    clock.now += 20_000
    assert.equal(
      waitOf(() => filings.found(tickets, isOpen)),
      40_000,
    )
    assert.throws(
      () => filings.found(tickets, isOpen),
      /filed at .* GitHub does not show it yet; looking again in 40 s/,
    )
    clock.now += 40_000
    assert.deepEqual(filings.found(tickets, isOpen), { id: 2, open: false })
    assert.equal(filings.found([], isOpen), undefined)
    assert.equal(
      unanswered(),
      clock.now - 60_000,
      'still unanswered: only an open ticket or an answer settles it',
    )

    // The ticket showing open settles it at once.
    await assert.rejects(
      filings.create(
        () => Promise.reject(new Error('HTTP 502')),
        () => false,
      ),
    )
    assert.deepEqual(filings.found([{ id: 4, open: true }, ...tickets], isOpen), { id: 4, open: true })
    assert.equal(unanswered(), undefined)
    assert.deepEqual(filings.found(tickets, isOpen), { id: 2, open: false })
  })
})
