import { Drop, Liquid, Tag, type TagToken, type Template, type TopLevelToken } from 'liquidjs'
import { errorText, type FieldIssue, ValidationError } from '../../../src/errors/index.ts'
import { wildcardMatches } from '../../routing/index.ts'
import { DefaultTemplateError } from './classify.ts'
import { sliceWhole } from './common.ts'
import type { ChannelEndpoint, TemplateField, TemplateOverrides } from './configuration.ts'
import {
  BODIES,
  DEFAULT_TITLE,
  DIGEST_TICKET_TITLE,
  DIGEST_TITLE,
  FINDING_TICKET_TITLE,
  TITLES,
} from './default-templates.ts'
import { type MessageScope, SCOPE_ROOTS } from './message.ts'

/** Which fields each channel renders; a configuration may override only these. */
export const TEMPLATE_FIELDS: { readonly [E in ChannelEndpoint]: readonly TemplateField[] } = {
  slack: ['title', 'text'],
  teams: ['title', 'text'],
  email: ['subject', 'text', 'html'],
  webhook: [],
  github: ['title', 'body', 'comment'],
  jira: ['summary', 'description', 'comment'],
}

/** The fields whose default is the event type's title. */
const TITLE_FIELDS: ReadonlySet<TemplateField> = new Set(['title', 'subject', 'summary'])

/** The limits every template runs under: a template is data a user typed, not code Herald trusts. */
export const TEMPLATE_LIMITS = {
  /** Characters of one template. */
  maxTemplateChars: 8_000,
  /** Milliseconds one render may take. */
  renderMs: 250,
  /** liquidjs's allocation budget (array and string building) of one render. */
  memory: 200_000,
  /** Characters of one rendered field; channels cut further to their services' limits. */
  maxOutputChars: 40_000,
} as const

type Flavour = 'plain' | 'html' | 'slack' | 'markdown'

const FLAVOURS: Partial<Record<`${ChannelEndpoint}.${TemplateField}`, Flavour>> = {
  'slack.text': 'slack',
  'email.html': 'html',
  'github.body': 'markdown',
  'github.comment': 'markdown',
}

const escapeHtml = (value: unknown): string =>
  String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;')

// Slack's mrkdwn gives &, < and > meaning (<url|text>, <!channel>); values must not.
const escapeSlack = (value: unknown): string =>
  String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')

/**
 * GitHub Markdown gives punctuation meaning (code spans, links, tables, emphasis, entities),
 * pings whoever an `@name` names, links (and notifies) the issue a `#1` names, and GitHub turns
 * a bare `https://…` or `www.…` into a link; an event's text (a tag, a registry's error) must do none of that. Its punctuation is
 * backslash-escaped (`&` too, so `&#64;` is no entity), a line break becomes a space (a table
 * row stays one row), an `@` that would start a mention gets a zero-width space after it (an
 * image reference's `repo@sha256:…` is not a mention and is left alone), and so do a `#` and a
 * `GH` before a number (`#1`, `owner/repo#42`, `GH-7` would link another issue and notify it),
 * a URL's `:` and a `www`, which GitHub then no longer links. `| raw` in a template opts out.
 */
