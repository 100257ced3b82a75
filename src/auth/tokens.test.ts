import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isHeraldError } from '../errors/index.ts'
import { decideToken, evolveToken, type TokenCommand, type TokenEvent, type TokenState } from './tokens.ts'

const now = Date.UTC(2026, 10, 22, 12, 0, 0)
const issue: TokenCommand = {
  type: 'IssueToken',
  data: { tokenId: 't1', account: 'acme', role: 'read-only', tokenHash: 'ab', issuedBy: 'admin/admin' },
  now,
}
const issued: TokenEvent = {
  type: 'TokenIssued',
  data: {
    tokenId: 't1',
    account: 'acme',
    role: 'read-only',
    description: '',
    tokenHash: 'ab',
    issuedBy: 'admin/admin',
    issuedAt: '2026-11-22T12:00:00.000Z',
  },
}
const revoke: TokenCommand = { type: 'RevokeToken', data: { tokenId: 't1', revokedBy: 'admin/admin' }, now }

/** given(events).when(command) → the events decided, or the error thrown. */
const given = (events: readonly TokenEvent[]) => ({
  when: (command: TokenCommand) => {
    const state = events.reduce<TokenState>(evolveToken, null)
    try {
      return { events: decideToken(command, state) }
    } catch (error) {
      return { error }
    }
  },
})

describe('token decider', () => {
  it('issues a new token', () => {
    assert.deepEqual(given([]).when(issue), { events: [issued] })
  })

  it('issues admin tokens for the admin account only: an account’s admin would reach every account', () => {
    const admin = (account: string): TokenCommand => ({
      ...issue,
      data: { ...issue.data, account, role: 'admin' },
    })
    const refused = given([]).when(admin('acme'))
    assert.ok('error' in refused && isHeraldError(refused.error), JSON.stringify(refused))
    assert.equal(refused.error.code, 'validation_failed')
    assert.deepEqual((refused.error as unknown as { issues: unknown }).issues, [
      {
        path: 'role',
        message: 'admin is for the admin account only; a token of acme may be read-only or read-write',
      },
    ])
    const granted = given([]).when(admin('admin'))
    assert.deepEqual(
      granted.events?.map((e) => [e.type, 'account' in e.data ? e.data.account : undefined]),
      [['TokenIssued', 'admin']],
    )
  })

  it('refuses to issue over an existing token', () => {
    const { error } = given([issued]).when(issue)
    assert.ok(isHeraldError(error) && error.code === 'validation_failed')
  })

  it('revokes an issued token', () => {
    assert.deepEqual(given([issued]).when(revoke), {
      events: [
        {
          type: 'TokenRevoked',
          data: { tokenId: 't1', revokedBy: 'admin/admin', revokedAt: issued.data.issuedAt },
        },
      ],
    })
  })

  it('treats a second revocation as done', () => {
    const revoked = given([issued]).when(revoke).events ?? []
    assert.deepEqual(given([issued, ...revoked]).when(revoke), { events: [] })
  })

  it('refuses to revoke an unknown token', () => {
    const { error } = given([]).when(revoke)
    assert.ok(isHeraldError(error) && error.code === 'not_found')
  })
})
