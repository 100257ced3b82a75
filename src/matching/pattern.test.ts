import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  buildPatternIndex,
  compilePattern,
  explainPattern,
  InvalidPatternError,
  MAX_PATTERN_DEPTH,
} from './index.ts'

/**
 * The documented behaviour of EventBridge event patterns, one row per rule: the pattern, an
 * event, and whether it matches. Events are CloudEvents with `data` nested.
 */
type Row = readonly [name: string, pattern: unknown, event: unknown, expected: boolean]

const event = {
  specversion: '1.0',
  id: 'evt-1',
  source: '/engine/policy',
  type: 'user.checks.tag.vulnerabilities.update',
  account: 'acme',
  level: 'warning',
  resourcetype: 'tag',
  time: '2026-11-22T10:00:00Z',
  data: {
    tag: 'docker.io/library/nginx:latest',
    severity: 'High',
    count: 5,
    score: 7.5,
    fixed: true,
    owner: null,
    empty: '',
    ip: '10.0.0.33',
    ip6: '2001:db8::ff00:42:8329',
    labels: ['prod', 'pci'],
    path: 'a*b\\c',
    nested: { deep: { value: 'x' } },
    vulns: [
      { id: 'CVE-1', severity: 'Critical', fixed: false },
      { id: 'CVE-2', severity: 'Low', fixed: true },
    ],
  },
}