const escapeMarkdown = (value: unknown): string => {
  const punctuated = String(value ?? '')
    .replaceAll(/\r\n?|\n/g, ' ')
    .replaceAll(/[\\`*_[\]<>|~#!()&]/g, '\\$&')
  // Herald's own link into its UI stays a link.
  if (value instanceof UiLink) return punctuated
  return punctuated
    .replaceAll(/(^|[^A-Za-z0-9_])@(?=[A-Za-z0-9])/g, '$1@\u200b')
    .replaceAll(/\\#(?=[0-9])/g, '\\#\u200b')
    .replaceAll(/\b(GH)-(?=[0-9])/gi, '$1\u200b-')
    .replaceAll(/\b([A-Za-z][A-Za-z0-9+.-]*):(?=\/\/)/g, '$1:\u200b')
    .replaceAll(/\b(www)(?=\.)/gi, '$1\u200b')
}

/**
 * `link`, Herald's own URL into its UI (`ui_url` and the event's id, encoded), as templates
 * see it: it reads as its text everywhere, and GitHub Markdown's escaping knows it for a link
 * to keep, where a URL in an event's text is not linked.
 */
class UiLink extends Drop {
  readonly url: string
  constructor(url: string) {
    super()
    this.url = url
  }
  override valueOf(): string {
    return this.url
  }
  override toString(): string {
    return this.url
  }
}

/** Tags that read other templates: with no file system behind them they could only fail, so they are refused when parsed. */
class RefusedTag extends Tag {
  constructor(token: TagToken, remainTokens: TopLevelToken[], liquid: Liquid) {
    super(token, remainTokens, liquid)
    throw new Error(`the ${token.name} tag is not available in notification templates`)
  }
  render(): string {
    return ''
  }
}

const engine = (flavour: Flavour): Liquid => {
  const liquid = new Liquid({
    // An empty in-memory file system: nothing on disk is reachable from a template.
    templates: {},
    relativeReference: false,
    strictFilters: true,
    strictVariables: false,
    ownPropertyOnly: true,
    parseLimit: TEMPLATE_LIMITS.maxTemplateChars,
    renderLimit: TEMPLATE_LIMITS.renderMs,
    memoryLimit: TEMPLATE_LIMITS.memory,
    timezoneOffset: 0,
    ...(flavour === 'html'
      ? { outputEscape: escapeHtml }
      : flavour === 'slack'
        ? { outputEscape: escapeSlack }
        : flavour === 'markdown'
          ? { outputEscape: escapeMarkdown }
          : {}),
  })
  for (const name of ['include', 'render', 'layout']) liquid.registerTag(name, RefusedTag)
  return liquid
}

const engines: Record<Flavour, Liquid> = {
  plain: engine('plain'),
  html: engine('html'),
  slack: engine('slack'),
  markdown: engine('markdown'),
}

const ALL_FIELDS: readonly TemplateField[] = [
  'title',
  'text',
  'subject',
  'html',
  'body',
  'comment',
  'summary',
  'description',
]

const flavourOf = (endpoint: ChannelEndpoint | undefined, field: TemplateField): Flavour =>
  endpoint === undefined
    ? field === 'html'
      ? 'html'
      : 'plain'
    : (FLAVOURS[`${endpoint}.${field}`] ?? 'plain')

// Parsed templates by flavour and source; configurations repeat, so parsing once pays.
const parsed = new Map<string, Template[]>()
const MAX_PARSED = 1_000

const parse = (flavour: Flavour, source: string): Template[] => {
  const cacheKey = `${flavour}\u0000${source}`
  const hit = parsed.get(cacheKey)
  if (hit !== undefined) return hit
  const templates = engines[flavour].parse(source)
  if (parsed.size >= MAX_PARSED) parsed.clear()
  parsed.set(cacheKey, templates)
  return templates
}

const firstLine = (error: unknown): string => errorText(error).split('\n', 1)[0] ?? 'invalid template'

/**
 * A rendered field past `maxOutputChars`, cut to it with `…` to say so; HTML is cut before a
 * tag or entity the limit falls inside, so what is left still reads as HTML.
 */
const bounded = (flavour: Flavour, out: string): string => {
  if (out.length <= TEMPLATE_LIMITS.maxOutputChars) return out
  let kept = sliceWhole(out, TEMPLATE_LIMITS.maxOutputChars - 1)
  if (flavour === 'html') {
    const tag = kept.lastIndexOf('<')
    if (tag > kept.lastIndexOf('>')) kept = kept.slice(0, tag)
    const entity = kept.lastIndexOf('&')
    if (entity > kept.lastIndexOf(';')) kept = kept.slice(0, entity)
  }
  return `${kept}…`
}

const renderParsed = async (
  flavour: Flavour,
  templates: Template[],
  scope: { readonly link?: string | null },
): Promise<string> => {
  const variables = typeof scope.link === 'string' ? { ...scope, link: new UiLink(scope.link) } : scope
  return bounded(flavour, String(await engines[flavour].render(templates, variables)))
}

/** The template of one field: the most specific override, else Herald's default. */
const chooseOverride = (overrides: TemplateOverrides | undefined, type: string, field: TemplateField) => {
  const byType = overrides?.event_types ?? {}
  const exact = byType[type]?.[field]
  if (exact !== undefined) return { source: exact, path: `templates.event_types["${type}"].${field}` }
  const pattern = Object.keys(byType)
    .filter((p) => p !== type && wildcardMatches(p, type) && byType[p]?.[field] !== undefined)
    .sort((a, b) => b.length - a.length)[0]
  if (pattern !== undefined)
    return { source: byType[pattern]?.[field] ?? '', path: `templates.event_types["${pattern}"].${field}` }
  const top = overrides?.[field]
  return top === undefined ? undefined : { source: top, path: `templates.${field}` }
}

export interface DefaultTemplateOptions {
  /** A ticket's title: for a vulnerability update, about its one finding. */
  readonly ticket?: boolean
}

/** Herald's default template of a field for a scope. */
export const defaultTemplate = (
  endpoint: ChannelEndpoint,
  field: TemplateField,
  scope: Pick<MessageScope, 'type' | 'digest'>,
  options: DefaultTemplateOptions = {},
): string => {
  if (TITLE_FIELDS.has(field)) {
    if (scope.digest !== null) return options.ticket === true ? DIGEST_TICKET_TITLE : DIGEST_TITLE
    if (options.ticket === true && scope.type === 'user.checks.tag.vulnerabilities.update')
      return FINDING_TICKET_TITLE
    return TITLES[scope.type] ?? DEFAULT_TITLE
  }
  return BODIES[endpoint][field] ?? ''
}

export interface RenderedField {
  readonly text: string
  /** Set when the configuration's template failed on this event and the default was used instead. */
  readonly fallback?: string
}

/**
 * Renders one field for a scope: the configuration's override when it has one, else the
 * default. An override that fails on this event's data (a render limit) does not lose the
 * notification: the default is rendered and `fallback` says why. A default that fails throws
 * `DefaultTemplateError`, naming the template and the reason.
 *
 * @example
 * const { text } = await renderField('email', 'subject', configuration.templates, scope)
 * // 'Validation completed: my-test-validation-scan'
 */
export const renderField = async (
  endpoint: ChannelEndpoint,
  field: TemplateField,
  overrides: TemplateOverrides | undefined,
  scope: MessageScope & { readonly title?: string },
  options: DefaultTemplateOptions = {},
): Promise<RenderedField> => {
  const flavour = flavourOf(endpoint, field)
  const renderDefault = async (): Promise<string> => {
    try {
      return await renderParsed(
        flavour,
        parse(flavour, defaultTemplate(endpoint, field, scope, options)),
        scope,
      )
    } catch (error) {
      const reason = firstLine(error)
      throw new DefaultTemplateError(endpoint, field, reason, reason.startsWith(RENDER_TIME_LIMIT), error)
    }
  }
  const chosen = chooseOverride(overrides, scope.type, field)
  if (chosen !== undefined) {
    try {
      return { text: await renderParsed(flavour, parse(flavour, chosen.source), scope) }
    } catch (error) {
      const text = await renderDefault()
      return { text, fallback: `${chosen.path}: ${firstLine(error)}; Herald's default was used` }
    }
  }
  return { text: await renderDefault() }
}

