import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isRight } from 'fp-ts/lib/Either.js'
import {
  allowlistEntry,
  base64Key,
  databaseName,
  hostAddress,
  hostPort,
  httpUrl,
  kurrentConnectionString,
  type LeafType,
  topicName,
} from './spec.ts'

const accepts = (type: LeafType<unknown>, value: unknown): boolean => isRight(type.codec.decode(value))

const table = (type: LeafType<unknown>, good: readonly unknown[], bad: readonly unknown[]) => () => {
  for (const value of good) assert.ok(accepts(type, value), `should accept ${JSON.stringify(value)}`)
  for (const value of bad) assert.ok(!accepts(type, value), `should reject ${JSON.stringify(value)}`)
}

describe('leaf types', () => {
  it(
    'hostAddress',
    table(
      hostAddress,
      ['0.0.0.0', '127.0.0.1', '::', '::1', 'localhost', 'herald.internal'],
      ['', '256.0.0.1', 'a b', 'http://x', '-bad.example', 8228],
    ),
  )

  it(
    'hostPort',
    table(
      hostPort,
      ['kafka:9092', '10.0.0.1:9092', '[::1]:9092', 'k-1.example.com:1'],
      ['kafka', 'kafka:0', 'kafka:65536', '::1:9092', '[nothost]:9092', ':9092'],
    ),
  )

  it(
    'allowlistEntry',
    table(
      allowlistEntry,
      ['hooks.internal', '*.corp.example', '10.0.0.0/8', 'fd00::/8', '192.168.1.10', '::1'],
      ['10.0.0.0/33', 'fd00::/129', 'host/8', '*', 'a b', ''],
    ),
  )

  it(
    'httpUrl',
    table(
      httpUrl,
      ['http://x', 'https://ui.example.com/path?q=1', 'http://[::1]:8123'],
      ['ftp://x', 'example.com', 'http://', ''],
    ),
  )

  it(
    'topicName',
    table(topicName, ['engine.events', 'a_b-c.1'], ['', '.', '..', 'with space', 'x'.repeat(250), 'ü']),
  )

  it('databaseName', table(databaseName, ['default', 'herald_2'], ['', '2herald', 'a-b', 'a.b']))

  it(
    'kurrentConnectionString',
    table(
      kurrentConnectionString,
      [
        'kurrentdb://admin:changeit@localhost:2113?tls=false',
        'esdb+discover://a:2113,b:2113',
        'kdb://h:2113',
        'kurrentdb://h:2113?TLS=false&tls_verify_cert=true&Node-Preference=read_only_replica&dnsDiscover=false',
        'kurrentdb://a:p%3Fw@h1:2113,h2:2113/?keepAliveInterval=10000&connectionName=herald%20one',
      ],
      [
        'http://localhost:2113',
        'kurrentdb://',
        'localhost:2113',
        'kurrentdb://h:2113?tlsverifycerts=false',
        'kurrentdb://h:2113?dns_discover=true',
        'kurrentdb://h:2113?tls=yes',
        'kurrentdb://h:2113?keepAliveTimeout=soon',
        'kurrentdb://h:2113?nodePreference=nearest',
        'kurrentdb://h:2113?tls=false?tlsVerifyCert=false',
        'kurrentdb://h:2113&tls=false',
      ],
    ),
  )

  it(
    'base64Key',
    table(
      base64Key(32),
      [Buffer.alloc(32).toString('base64')],
      [
        Buffer.alloc(31).toString('base64'),
        Buffer.alloc(33).toString('base64'),
        'not base64!',
        Buffer.alloc(32).toString('base64url').replace(/=+$/, ''),
        // 32 bytes, but the last character's low bits set: not the encoding of any key.
        `${Buffer.alloc(32).toString('base64').slice(0, -2)}B=`,
      ],
    ),
  )
})
