import { buildSchema, type GraphQLSchema } from 'graphql'
import { AGGREGATE_COST } from './limits.ts'

/**
 * The report API's schema. Anchore's roots, arguments and paging are kept (`limit`,
 * `nextToken`, `filter`, `pageInfo { nextToken count }`, `results`, `metrics { id name
 * description metricType }`, `metricData(filter: {metricId, start, end}) { metricId value
 * collectedAt }`), so queries written for the reference port over. Beyond it: `asOf` on every
 * report, `vulnerabilityDiff`, `findingAging`, `slaBreaches`, `vulnerabilityBreakdown`, and
 * `projectionLagSeconds` on every answer.
 *
 * Times are RFC 3339 strings. Every root is scoped to the caller's account; an admin may name
 * another (`account`) or, on every root but `events`, ask for all (`allAccounts: true`).
 */
export const reportSchema: GraphQLSchema = buildSchema(/* GraphQL */ `
  """
  The field reads everything in the caller's scope, however little it answers: the query cost
  limit counts it as \`cost\` objects, once each time the query selects it, not once per item
  of its parent.
  """
  directive @aggregate(cost: Int!) on FIELD_DEFINITION

  enum Severity {
    critical
    high
    medium
    low
    negligible
    unknown
  }

  enum PolicyResult {
    pass
    fail
  }

  enum FindingChange {
    "Present at \`to\` only."
    new
    "Present at \`from\` only: fixed, or the tag now points at an image without it."
    fixed
    "Present at both, with another severity, fix or KEV status."
    changed
  }

  type PageInfo {
    "Pass back to get the next page; null on the last page."
    nextToken: String
    "Number of results on this page."
    count: Int!
  }

  input TimeWindow {
    "Inclusive, RFC 3339."
    start: String
    "Exclusive, RFC 3339."
    end: String
  }

  """
  One engine event as projected into the warehouse.
  """
  type Event {
    id: String!
    source: String!
    type: String!
    subject: String!
    account: String!
    level: String!
    resourceType: String!
    subtype: String!
    "RFC 3339 time of the event."
    time: String!
    "The event's data as a JSON string."
    data: String!
  }

  type EventPage {
    pageInfo: PageInfo!
    results: [Event!]!
  }

  input EventFilter {
    "Only for admins: another account's events."
    account: String
    type: String
    id: String
    "RFC 3339 lower bound (inclusive)."
    start: String
    "RFC 3339 upper bound (exclusive)."
    end: String
  }

  input VulnerabilityFilter {
    "Admins only: another account."
    account: String
    "Admins only: every account."
    allAccounts: Boolean = false
    vulnerabilityId: String
    "Any of these severities."
    severity: [Severity!]
    """
    Registry, repository and tag filter by the tags pointing at an image, in every report alike:
    only images a tag of this registry points at (now, or at asOf; with currentOnly false, ever
    pointed at), whatever registry the image was analysed in. An image promoted by digest is
    found under each repository it is tagged in; an image no tag points at, under none.
    """
    registry: String
    "Only images a tag in this repository points at (see registry)."
    repository: String
    "Only images a tag of this name points at (see registry)."
    tag: String
    "Default true: the image each tag points at (now, or at asOf); false: every image it ever pointed at."
    currentOnly: Boolean = true
    fixAvailable: Boolean
    "On CISA's Known Exploited Vulnerabilities list."
    kev: Boolean
    "When the finding was first detected."
    detected: TimeWindow
  }

  type Vulnerability {
    vulnerabilityId: String!
    "The highest severity it was reported with."
    severity: Severity!
    link: String
    cvss: Float
    kev: Boolean!
    fixAvailable: Boolean!
  }

  type TaggedImage {
    registry: String!
    repository: String!
    tag: String!
    digest: String!
    "Whether the tag points at this digest now (or at asOf)."
    current: Boolean!
  }

  type VulnerabilityTags {
    account: String!
    vulnerability: Vulnerability!
    "The first limit (1 to 1,000) in (registry, repository, tag, digest) order; tagCount says how many there are."
    tags(limit: Int = 100): [TaggedImage!]!
    tagCount: Int!
  }

  type TagsByVulnerabilityPage {
    pageInfo: PageInfo!
    results: [VulnerabilityTags!]!
    projectionLagSeconds: Float!
  }

  type Artifact {
    name: String!
    version: String!
    type: String!
    fixVersion: String
  }

  type AffectedImage {
    digest: String!
    "The registry the image was analysed in; the filters match the tags pointing at it, which may be in others."
    registry: String!
    "The repository the image was analysed in (see registry)."
    repository: String!
    """
    The first limit (1 to 1,000) of the image's packages with the vulnerability, by name and
    version; packageCount says how many there are. The default, 10, keeps a page of images
    within the query cost limit; few images have a vulnerability in more packages.
    """
    packages(limit: Int = 10): [Artifact!]!
    packageCount: Int!
  }

  type VulnerabilityImages {
    account: String!
    vulnerability: Vulnerability!
    "The first limit (1 to 1,000) by digest; imageCount says how many there are."
    images(limit: Int = 100): [AffectedImage!]!
    imageCount: Int!
  }

  type ImagesByVulnerabilityPage {
    pageInfo: PageInfo!
    results: [VulnerabilityImages!]!
    projectionLagSeconds: Float!
  }

  type AffectedArtifact {
    name: String!
    version: String!
    type: String!
    fixVersion: String
    imageCount: Int!
  }

  type VulnerabilityArtifacts {
    account: String!
    vulnerability: Vulnerability!
    "The first limit (1 to 1,000) in (name, version, type) order; artifactCount says how many there are."
    artifacts(limit: Int = 100): [AffectedArtifact!]!
    artifactCount: Int!
  }

  type ArtifactsByVulnerabilityPage {
    pageInfo: PageInfo!
    results: [VulnerabilityArtifacts!]!
    projectionLagSeconds: Float!
  }

  input PolicyEvaluationFilter {
    account: String
    allAccounts: Boolean = false
    "The evaluated tag's registry."
    registry: String
    "The evaluated tag's repository."
    repository: String
    "The evaluated tag's name."
    tag: String
    "Default true: the latest evaluation (by evaluatedAt) of each active tag; false: every evaluation, newest first per tag."
    currentOnly: Boolean = true
    result: PolicyResult
    bundleId: String
    evaluated: TimeWindow
  }

  type PolicyReason {
    gate: String!
    trigger: String!
    action: String!
    message: String!
  }

  type TagPolicyEvaluation {
    account: String!
    registry: String!
    repository: String!
    tag: String!
    digest: String!
    evaluationId: String!
    evaluatedAt: String!
    status: PolicyResult!
    finalAction: String!
    bundleId: String!
    bundleDigest: String!
    "The first limit (1 to 1,000) in the order the evaluation lists them; reasonCount says how many there are."
    reasons(limit: Int = 100): [PolicyReason!]!
    reasonCount: Int!
  }

  type PolicyEvaluationsByTagPage {
    pageInfo: PageInfo!
    results: [TagPolicyEvaluation!]!
    projectionLagSeconds: Float!
  }

  input MetricFilter {
    account: String
    allAccounts: Boolean = false
    "One metric's id; an id no metric has is refused (not_found)."
    metricId: String
    "The metrics of this type (counter); a type no metric has is refused."
    metricType: String
  }

  type Metric {
    id: String!
    name: String!
    description: String!
    metricType: String!
    """
    The value now, for the filter's account (summed over accounts for allAccounts). Computed
    over the whole scope once for the page: it counts ${AGGREGATE_COST.toLocaleString('en-US')} towards the query cost limit.
    """
    value: Float! @aggregate(cost: ${AGGREGATE_COST})
  }

  type MetricPage {
    pageInfo: PageInfo!
    results: [Metric!]!
    projectionLagSeconds: Float!
  }

  input MetricDataFilter {
    metricId: String!
    "Inclusive, RFC 3339."
    start: String
    "Exclusive, RFC 3339."
    end: String
    account: String
    allAccounts: Boolean = false
  }

  type MetricDataPoint {
    metricId: String!
    account: String!
    value: Float!
    "The instant the value describes."
    collectedAt: String!
  }

  type MetricDataPage {
    pageInfo: PageInfo!
    "Newest first."
    results: [MetricDataPoint!]!
    projectionLagSeconds: Float!
  }

  input DiffFilter {
    account: String
    allAccounts: Boolean = false
    "The tag's registry: each tag's findings are those of the image it points at."
    registry: String
    "The tag's repository."
    repository: String
    "The tag's name."
    tag: String
    vulnerabilityId: String
    severity: [Severity!]
  }

  type FindingState {
    digest: String!
    severity: Severity!
    fixVersion: String
    kev: Boolean!
  }

  type FindingDiff {
    change: FindingChange!
    account: String!
    registry: String!
    repository: String!
    tag: String!
    vulnerabilityId: String!
    package: String!
    packageVersion: String!
    before: FindingState
    after: FindingState
  }

  type VulnerabilityDiffPage {
    pageInfo: PageInfo!
    from: String!
    to: String!
    results: [FindingDiff!]!
    projectionLagSeconds: Float!
  }

  "Remediation deadlines in days; 0 for none (a negative one is refused). Defaults: critical 15, high 30, medium 90, low 180."
  input SlaInput {
    critical: Int
    high: Int
    medium: Int
    low: Int
    negligible: Int
    unknown: Int
  }

  type SeverityAging {
    severity: Severity!
    openCount: Int!
    meanOpenAgeSeconds: Float
    maxOpenAgeSeconds: Float
    "Resolved in the resolved window (default: ever, up to asOf)."
    resolvedCount: Int!
    "Mean time to remediate those."
    mttrSeconds: Float
    slaDays: Int
    "Open findings older than the SLA."
    openBreaches: Int!
    "Resolved findings that took longer than the SLA."
    resolvedLate: Int!
  }

  type FindingAgingReport {
    asOf: String!
    results: [SeverityAging!]!
    projectionLagSeconds: Float!
  }

  type SlaBreach {
    account: String!
    digest: String!
    "The registry the image was analysed in; the filters match the tags pointing at it, which may be in others."
    registry: String!
    "The repository the image was analysed in (see registry)."
    repository: String!
    vulnerabilityId: String!
    package: String!
    packageVersion: String!
    severity: Severity!
    detectedAt: String!
    ageSeconds: Float!
    slaDays: Float!
    fixAvailable: Boolean!
    kev: Boolean!
  }

  type SlaBreachPage {
    pageInfo: PageInfo!
    asOf: String!
    "Oldest first."
    results: [SlaBreach!]!
    projectionLagSeconds: Float!
  }

  type SeverityBreakdown {
    severity: Severity!
    "Vulnerability matches (a vulnerability in a package version of an image)."
    findings: Int!
    "Distinct vulnerability ids."
    vulnerabilities: Int!
    fixAvailable: Int!
    noFix: Int!
    kev: Int!
    kevFixAvailable: Int!
  }

  type VulnerabilityBreakdownReport {
    asOf: String
    results: [SeverityBreakdown!]!
    projectionLagSeconds: Float!
  }

  type Query {
    "Engine events, newest first: each (source, id) once, at the time of its first copy (the one received first)."
    events(filter: EventFilter, limit: Int = 100, nextToken: String): EventPage!

    "For each vulnerability, the tags whose image has it. Reads every finding in scope, whatever the page: it counts ${AGGREGATE_COST.toLocaleString('en-US')} towards the query cost limit, besides its page."
    tagsByVulnerability(filter: VulnerabilityFilter, limit: Int = 100, nextToken: String, asOf: String): TagsByVulnerabilityPage! @aggregate(cost: ${AGGREGATE_COST})

    "For each vulnerability, the active images that have it and the packages it is in. Reads every finding in scope, whatever the page: it counts ${AGGREGATE_COST.toLocaleString('en-US')} towards the query cost limit, besides its page."
    imagesByVulnerability(filter: VulnerabilityFilter, limit: Int = 100, nextToken: String, asOf: String): ImagesByVulnerabilityPage! @aggregate(cost: ${AGGREGATE_COST})

    "For each vulnerability, the packages it is in and how many images carry each. Reads every finding in scope, whatever the page: it counts ${AGGREGATE_COST.toLocaleString('en-US')} towards the query cost limit, besides its page."
    artifactsByVulnerability(filter: VulnerabilityFilter, limit: Int = 100, nextToken: String, asOf: String): ArtifactsByVulnerabilityPage! @aggregate(cost: ${AGGREGATE_COST})

    "Latest policy evaluation of each active tag, or every evaluation with currentOnly: false. Reads every evaluation in scope, whatever the page: it counts ${AGGREGATE_COST.toLocaleString('en-US')} towards the query cost limit, besides its page."
    policyEvaluationsByTag(filter: PolicyEvaluationFilter, limit: Int = 100, nextToken: String, asOf: String): PolicyEvaluationsByTagPage! @aggregate(cost: ${AGGREGATE_COST})

    "The canned metric definitions, with current values."
    metrics(filter: MetricFilter, limit: Int = 100, nextToken: String): MetricPage!

    "Recorded points of one metric, newest first."
    metricData(filter: MetricDataFilter!, limit: Int = 100, nextToken: String): MetricDataPage!

    "New, fixed and changed findings of each tag between two instants. Reads every finding in scope, whatever the page: it counts ${AGGREGATE_COST.toLocaleString('en-US')} towards the query cost limit, besides its page."
    vulnerabilityDiff(filter: DiffFilter, from: String!, to: String!, limit: Int = 100, nextToken: String): VulnerabilityDiffPage! @aggregate(cost: ${AGGREGATE_COST})

    "Finding age, MTTR and SLA breaches by severity. Reads every finding in scope: it counts ${AGGREGATE_COST.toLocaleString('en-US')} towards the query cost limit."
    findingAging(filter: VulnerabilityFilter, asOf: String, sla: SlaInput, resolved: TimeWindow): FindingAgingReport! @aggregate(cost: ${AGGREGATE_COST})

    "Open findings past their SLA, oldest first. Reads every finding in scope, whatever the page: it counts ${AGGREGATE_COST.toLocaleString('en-US')} towards the query cost limit, besides its page."
    slaBreaches(filter: VulnerabilityFilter, asOf: String, sla: SlaInput, limit: Int = 100, nextToken: String): SlaBreachPage! @aggregate(cost: ${AGGREGATE_COST})

    "Findings by severity with fix-available and KEV counts. Reads every finding in scope: it counts ${AGGREGATE_COST.toLocaleString('en-US')} towards the query cost limit."
    vulnerabilityBreakdown(filter: VulnerabilityFilter, asOf: String): VulnerabilityBreakdownReport! @aggregate(cost: ${AGGREGATE_COST})
  }
`)