/** What liquidjs says when a render passes `renderLimit`, its one limit in time. */
const RENDER_TIME_LIMIT = 'template render limit exceeded'

/** A representative scope to try templates against when they are saved. */
const SAMPLE_SCOPE: MessageScope & { title: string } = {
  title: 'Vulnerability update: docker.io/library/nginx:1.27',
  type: 'user.checks.tag.vulnerabilities.update',
  subtype: null,
  level: 'info',
  account: 'acme',
  resource: 'docker.io/library/nginx:1.27',
  resource_type: 'image_tag',
  time: '2026-11-22T10:00:00Z',
  source: '/engine/policy',
  subject: null,
  event_id: 'evt-1',
  headline: 'Vulnerability update detected for a tagged image',
  summary: 'Vulnerability update detected for a tagged image.',
  details: ['New: CVE-2024-6119 (high) in openssl 3.0.13, fixed in 3.0.14'],
  findings: [
    {
      id: 'CVE-2024-6119',
      severity: 'high',
      package: 'openssl',
      version: '3.0.13',
      fix_version: '3.0.14',
      kev: false,
      cvss: 7.5,
      url: null,
      change: 'added',
    },
  ],
  link: 'https://herald.example.com/events/evt-1',
  ui_url: 'https://herald.example.com',
  event: { specversion: '1.0', id: 'evt-1', type: 'user.checks.tag.vulnerabilities.update', account: 'acme' },
  data: { full_tag: 'docker.io/library/nginx:1.27', added: [], removed: [], updated: [] },
  delivery: { id: 'd-1', configuration_id: 'cfg-1', created_at: '2026-11-22T10:00:01Z' },
  digest: null,
  payload: null,
  regression: false,
}

