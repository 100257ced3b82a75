import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One request a stand-in received, as received. */
export interface StandInRequest {
  readonly method: string
  /** Path without the query. */
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

export interface StandInReply {
  readonly status: number
  /** A list sends the header once per value, as a server or proxy that repeats it does. */
  readonly headers?: Readonly<Record<string, string | readonly string[]>>
  /** An object is sent as JSON. */
  readonly body?: string | object
}

export type StandInHandler = (request: StandInRequest) => StandInReply | Promise<StandInReply>

/**
 * A real HTTP server on 127.0.0.1 that records every request, answers through `handle` (the
 * service's behaviour), and can be told to misbehave for the next requests: answer with a
 * given status (429 with Retry-After, 503, 410), or never answer.
 */
export interface HttpStandIn {
  readonly port: number
  /** `http://127.0.0.1:<port><path>`. */
  readonly url: (path: string) => string
  readonly requests: StandInRequest[]
  /**
   * The next `times` requests (those `only` selects, if given) get `reply` instead of the
   * service's answer (they are still recorded).
   */
  readonly failNext: (
    reply: StandInReply,
    times?: number,
    only?: (request: StandInRequest) => boolean,
  ) => void
  /** The next `times` requests (those `only` selects, if given) get no answer at all, until the stand-in closes. */
  readonly hangNext: (times?: number, only?: (request: StandInRequest) => boolean) => void
  /** The next `times` requests that `matches` selects get `reply`; others are answered as usual. */
  readonly failWhen: (
    matches: (request: StandInRequest) => boolean,
    reply: StandInReply,
    times?: number,
  ) => void
  readonly close: () => Promise<void>
}

type Fault = ({ readonly kind: 'reply'; readonly reply: StandInReply } | { readonly kind: 'hang' }) & {
  readonly only?: ((request: StandInRequest) => boolean) | undefined
}

const send = (res: ServerResponse, reply: StandInReply) => {
  const isJson = typeof reply.body === 'object'
  const body = reply.body === undefined ? '' : isJson ? JSON.stringify(reply.body) : String(reply.body)
  res.writeHead(reply.status, {
    ...(body === ''
      ? {}
      : { 'content-type': isJson ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8' }),
    ...reply.headers,
  })
  res.end(body)
}

export const startHttpStandIn = async (handle: StandInHandler): Promise<HttpStandIn> => {
  const requests: StandInRequest[] = []
  const faults: Fault[] = []
  const targeted: { matches: (request: StandInRequest) => boolean; reply: StandInReply }[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stand-in')
      const request: StandInRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      }
      requests.push(request)
      const at = faults.findIndex((f) => f.only === undefined || f.only(request))
      const fault = at === -1 ? undefined : faults.splice(at, 1)[0]
      if (fault?.kind === 'hang') return
      if (fault?.kind === 'reply') {
        send(res, fault.reply)
        return
      }
      const aimed = targeted.findIndex((t) => t.matches(request))
      if (aimed !== -1) {
        const [hit] = targeted.splice(aimed, 1)
        if (hit !== undefined) send(res, hit.reply)
        return
      }
      Promise.resolve(handle(request)).then(
        (reply) => send(res, reply),
        (error: unknown) => send(res, { status: 500, body: `stand-in failed: ${String(error)}` }),
      )
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    requests,
    failNext: (reply, times = 1, only) => {
      for (let i = 0; i < times; i++) faults.push({ kind: 'reply', reply, only })
    },
    hangNext: (times = 1, only) => {
      for (let i = 0; i < times; i++) faults.push({ kind: 'hang', only })
    },
    failWhen: (matches, reply, times = 1) => {
      for (let i = 0; i < times; i++) targeted.push({ matches, reply })
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Parses a JSON body, or says why it is not one. */
export const parseJson = (body: string): { ok: true; value: unknown } | { ok: false; error: string } => {
  try {
    return { ok: true, value: JSON.parse(body) }
  } catch (error) {
    return { ok: false, error: (error as Error).message }
  }
}

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** The media type of a request, without parameters. */
export const mediaType = (headers: IncomingHttpHeaders): string =>
  (headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? ''