const suites: Record<string, readonly Row[]> = {
  'exact values': [
    ['a string', { type: ['user.checks.tag.vulnerabilities.update'] }, event, true],
    ['a different string', { type: ['user.checks'] }, event, false],
    ['any of several strings', { level: ['info', 'warning'] }, event, true],
    ['none of several strings', { level: ['info', 'error'] }, event, false],
    ['strings are case-sensitive', { level: ['WARNING'] }, event, false],
    ['a number', { data: { count: [5] } }, event, true],
    ['a number written differently (5.0, 0.5e1)', { data: { count: [5.0, 0.5e1] } }, event, true],
    ['300 and 3.0e2 are the same number', { n: [300] }, JSON.parse('{"n": 3.0e2}'), true],
    ['a float', { data: { score: [7.5] } }, event, true],
    ['the number 5 is not the string "5"', { data: { count: ['5'] } }, event, false],
    ['the string "5" is not the number 5', { n: [5] }, { n: '5' }, false],
    ['true', { data: { fixed: [true] } }, event, true],
    ['true is not "true"', { data: { fixed: ['true'] } }, event, false],
    ['false is not true', { data: { fixed: [false] } }, event, false],
    ['null', { data: { owner: [null] } }, event, true],
    ['null is not "null"', { data: { owner: ['null'] } }, event, false],
    ['null does not match a missing field', { data: { missing: [null] } }, event, false],
    ['the empty string', { data: { empty: [''] } }, event, true],
    ['the empty string is not null', { data: { owner: [''] } }, event, false],
    ['null is not the empty string', { data: { empty: [null] } }, event, false],
    ['a missing field never equals a value', { subject: ['x'] }, event, false],
    ['several fields are AND-ed', { level: ['warning'], account: ['acme'] }, event, true],
    ['one failing field fails the pattern', { level: ['warning'], account: ['other'] }, event, false],
    ['the empty pattern matches everything', {}, event, true],
    ['fields not named are ignored', { account: ['acme'] }, { account: 'acme', anything: { else: 1 } }, true],
    ['a leaf value does not match an object', { data: ['x'] }, event, false],
  ],
  'nested objects': [
    ['two levels', { data: { nested: { deep: { value: ['x'] } } } }, event, true],
    ['a wrong nested value', { data: { nested: { deep: { value: ['y'] } } } }, event, false],
    ['the nesting must exist', { data: { absent: { deep: ['x'] } } }, event, false],
    ['a nested pattern over a scalar matches nothing', { data: { severity: { x: ['High'] } } }, event, false],
    ['dotted keys are not nested paths', { 'a.b': ['x'] }, { a: { b: 'x' } }, false],
    ['dotted keys match dotted keys', { 'a.b': ['x'] }, { 'a.b': 'x' }, true],
    ['inherited names are not fields', { constructor: [{ exists: true }] }, {}, false],
    ['__proto__ is not a field unless own', JSON.parse('{"__proto__": [{"exists": true}]}'), {}, false],
    ['own __proto__ is a field', JSON.parse('{"__proto__": ["x"]}'), JSON.parse('{"__proto__": "x"}'), true],
  ],
  arrays: [
    ['a pattern value matches any element of an event array', { data: { labels: ['pci'] } }, event, true],
    ['no element matches', { data: { labels: ['dev'] } }, event, false],
    ['intersection of pattern and event arrays', { data: { labels: ['dev', 'prod'] } }, event, true],
    ['nested event arrays are flattened', { tags: ['b'] }, { tags: [['a'], ['b']] }, true],
    ['an empty event array has no values', { tags: [{ exists: true }] }, { tags: [] }, false],
    ['an empty event array is like a missing field', { tags: [{ exists: false }] }, { tags: [] }, true],
    ['objects in an array are searched', { data: { vulns: { id: ['CVE-2'] } } }, event, true],
    [
      'conditions on one array element must hold in the same element',
      { data: { vulns: { severity: ['Critical'], fixed: [false] } } },
      event,
      true,
    ],
    [
      'conditions met by different elements do not match',
      { data: { vulns: { severity: ['Critical'], fixed: [true] } } },
      event,
      false,
    ],
    [
      'conditions on different arrays are independent',
      { a: { x: [1] }, b: { y: [2] } },
      { a: [{ x: 1 }, { x: 3 }], b: [{ y: 0 }, { y: 2 }] },
      true,
    ],
    [
      '$or branches inside an array element',
      { v: { $or: [{ a: [1] }, { b: [2] }], c: [3] } },
      {
        v: [
          { a: 1, c: 0 },
          { b: 2, c: 3 },
        ],
      },
      true,
    ],
    [
      'exists:false holds in an element without the field',
      { v: { x: [{ exists: false }] } },
      { v: [{ x: 1 }, { y: 1 }] },
      true,
    ],
    [
      'exists:false fails when every element has the field',
      { v: { x: [{ exists: false }] } },
      { v: [{ x: 1 }, { x: 2 }] },
      false,
    ],
  ],
  'missing fields and exists': [
    ['exists:true on a present field', { data: { severity: [{ exists: true }] } }, event, true],
    ['exists:true on a missing field', { data: { missing: [{ exists: true }] } }, event, false],
    ['exists:false on a missing field', { data: { missing: [{ exists: false }] } }, event, true],
    ['exists:false on a present field', { data: { severity: [{ exists: false }] } }, event, false],
    ['exists:true on null', { data: { owner: [{ exists: true }] } }, event, true],
    ['exists:true on the empty string', { data: { empty: [{ exists: true }] } }, event, true],
    [
      'exists only sees leaves: an object is not there',
      { data: { nested: [{ exists: true }] } },
      event,
      false,
    ],
    ['exists:false on an object-valued field holds', { data: { nested: [{ exists: false }] } }, event, true],
    ['exists:false when the parent is missing', { nothing: { here: [{ exists: false }] } }, event, true],
    ['exists:false when the parent is a scalar', { level: { x: [{ exists: false }] } }, event, true],
    ['a value or absence', { subject: ['x', { exists: false }] }, event, true],
    ['a value or absence, with a wrong value', { level: ['x', { exists: false }] }, event, false],
    ['a non-object event has no fields', { x: [{ exists: false }] }, 'not an object', true],
    ['a non-object event matches no value', { x: ['a'] }, ['a'], false],
  ],
  prefix: [
    ['a prefix', { time: [{ prefix: '2026-11-22' }] }, event, true],
    ['not a prefix', { time: [{ prefix: '2026-11-23' }] }, event, false],
    ['the whole value is a prefix', { level: [{ prefix: 'warning' }] }, event, true],
    ['the empty prefix matches any string', { level: [{ prefix: '' }] }, event, true],
    ['prefixes apply to strings only', { data: { count: [{ prefix: '5' }] } }, event, false],
    ['a prefix is case-sensitive', { level: [{ prefix: 'WARN' }] }, event, false],
    ['a prefix ignoring case', { level: [{ prefix: { 'equals-ignore-case': 'WARN' } }] }, event, true],
    [
      'a prefix ignoring case, no match',
      { level: [{ prefix: { 'equals-ignore-case': 'ERR' } }] },
      event,
      false,
    ],
    ['a prefix on an array element', { data: { labels: [{ prefix: 'pc' }] } }, event, true],
  ],
  suffix: [
    ['a suffix', { type: [{ suffix: '.update' }] }, event, true],
    ['not a suffix', { type: [{ suffix: '.completed' }] }, event, false],
    ['suffixes apply to strings only', { data: { count: [{ suffix: '5' }] } }, event, false],
    ['a suffix ignoring case', { type: [{ suffix: { 'equals-ignore-case': '.UPDATE' } }] }, event, true],
    [
      'a suffix ignoring case, no match',
      { type: [{ suffix: { 'equals-ignore-case': '.DONE' } }] },
      event,
      false,
    ],
  ],
  'equals-ignore-case': [
    ['another casing', { level: [{ 'equals-ignore-case': 'WaRnInG' }] }, event, true],
    ['another value', { level: [{ 'equals-ignore-case': 'error' }] }, event, false],
    ['not a prefix', { level: [{ 'equals-ignore-case': 'warn' }] }, event, false],
    ['non-ASCII letters', { x: [{ 'equals-ignore-case': 'ÉTÉ' }] }, { x: 'été' }, true],
    ['strings only', { x: [{ 'equals-ignore-case': '5' }] }, { x: 5 }, false],
  ],
  wildcard: [
    ['a star in the middle', { type: [{ wildcard: 'user.*.update' }] }, event, true],
    ['a star at the start', { type: [{ wildcard: '*.update' }] }, event, true],
    ['a star at the end', { type: [{ wildcard: 'user.checks.*' }] }, event, true],
    ['several stars', { type: [{ wildcard: 'user.*.tag.*.update' }] }, event, true],
    ['a star matches the empty run', { x: [{ wildcard: 'ab*c' }] }, { x: 'abc' }, true],
    ['only a star matches any string', { x: [{ wildcard: '*' }] }, { x: '' }, true],
    ['only a star does not match numbers', { x: [{ wildcard: '*' }] }, { x: 1 }, false],
    ['no star is an exact match', { x: [{ wildcard: 'abc' }] }, { x: 'abcd' }, false],
    ['segments in order', { x: [{ wildcard: 'a*b*c' }] }, { x: 'acb' }, false],
    ['segments may not overlap', { x: [{ wildcard: 'ab*ba' }] }, { x: 'aba' }, false],
    ['case-sensitive', { type: [{ wildcard: 'USER.*' }] }, event, false],
    ['an escaped star is literal', { data: { path: [{ wildcard: 'a\\*b*' }] } }, event, true],
    ['an escaped star does not match other characters', { x: [{ wildcard: 'a\\*b' }] }, { x: 'axb' }, false],
    ['an escaped backslash is literal', { data: { path: [{ wildcard: '*\\\\c' }] } }, event, true],
    ['an escaped backslash before a star', { x: [{ wildcard: 'a\\\\*' }] }, { x: 'a\\anything' }, true],
    ['dots and question marks are literal', { x: [{ wildcard: 'a.?' }] }, { x: 'ab?' }, false],
  ],
  'anything-but': [
    ['a single string, another value', { level: [{ 'anything-but': 'info' }] }, event, true],
    ['a single string, that value', { level: [{ 'anything-but': 'warning' }] }, event, false],
    ['a list of strings', { level: [{ 'anything-but': ['info', 'error'] }] }, event, true],
    [
      'a list of strings containing the value',
      { level: [{ 'anything-but': ['info', 'warning'] }] },
      event,
      false,
    ],
    ['a single number', { data: { count: [{ 'anything-but': 6 }] } }, event, true],
    ['a single number, that value', { data: { count: [{ 'anything-but': 5 }] } }, event, false],
    ['a list of numbers', { data: { count: [{ 'anything-but': [1, 5.0] }] } }, event, false],
    ['the number 5 is not the string "5"', { data: { count: [{ 'anything-but': '5' }] } }, event, true],
    ['needs the field', { subject: [{ 'anything-but': 'x' }] }, event, false],
    [
      'any element of an array other than the values',
      { data: { labels: [{ 'anything-but': 'prod' }] } },
      event,
      true,
    ],
    ['every element excluded', { data: { labels: [{ 'anything-but': ['prod', 'pci'] }] } }, event, false],
    ['a prefix', { level: [{ 'anything-but': { prefix: 'inf' } }] }, event, true],
    ['a prefix that is there', { level: [{ 'anything-but': { prefix: 'warn' } }] }, event, false],
    ['a suffix', { type: [{ 'anything-but': { suffix: '.completed' } }] }, event, true],
    ['a suffix that is there', { type: [{ 'anything-but': { suffix: '.update' } }] }, event, false],
    ['a wildcard', { type: [{ 'anything-but': { wildcard: 'system.*' } }] }, event, true],
    ['a wildcard that matches', { type: [{ 'anything-but': { wildcard: 'user.*.update' } }] }, event, false],
    ['a list of wildcards', { type: [{ 'anything-but': { wildcard: ['a*', '*.update'] } }] }, event, false],
    ['equals-ignore-case', { level: [{ 'anything-but': { 'equals-ignore-case': 'INFO' } }] }, event, true],
    [
      'equals-ignore-case, that value',
      { level: [{ 'anything-but': { 'equals-ignore-case': 'WARNING' } }] },
      event,
      false,
    ],
    [
      'equals-ignore-case, a list',
      { level: [{ 'anything-but': { 'equals-ignore-case': ['X', 'Warning'] } }] },
      event,
      false,
    ],
    [
      'a string prefix never excludes a number',
      { data: { count: [{ 'anything-but': { prefix: '5' } }] } },
      event,
      true,
    ],
    ['null is not excluded by strings', { data: { owner: [{ 'anything-but': 'null' }] } }, event, true],
    ['combined with a value', { level: ['info', { 'anything-but': ['warning'] }] }, event, false],
  ],
  numeric: [
    ['a range', { data: { count: [{ numeric: ['>', 0, '<=', 5] }] } }, event, true],
    ['an open upper bound excludes it', { data: { count: [{ numeric: ['>', 0, '<', 5] }] } }, event, false],
    ['an open lower bound excludes it', { data: { count: [{ numeric: ['>', 5] }] } }, event, false],
    ['a closed lower bound includes it', { data: { count: [{ numeric: ['>=', 5] }] } }, event, true],
    ['upper before lower', { data: { count: [{ numeric: ['<', 6, '>', 4] }] } }, event, true],
    ['equality', { data: { count: [{ numeric: ['=', 5] }] } }, event, true],
    ['equality written as 5e0', { data: { count: [{ numeric: ['=', 5] }] } }, event, true],
    ['equality with a float', { data: { score: [{ numeric: ['=', 7.5] }] } }, event, true],
    ['inequality', { data: { count: [{ numeric: ['=', 4] }] } }, event, false],
    ['negative numbers', { x: [{ numeric: ['<', -1.5] }] }, { x: -2 }, true],
    ['numbers only: not the string "5"', { x: [{ numeric: ['=', 5] }] }, { x: '5' }, false],
    ['numbers only: not true', { x: [{ numeric: ['>', 0] }] }, { x: true }, false],
    ['a missing field', { x: [{ numeric: ['>', 0] }] }, {}, false],
    ['any element of an array', { x: [{ numeric: ['>', 10] }] }, { x: [1, 20] }, true],
    ['two ranges are alternatives', { x: [{ numeric: ['<', 0] }, { numeric: ['>', 10] }] }, { x: 11 }, true],
    ['between two ranges', { x: [{ numeric: ['<', 0] }, { numeric: ['>', 10] }] }, { x: 5 }, false],
  ],
  cidr: [
    ['an IPv4 address in the block', { data: { ip: [{ cidr: '10.0.0.0/24' }] } }, event, true],
    ['an IPv4 address outside', { data: { ip: [{ cidr: '10.0.1.0/24' }] } }, event, false],
    ['the first address of the block', { x: [{ cidr: '10.0.0.0/24' }] }, { x: '10.0.0.0' }, true],
    ['the last address of the block', { x: [{ cidr: '10.0.0.0/24' }] }, { x: '10.0.0.255' }, true],
    ['just past the block', { x: [{ cidr: '10.0.0.0/24' }] }, { x: '10.0.1.0' }, false],
    ['/32 is one address', { x: [{ cidr: '10.0.0.7/32' }] }, { x: '10.0.0.7' }, true],
    ['/32 excludes its neighbour', { x: [{ cidr: '10.0.0.7/32' }] }, { x: '10.0.0.8' }, false],
    ['/0 is every IPv4 address', { x: [{ cidr: '0.0.0.0/0' }] }, { x: '255.255.255.255' }, true],
    ['host bits in the block are ignored', { x: [{ cidr: '10.0.0.99/24' }] }, { x: '10.0.0.1' }, true],
    ['an odd prefix length', { x: [{ cidr: '10.0.0.0/31' }] }, { x: '10.0.0.1' }, true],
    ['an odd prefix length, outside', { x: [{ cidr: '10.0.0.0/31' }] }, { x: '10.0.0.2' }, false],
    ['IPv6 in the block', { data: { ip6: [{ cidr: '2001:db8::/32' }] } }, event, true],
    ['IPv6 outside', { data: { ip6: [{ cidr: '2001:db9::/32' }] } }, event, false],
    [
      'IPv6 written in full',
      { x: [{ cidr: '2001:db8::/32' }] },
      { x: '2001:0DB8:0000:0000:0000:0000:0000:0001' },
      true,
    ],
    ['IPv6 /128', { x: [{ cidr: '::1/128' }] }, { x: '0:0:0:0:0:0:0:1' }, true],
    ['IPv6 with an IPv4 tail', { x: [{ cidr: '::ffff:0:0/96' }] }, { x: '::ffff:10.0.0.1' }, true],
    ['an IPv4 block does not match IPv6', { x: [{ cidr: '0.0.0.0/0' }] }, { x: '::1' }, false],
    ['an IPv6 block does not match IPv4', { x: [{ cidr: '::/0' }] }, { x: '10.0.0.1' }, false],
    ['not an address', { x: [{ cidr: '10.0.0.0/8' }] }, { x: '10.0.0' }, false],
    ['an octet over 255', { x: [{ cidr: '10.0.0.0/8' }] }, { x: '10.0.0.256' }, false],
    ['strings only', { x: [{ cidr: '10.0.0.0/8' }] }, { x: 10 }, false],
  ],
  $or: [
    ['either top-level field', { $or: [{ level: ['error'] }, { account: ['acme'] }] }, event, true],
    ['neither', { $or: [{ level: ['error'] }, { account: ['other'] }] }, event, false],
    [
      'AND-ed with other fields',
      { account: ['acme'], $or: [{ level: ['error'] }, { level: ['warning'] }] },
      event,
      true,
    ],
    [
      'AND-ed, the field fails',
      { account: ['x'], $or: [{ level: ['error'] }, { level: ['warning'] }] },
      event,
      false,
    ],
    ['inside a nested object', { data: { $or: [{ severity: ['Low'] }, { count: [5] }] } }, event, true],
    [
      'inside a nested object, neither',
      { data: { $or: [{ severity: ['Low'] }, { count: [6] }] } },
      event,
      false,
    ],
    [
      'a branch with several fields (AND inside OR)',
      { $or: [{ level: ['error'] }, { level: ['warning'], account: ['acme'] }] },
      event,
      true,
    ],
    [
      'nested $or in a branch',
      {
        $or: [
          { level: ['error'] },
          { account: ['acme'], $or: [{ source: ['x'] }, { data: { count: [5] } }] },
        ],
      },
      event,
      true,
    ],
    [
      'nested $or in a branch, innermost fails',
      {
        $or: [
          { level: ['error'] },
          { account: ['acme'], $or: [{ source: ['x'] }, { data: { count: [6] } }] },
        ],
      },
      event,
      false,
    ],
    [
      '$or at two levels at once',
      {
        $or: [{ level: ['error'] }, { level: ['warning'] }],
        data: { $or: [{ fixed: [false] }, { severity: ['High'] }] },
      },
      event,
      true,
    ],
    [
      'with exists:false',
      { $or: [{ subject: [{ exists: true }] }, { time: [{ exists: false }] }] },
      event,
      false,
    ],
  ],
}

