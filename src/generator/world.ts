import type { Finding, Severity } from '../events/index.ts'
import type { Random } from './random.ts'

/**
 * The material the generator draws from: distributions, registries, packages and a
 * vulnerability mix shaped like real scan results (few critical, many medium and low; KEV
 * entries almost only among critical and high; fixes more often available for severe ones).
 */

export interface Distro {
  readonly name: string
  readonly version: string
  /** OS package type and the suffix its versions carry. */
  readonly packageType: string
  readonly versionSuffix: string
  readonly feedGroup: string
}

export const DISTROS: readonly Distro[] = [
  { name: 'debian', version: '12', packageType: 'deb', versionSuffix: '-1~deb12u1', feedGroup: 'debian:12' },
  { name: 'debian', version: '11', packageType: 'deb', versionSuffix: '-1+deb11u3', feedGroup: 'debian:11' },
  { name: 'alpine', version: '3.20', packageType: 'apk', versionSuffix: '-r0', feedGroup: 'alpine:3.20' },
  {
    name: 'ubuntu',
    version: '22.04',
    packageType: 'deb',
    versionSuffix: '-0ubuntu1.4',
    feedGroup: 'ubuntu:22.04',
  },
  { name: 'rhel', version: '9', packageType: 'rpm', versionSuffix: '-1.el9', feedGroup: 'rhel:9' },
]

const OS_PACKAGES = [
  'openssl',
  'libssl3',
  'zlib',
  'curl',
  'libcurl4',
  'glibc',
  'libc6',
  'busybox',
  'ncurses',
  'libxml2',
  'expat',
  'sqlite',
  'krb5',
  'gnutls',
  'systemd',
  'tar',
  'xz-utils',
  'perl-base',
  'bash',
  'libgcrypt20',
]

const LANGUAGE_PACKAGES: Readonly<Record<string, readonly string[]>> = {
  npm: ['lodash', 'express', 'axios', 'minimist', 'semver', 'jsonwebtoken', 'ws', 'tar', 'follow-redirects'],
  python: [
    'requests',
    'urllib3',
    'jinja2',
    'pyyaml',
    'cryptography',
    'django',
    'flask',
    'setuptools',
    'pillow',
  ],
  java: ['log4j-core', 'jackson-databind', 'spring-core', 'netty-codec-http', 'snakeyaml', 'commons-text'],
  go: [
    'golang.org/x/net',
    'golang.org/x/crypto',
    'google.golang.org/grpc',
    'github.com/gin-gonic/gin',
    'stdlib',
  ],
  gem: ['rack', 'nokogiri', 'rails', 'puma'],
}

export const LANGUAGES = Object.keys(LANGUAGE_PACKAGES)

export const REGISTRIES = ['docker.io', 'quay.io', 'ghcr.io', 'registry.gitlab.com'] as const

export const REPOSITORY_NAMES = [
  'payments-api',
  'checkout-web',
  'orders-worker',
  'identity',
  'search-indexer',
  'notifications',
  'ingress-gateway',
  'etl-runner',
  'ml-inference',
  'ci-runner',
  'billing',
  'reports-ui',
]

export const PUBLIC_REPOSITORIES = ['library/nginx', 'library/redis', 'library/postgres', 'library/python']

export const TAG_NAMES = ['latest', 'stable', 'main', 'prod', 'staging', 'v1.4.2', 'v1.5.0', '2026.11']

export const FEEDS: Readonly<Record<string, readonly string[]>> = {
  vulnerabilities: [
    'debian:11',
    'debian:12',
    'alpine:3.20',
    'ubuntu:22.04',
    'rhel:9',
    'github:npm',
    'github:python',
  ],
  nvd: ['nvdv2:cves'],
  kev: ['cisa:kev'],
}

export const SERVICES = ['analyzer', 'catalog', 'policy_engine', 'simplequeue', 'apiext', 'reports_worker']

// Relative frequencies of severities among matches in typical container scans.
const SEVERITY_MIX: Readonly<Record<Severity, number>> = {
  critical: 3,
  high: 14,
  medium: 38,
  low: 28,
  negligible: 9,
  unknown: 8,
}

const CVSS_RANGE: Readonly<Record<Severity, readonly [number, number] | null>> = {
  critical: [9.0, 10.0],
  high: [7.0, 8.9],
  medium: [4.0, 6.9],
  low: [0.1, 3.9],
  negligible: [0.0, 2.0],
  unknown: null,
}

const KEV_CHANCE: Readonly<Record<Severity, number>> = {
  critical: 0.25,
  high: 0.06,
  medium: 0.005,
  low: 0,
  negligible: 0,
  unknown: 0,
}

const FIX_CHANCE: Readonly<Record<Severity, number>> = {
  critical: 0.75,
  high: 0.7,
  medium: 0.55,
  low: 0.4,
  negligible: 0.2,
  unknown: 0.3,
}

export const semver = (random: Random): string =>
  `${random.int(0, 4)}.${random.int(0, 30)}.${random.int(0, 20)}`

const bump = (version: string): string => {
  const [major = '0', minor = '0', patch = '0'] = version.split(/[.-]/)
  return `${major}.${minor}.${Number.parseInt(patch, 10) + 1}`
}

const vulnerabilityId = (random: Random): string =>
  random.chance(0.85)
    ? `CVE-${random.int(2018, 2026)}-${random.int(1000, 52_999)}`
    : `GHSA-${random.hex(4)}-${random.hex(4)}-${random.hex(4)}`

const cvss = (random: Random, severity: Severity): number | null => {
  const range = CVSS_RANGE[severity]
  if (range === null || (severity === 'negligible' && random.chance(0.5))) return null
  return Math.round((range[0] + random.next() * (range[1] - range[0])) * 10) / 10
}

/** One finding in an image of `distro`, in an OS package or in `language`'s ecosystem. */
export const drawFinding = (random: Random, distro: Distro, language: string): Finding => {
  const severity = random.weighted(SEVERITY_MIX)
  const os = random.chance(0.6)
  const type = os ? distro.packageType : language
  const name = os ? random.pick(OS_PACKAGES) : random.pick(LANGUAGE_PACKAGES[language] ?? ['unknown'])
  const base = semver(random)
  const version = os ? `${base}${distro.versionSuffix}` : base
  const id = vulnerabilityId(random)
  return {
    id,
    severity,
    package: name,
    version,
    type,
    fix_version: random.chance(FIX_CHANCE[severity]) ? bump(base) : null,
    kev: random.chance(KEV_CHANCE[severity]),
    cvss: cvss(random, severity),
    url: id.startsWith('CVE-')
      ? `https://nvd.nist.gov/vuln/detail/${id}`
      : `https://github.com/advisories/${id}`,
    feed_group: os ? distro.feedGroup : `github:${language}`,
  }
}

/** How many findings a fresh image has: usually a dozen or two, now and then a great many. */
export const findingCount = (random: Random): number =>
  random.chance(0.08) ? random.int(40, 90) : random.chance(0.15) ? 0 : random.int(1, 24)

export const findingKey = (f: Finding): string => `${f.id}\u0000${f.package}\u0000${f.version}`
