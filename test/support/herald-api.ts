/** An answer from Herald's HTTP API, its body parsed when it is JSON. */
export interface ApiAnswer {
  readonly status: number
  readonly json: Record<string, unknown>
  readonly text: string
}

/** Anchore's selector shape as the REST API takes it. */
export interface SelectorBody {
  readonly scope: 'account' | 'global'
  readonly event: { readonly level: string; readonly type: string; readonly resource_type: string }
  readonly pattern?: unknown
}

/**
 * A thin client for the REST calls tests and benchmarks set Herald up with: each call is a
 * real request, and a status other than the expected one fails with the answer's body.
 *
 * @example
 * const admin = heraldApi(herald.url, adminToken)
 * const token = await admin.issueToken('acme', 'read-write')
 * const acme = heraldApi(herald.url, token)
 * const configuration = await acme.createWebhook(receiver.url)
 * await acme.addSelector(configuration, { scope: 'account', event: { level: '*', type: 'user.*', resource_type: '*' } })
 */
export const heraldApi = (baseUrl: string, token: string) => {
  const call = async (method: string, path: string, body?: unknown): Promise<ApiAnswer> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    let json: Record<string, unknown> = {}
    try {
      json = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>)
    } catch {}
    return { status: response.status, json, text }
  }
  const expect = async (status: number, method: string, path: string, body?: unknown) => {
    const answer = await call(method, path, body)
    if (answer.status !== status)
      throw new Error(`${method} ${path}: expected ${status}, got ${answer.status}: ${answer.text}`)
    return answer.json
  }
  return {
    call,
    /** Admin only: a token for `account` with `role`. */
    issueToken: async (account: string, role: 'read-only' | 'read-write' | 'admin') =>
      String((await expect(201, 'POST', '/v1/auth/tokens', { account, role, description: 'test' })).token),
    /** A webhook configuration of the caller's account; resolves with its id. */
    createWebhook: async (url: string, description = 'test') =>
      String(
        (
          await expect(201, 'POST', '/v1/notifications/endpoints/webhook/configurations', {
            url,
            description,
          })
        ).uuid,
      ),
    /** A selector on one of the caller's webhook configurations; resolves with its id. */
    addSelector: async (configurationId: string, selector: SelectorBody) =>
      String(
        (
          await expect(
            201,
            'POST',
            `/v1/notifications/endpoints/webhook/configurations/${configurationId}/selectors`,
            selector,
          )
        ).uuid,
      ),
  }
}
