import type { Severity } from '../../events/index.ts'

/** One canned metric, as `GET /v1/reports/metrics` and GraphQL's `metrics` list it (Anchore's fields). */
export interface MetricDefinition {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly metricType: 'counter'
}

const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'negligible', 'unknown']

const title = (s: string) => `${s.charAt(0).toUpperCase()}${s.slice(1)}`

const scopes = {
  current: {
    name: 'Current',
    tags: 'each active tag (counted once per tag pointing at the image it points at)',
  },
  all: {
    name: 'All',
    tags: 'every tag, active or not, and every image it ever pointed at (counted once per tag and image)',
  },
} as const

const vulnerabilityMetrics = (scope: keyof typeof scopes): MetricDefinition[] => [
  ...SEVERITIES.map((severity) => ({
    id: `vulnerabilities.tags.${scope}.${severity}`,
    name: `${scopes[scope].name} tags: ${severity} vulnerabilities`,
    description: `${title(severity)} vulnerability findings in the active images of ${scopes[scope].tags}.`,
    metricType: 'counter' as const,
  })),
  {
    id: `vulnerabilities.tags.${scope}.fix_available`,
    name: `${scopes[scope].name} tags: vulnerabilities with a fix`,
    description: `Vulnerability findings with a fix available in the active images of ${scopes[scope].tags}.`,
    metricType: 'counter',
  },
  {
    id: `vulnerabilities.tags.${scope}.kev`,
    name: `${scopes[scope].name} tags: known exploited vulnerabilities`,
    description: `Vulnerability findings on CISA's Known Exploited Vulnerabilities list in the active images of ${scopes[scope].tags}.`,
    metricType: 'counter',
  },
]

const policyMetrics = (scope: keyof typeof scopes): MetricDefinition[] =>
  (['pass', 'fail'] as const).map((result) => ({
    id: `policy_evaluations.${scope}.${result}`,
    name: `${scopes[scope].name} tags: policy evaluations that ${result === 'pass' ? 'pass' : 'fail'}`,
    description:
      scope === 'current'
        ? `Active tags whose latest policy evaluation is ${result}.`
        : `Tags, active or not, whose latest policy evaluation is ${result}.`,
    metricType: 'counter',
  }))

/**
 * The canned metrics, with Anchore's id pattern. Every value is a count at one instant: now
 * (live) or the instant a data point describes. The unit of the vulnerability metrics is a
 * finding (one vulnerability in one package version of an image) per tag, so an image two
 * tags point at counts twice, as it does for anyone triaging by tag.
 */
export const METRICS: readonly MetricDefinition[] = [
  ...vulnerabilityMetrics('current'),
  ...vulnerabilityMetrics('all'),
  ...policyMetrics('current'),
  ...policyMetrics('all'),
  {
    id: 'images.current',
    name: 'Active images',
    description: 'Images analysed and neither deleted nor missing from the latest inventory.',
    metricType: 'counter',
  },
  {
    id: 'images.all',
    name: 'All images',
    description: 'Every image ever analysed, including deleted ones.',
    metricType: 'counter',
  },
  {
    id: 'tags.current',
    name: 'Active tags',
    description: 'Tags pointing at an image and neither deleted nor missing from the latest inventory.',
    metricType: 'counter',
  },
  {
    id: 'tags.all',
    name: 'All tags',
    description: 'Every tag ever seen, including deleted ones.',
    metricType: 'counter',
  },
]

const byId = new Map(METRICS.map((m) => [m.id, m]))

export const metricDefinition = (id: string): MetricDefinition | undefined => byId.get(id)
