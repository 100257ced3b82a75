import { ClickHouseLogLevel, createClient } from '@clickhouse/client'
import { WarehouseError } from '../../errors/index.ts'
import type { Warehouse } from '../../ports/warehouse.ts'
import { redactor } from './errors.ts'
import { createClickHouseWarehouse } from './warehouse.ts'

export interface HttpWarehouseOptions {
  /**
   * The server's HTTP interface, e.g. `https://ch.example:8443`. It may carry credentials
   * (`http://user:password@host:8123`) and a database as its path; the options below win.
   */
  readonly url: string
  readonly username?: string
  readonly password?: string
  readonly database?: string
  /** Gives up on a request after this many ms with a retriable error (default 30000). */
  readonly requestTimeoutMs?: number
}

/**
 * The distributed warehouse: a ClickHouse server over HTTP(S). Nothing is sent until the
 * first call, so creating it never fails because the server is down; `ping()` tells.
 *
 * @example
 * const warehouse = createHttpWarehouse({ url: 'http://ch:8123', username: 'herald', password, database: 'herald' })
 * await warehouse.ping()
 */
export const createHttpWarehouse = (options: HttpWarehouseOptions): Warehouse => {
  const { url, username, password, database } = parseUrl(options)
  const redact = redactor({ username, password })
  const client = createClient({
    url: url.origin,
    username,
    password,
    ...(database === undefined ? {} : { database }),
    ...(options.requestTimeoutMs === undefined ? {} : { request_timeout: options.requestTimeoutMs }),
    application: 'herald',
    // Failures reach Herald as errors with the vendor error as `cause`; the client's own
    // console logging would report each one a second time, outside Herald's logger.
    log: { level: ClickHouseLogLevel.OFF },
  })
  return createClickHouseWarehouse(client, { target: `ClickHouse ${url.origin}`, redact })
}

interface Endpoint {
  readonly url: URL
  readonly username: string
  readonly password: string
  readonly database: string | undefined
}

// Neither the URL text nor the TypeError or URIError about it (`input` holds the text) may
// surface: it can hold a password.
const parseUrl = (options: HttpWarehouseOptions): Endpoint => {
  let url: URL
  let fromUrl: { username: string; password: string; database: string | undefined }
  try {
    url = new URL(options.url)
    fromUrl = {
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : undefined,
    }
  } catch {
    throw new WarehouseError(
      'the ClickHouse URL is not a valid URL (expected http[s]://host:port[/database])',
    )
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new WarehouseError(`the ClickHouse URL must use http or https, not ${url.protocol}`)
  }
  return {
    url,
    username: options.username ?? (fromUrl.username === '' ? 'default' : fromUrl.username),
    password: options.password ?? fromUrl.password,
    database: options.database ?? fromUrl.database,
  }
}