describe('compilePattern: documented matching behaviour', () => {
  for (const [suite, rows] of Object.entries(suites))
    describe(suite, () => {
      for (const [name, pattern, ev, expected] of rows)
        it(`${expected ? 'matches' : 'does not match'}: ${name}`, () => {
          assert.equal(compilePattern(pattern).matches(ev), expected)
        })
    })
})

describe('compilePattern: invalid patterns name the offending path', () => {
  const rows: readonly [name: string, pattern: unknown, path: string, message: RegExp][] = [
    ['not an object', ['source'], '(root)', /must be a JSON object/],
    ['null', null, '(root)', /must be a JSON object/],
    ['a bare value', { source: 'aws.ec2' }, 'source', /array of values or a nested object/],
    ['an empty list', { source: [] }, 'source', /at least one/],
    ['an empty nested object', { data: {} }, 'data', /at least one field/],
    ['a nested array', { source: [['a']] }, 'source[0]', /nested arrays/],
    ['a non-finite number', { n: [Number.POSITIVE_INFINITY] }, 'n[0]', /finite/],
    ['an undefined value', { n: [undefined] }, 'n[0]', /must be a string, number/],
    [
      'an unknown operator',
      { data: { x: ['a', { contains: 'b' }] } },
      'data.x[1].contains',
      /unknown operator/,
    ],
    ['two operators in one object', { x: [{ prefix: 'a', suffix: 'b' }] }, 'x[0]', /exactly one key/],
    ['an empty operator object', { x: [{}] }, 'x[0]', /exactly one key/],
    ['a prefix that is not a string', { x: [{ prefix: 1 }] }, 'x[0].prefix', /string/],
    [
      'a prefix ignoring case with extra keys',
      { x: [{ prefix: { 'equals-ignore-case': 'a', y: 1 } }] },
      'x[0].prefix',
      /equals-ignore-case/,
    ],
    ['a suffix that is a list', { x: [{ suffix: ['a'] }] }, 'x[0].suffix', /string/],
    [
      'equals-ignore-case on a number',
      { x: [{ 'equals-ignore-case': 1 }] },
      'x[0].equals-ignore-case',
      /string/,
    ],
    ['consecutive wildcards', { x: [{ wildcard: 'a**b' }] }, 'x[0].wildcard', /consecutive/],
    ['a backslash escaping a letter', { x: [{ wildcard: 'a\\b' }] }, 'x[0].wildcard', /backslash/],
    ['a trailing backslash', { x: [{ wildcard: 'a\\' }] }, 'x[0].wildcard', /backslash/],
    ['an escaped star next to a star is fine, two stars are not', { x: [{ wildcard: '\\**' }] }, '', /./],
    ['a wildcard that is not a string', { x: [{ wildcard: 1 }] }, 'x[0].wildcard', /string/],
    ['exists not boolean', { x: [{ exists: 'true' }] }, 'x[0].exists', /true or false/],
    [
      'numeric without a number',
      { data: { severity: [{ numeric: ['>'] }] } },
      'data.severity[0].numeric',
      /comparisons/,
    ],
    ['numeric with a string operand', { x: [{ numeric: ['>', '5'] }] }, 'x[0].numeric[1]', /finite number/],
    [
      'numeric with an unknown operator',
      { x: [{ numeric: ['!=', 5] }] },
      'x[0].numeric[0]',
      /must be one of/,
    ],
    [
      'numeric with two lower bounds',
      { x: [{ numeric: ['>', 1, '>=', 2] }] },
      'x[0].numeric[2]',
      /lower bound/,
    ],
    ['numeric = combined', { x: [{ numeric: ['=', 1, '<', 2] }] }, 'x[0].numeric[0]', /cannot be combined/],
    ['numeric with an empty range', { x: [{ numeric: ['>', 5, '<', 5] }] }, 'x[0].numeric', /less than/],
    ['numeric not a list', { x: [{ numeric: 5 }] }, 'x[0].numeric', /comparisons/],
    ['cidr without a prefix length', { x: [{ cidr: '10.0.0.1' }] }, 'x[0].cidr', /CIDR block/],
    ['cidr with a bad address', { x: [{ cidr: '10.0.0/8' }] }, 'x[0].cidr', /not an IPv4 or IPv6/],
    ['cidr with too long a prefix', { x: [{ cidr: '10.0.0.0/33' }] }, 'x[0].cidr', /at most 32/],
    ['cidr IPv6 with too long a prefix', { x: [{ cidr: '::/129' }] }, 'x[0].cidr', /at most 128/],
    [
      'anything-but mixing strings and numbers',
      { x: [{ 'anything-but': ['a', 1] }] },
      'x[0].anything-but',
      /only strings or only numbers/,
    ],
    ['anything-but with an empty list', { x: [{ 'anything-but': [] }] }, 'x[0].anything-but', /at least one/],
    [
      'anything-but with a boolean',
      { x: [{ 'anything-but': true }] },
      'x[0].anything-but',
      /must be a string, a number/,
    ],
    [
      'anything-but with an unknown operator',
      { x: [{ 'anything-but': { numeric: ['>', 1] } }] },
      'x[0].anything-but',
      /exactly one key/,
    ],
    [
      'anything-but prefix not a string',
      { x: [{ 'anything-but': { prefix: 1 } }] },
      'x[0].anything-but.prefix',
      /string/,
    ],
    [
      'anything-but with a bad wildcard',
      { x: [{ 'anything-but': { wildcard: ['a', 'b**'] } }] },
      'x[0].anything-but.wildcard[1]',
      /consecutive/,
    ],
    ['$or with one branch', { $or: [{ a: ['x'] }] }, '$or', /at least two/],
    ['$or not a list', { $or: { a: ['x'] } }, '$or', /at least two/],
    ['$or with a non-object branch', { $or: [{ a: ['x'] }, ['b']] }, '$or[1]', /JSON object/],
    ['$or with an empty branch', { $or: [{ a: ['x'] }, {}] }, '$or[1]', /at least one field/],
    [
      'inside a nested $or',
      { data: { $or: [{ a: ['x'] }, { b: [{ numeric: ['>'] }] }] } },
      'data.$or[1].b[0].numeric',
      /comparisons/,
    ],
    ['a key with a dot is quoted', { data: { 'a.b': 'x' } }, 'data["a.b"]', /array of values/],
  ]
  for (const [name, pattern, path, message] of rows)
    it(`${name} → ${path || 'valid'}`, () => {
      if (path === '') {
        // The row documents a pattern that looks suspicious but is valid.
        assert.doesNotThrow(() => compilePattern(pattern))
        return
      }
      assert.throws(
        () => compilePattern(pattern),
        (error: unknown) => {
          assert.ok(error instanceof InvalidPatternError)
          assert.equal(error.code, 'invalid_pattern')
          assert.equal(error.retriable, false)
          assert.equal(error.issues[0]?.path, path)
          assert.match(error.issues[0]?.message ?? '', message)
          assert.ok(error.message.startsWith(`${path}: `), error.message)
          return true
        },
      )
    })

  it('names paths within a larger document when told where the pattern sits', () => {
    assert.throws(() => compilePattern({ a: 'x' }, { path: 'content' }), /^InvalidPatternError: content\.a: /)
    assert.throws(
      () => compilePattern(['x'], { path: 'content' }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidPatternError)
        assert.equal(error.issues[0]?.path, 'content')
        return true
      },
    )
  })

  it('reports an "=" beside other comparisons once, not also as a second bound', () => {
    for (const numeric of [
      ['=', 3, '<', 5],
      ['<', 5, '=', 3],
      ['=', 3, '>', 1],
    ])
      assert.throws(
        () => compilePattern({ x: [{ numeric }] }),
        (error: unknown) => {
          assert.ok(error instanceof InvalidPatternError)
          const at = numeric.indexOf('=')
          assert.deepEqual(error.issues, [
            { path: `x[0].numeric[${at}]`, message: '"=" cannot be combined with other comparisons' },
          ])
          return true
        },
      )
  })

  it('lists every problem, not only the first', () => {
    assert.throws(
      () => compilePattern({ a: 'x', b: [{ prefix: 1 }], c: { d: [] } }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidPatternError)
        assert.deepEqual(
          error.issues.map((i) => i.path),
          ['a', 'b[0].prefix', 'c.d'],
        )
        return true
      },
    )
  })
})