const EVENT_TYPE_PATTERN = /^[A-Za-z0-9._*-]{1,200}$/

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const checkSet = async (
  endpoint: ChannelEndpoint | undefined,
  set: Record<string, unknown>,
  prefix: string,
  issues: FieldIssue[],
): Promise<void> => {
  const allowed = endpoint === undefined ? ALL_FIELDS : TEMPLATE_FIELDS[endpoint]
  for (const [name, source] of Object.entries(set)) {
    const path = `${prefix}.${name}`
    if (!(allowed as readonly string[]).includes(name)) {
      issues.push({
        path,
        message:
          allowed.length === 0
            ? `${endpoint ?? 'these'} messages are not templated`
            : `not a template field${endpoint === undefined ? '' : ` of ${endpoint}`}; one of ${allowed.join(', ')}`,
      })
      continue
    }
    if (typeof source !== 'string') {
      issues.push({ path, message: 'must be a string' })
      continue
    }
    if (source.length > TEMPLATE_LIMITS.maxTemplateChars) {
      issues.push({ path, message: `must be at most ${TEMPLATE_LIMITS.maxTemplateChars} characters` })
      continue
    }
    const field = name as TemplateField
    const flavour = flavourOf(endpoint, field)
    let templates: Template[]
    try {
      templates = parse(flavour, source)
    } catch (error) {
      issues.push({ path, message: `invalid template: ${firstLine(error)}` })
      continue
    }
    const roots: readonly string[] = TITLE_FIELDS.has(field) ? SCOPE_ROOTS : [...SCOPE_ROOTS, 'title']
    const unknown = engines[flavour].globalVariablesSync(templates).filter((v) => !roots.includes(v))
    if (unknown.length > 0) {
      issues.push({
        path,
        message: `unknown variable${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')}; templates can use ${roots.join(', ')}`,
      })
      continue
    }
    try {
      await renderParsed(flavour, templates, SAMPLE_SCOPE)
    } catch (error) {
      issues.push({ path, message: `fails when rendered: ${firstLine(error)}` })
    }
  }
}

/**
 * Every problem of a configuration's template overrides, each naming its field
 * (`templates.subject`, `templates.event_types["user.checks.*"].text`): a syntax error, an
 * unknown filter or variable, a tag that reads other templates, a field the channel does not
 * render, a template too long, or one that breaks a render limit on a sample event.
 */
export const templateIssues = async (
  overrides: unknown,
  endpoint?: ChannelEndpoint,
): Promise<FieldIssue[]> => {
  const issues: FieldIssue[] = []
  if (overrides === undefined || overrides === null) return issues
  if (!isRecord(overrides)) return [{ path: 'templates', message: 'must be an object of templates by field' }]
  const { event_types: byType, ...top } = overrides
  await checkSet(endpoint, top, 'templates', issues)
  if (byType === undefined) return issues
  if (!isRecord(byType)) {
    issues.push({
      path: 'templates.event_types',
      message: 'must be an object of template sets by event type',
    })
    return issues
  }
  for (const [pattern, set] of Object.entries(byType)) {
    const path = `templates.event_types["${pattern}"]`
    if (!EVENT_TYPE_PATTERN.test(pattern)) {
      issues.push({ path, message: 'must be an event type or a pattern with * wildcards' })
      continue
    }
    if (!isRecord(set)) {
      issues.push({ path, message: 'must be an object of templates by field' })
      continue
    }
    await checkSet(endpoint, set, path, issues)
  }
  return issues
}

/**
 * What the configuration API calls when a configuration is saved: refuses bad template
 * overrides with a `ValidationError` (400 problem details) that names every bad field. With
 * the endpoint, fields that endpoint does not render are refused too.
 *
 * @example
 * await validateTemplates(body.templates, 'email') // throws ValidationError on `{{ title | nope }}`
 */
export const validateTemplates = async (overrides: unknown, endpoint?: ChannelEndpoint): Promise<void> => {
  const issues = await templateIssues(overrides, endpoint)
  if (issues.length > 0) throw new ValidationError('invalid notification templates', issues)
}