describe('compilePattern: structural representation', () => {
  it('exposes the parsed pattern as data', () => {
    const { root } = compilePattern({
      source: ['a', { prefix: 'b' }],
      data: { n: [{ numeric: ['>=', 1, '<', 2] }] },
      $or: [{ x: [{ exists: false }] }, { y: [{ 'anything-but': { suffix: '.png' } }] }],
    })
    assert.deepEqual(root, {
      fields: [
        {
          kind: 'leaf',
          key: 'source',
          matchers: [
            { kind: 'exact', value: 'a' },
            { kind: 'prefix', value: 'b', ignoreCase: false },
          ],
        },
        {
          kind: 'object',
          key: 'data',
          node: {
            fields: [
              {
                kind: 'leaf',
                key: 'n',
                matchers: [
                  {
                    kind: 'numeric',
                    lower: { value: 1, inclusive: true },
                    upper: { value: 2, inclusive: false },
                  },
                ],
              },
            ],
            anyOf: [],
          },
        },
      ],
      anyOf: [
        [
          { fields: [{ kind: 'leaf', key: 'x', matchers: [{ kind: 'exists', value: false }] }], anyOf: [] },
          {
            fields: [
              {
                kind: 'leaf',
                key: 'y',
                matchers: [
                  { kind: 'anything-but', not: [{ kind: 'suffix', value: '.png', ignoreCase: false }] },
                ],
              },
            ],
            anyOf: [],
          },
        ],
      ],
    })
  })
})

describe('compilePattern: the nesting limit', () => {
  /** `{"a": {"a": … ["x"]}}`, `depth` levels of objects and arrays in all. */
  const nested = (depth: number): unknown => {
    let pattern: unknown = ['x']
    for (let level = 1; level < depth; level++) pattern = { a: pattern }
    return pattern
  }
  /** The event the pattern of that depth matches: `a` nested down to the value `"x"`. */
  const deepEvent = (depth: number): Record<string, unknown> => {
    let value: unknown = 'x'
    for (let level = 1; level < depth; level++) value = { a: value }
    return value as Record<string, unknown>
  }
  /** `$or` inside `$or`: each adds an array and an object. */
  const nestedOr = (pairs: number): unknown => {
    let pattern: unknown = { a: ['x'] }
    for (let i = 0; i < pairs; i++) pattern = { $or: [pattern, { b: ['y'] }] }
    return pattern
  }
  const refusal = (path: string) => ({
    name: 'InvalidPatternError',
    issues: [
      {
        path,
        message: `is nested more than ${MAX_PATTERN_DEPTH} levels deep (objects and arrays); at most ${MAX_PATTERN_DEPTH} are allowed`,
      },
    ],
  })

  it('accepts a pattern at the limit, which matches, evaluated, explained and indexed', () => {
    const pattern = compilePattern(nested(MAX_PATTERN_DEPTH))
    assert.equal(pattern.matches(deepEvent(MAX_PATTERN_DEPTH)), true)
    assert.equal(pattern.matches(deepEvent(MAX_PATTERN_DEPTH - 1)), false)
    assert.equal(explainPattern(pattern, deepEvent(MAX_PATTERN_DEPTH)).matched, true)
    const index = buildPatternIndex([{ id: 'deep', pattern }])
    assert.deepEqual(index.match(deepEvent(MAX_PATTERN_DEPTH)), ['deep'])
  })

  it('accepts `$or`s nested to the limit, expanded for the index', () => {
    const pattern = compilePattern(nestedOr((MAX_PATTERN_DEPTH - 2) / 2))
    assert.equal(pattern.matches({ a: 'x' }), true)
    assert.deepEqual(buildPatternIndex([{ id: 'or', pattern }]).match({ b: 'y' }), ['or'])
  })

  it('refuses one level deeper with an InvalidPatternError naming the limit, every time', () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      assert.throws(() => compilePattern(nested(MAX_PATTERN_DEPTH + 1)), refusal('(root)'))
      assert.throws(
        () => compilePattern(nested(MAX_PATTERN_DEPTH + 1), { path: 'pattern' }),
        refusal('pattern'),
      )
      assert.throws(() => compilePattern(nestedOr(MAX_PATTERN_DEPTH / 2)), refusal('(root)'))
    }
  })

  it('refuses far deeper patterns the same way instead of running out of stack', () => {
    for (const depth of [3_000, 20_000])
      assert.throws(() => compilePattern(nested(depth), { path: 'pattern' }), refusal('pattern'))
  })
})

describe('compilePattern: case-insensitive alternatives', () => {
  /** Calls of `String.prototype.toLowerCase` (the fold of case-insensitive matching) made by `run`. */
  const folds = (run: () => void): number => {
    const original = String.prototype.toLowerCase
    let calls = 0
    String.prototype.toLowerCase = function (this: string) {
      calls++
      return original.call(this)
    }
    try {
      run()
    } finally {
      String.prototype.toLowerCase = original
    }
    return calls
  }

  const alternatives = (make: (i: number) => unknown) => Array.from({ length: 1_000 }, (_, i) => make(i))

  it('folds an event value once for all of a field’s alternatives, however many', () => {
    const long = 'A'.repeat(100_000)
    const cases: [string, unknown[], unknown, boolean][] = [
      ['equals-ignore-case', alternatives((i) => ({ 'equals-ignore-case': `T${i}` })), 't999', true],
      [
        'equals-ignore-case, none matching',
        alternatives((i) => ({ 'equals-ignore-case': `t${i}` })),
        long,
        false,
      ],
      [
        'prefix ignoring case',
        alternatives((i) => ({ prefix: { 'equals-ignore-case': `P${i}-` } })),
        'p7-x',
        true,
      ],
      [
        'suffix ignoring case',
        alternatives((i) => ({ suffix: { 'equals-ignore-case': `-S${i}` } })),
        long,
        false,
      ],
      [
        'anything-but ignoring case',
        [{ 'anything-but': { 'equals-ignore-case': alternatives((i) => `T${i}`) } }],
        't5',
        false,
      ],
      [
        'mixed with exact values and case-sensitive forms',
        [
          ...alternatives((i) => ({ 'equals-ignore-case': `t${i}` })),
          ...alternatives((i) => ({ prefix: { 'equals-ignore-case': `p${i}` } })),
          'exact',
          { prefix: 'q' },
        ],
        'Q',
        false,
      ],
    ]
    for (const [name, values, value, expected] of cases) {
      const pattern = compilePattern({ data: { title: values } })
      const index = buildPatternIndex([{ id: name, pattern }])
      const single = { data: { title: value } }
      const three = { data: { title: [value, value, 'other'] } }
      // The first evaluation compiles, folding the pattern's own texts; count the ones after.
      pattern.matches(single)
      index.match(single)
      assert.equal(
        folds(() => assert.equal(pattern.matches(single), expected, name)),
        1,
        name,
      )
      assert.equal(
        folds(() => assert.equal(index.match(single).length, expected ? 1 : 0, name)),
        1,
        name,
      )
      const foldsOfThree = folds(() => pattern.matches(three))
      assert.ok(foldsOfThree >= 1 && foldsOfThree <= 3, `${name}: ${foldsOfThree}`)
      assert.deepEqual(explainPattern(pattern, single).matched, expected, name)
    }
  })
})
