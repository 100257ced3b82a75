import type { ChannelEndpoint, TemplateField } from './configuration.ts'

/**
 * Herald's own templates, in the same Liquid a configuration overrides them with. Titles are
 * per event type (the seed's "Validation completed: my-test-validation-scan" is the posture
 * scan's); bodies are per channel and read the scope's `details`, which are per event type.
 */

const POSTURE_TITLE =
  '{% assign what = subtype | default: data.action %}{% case what %}' +
  '{% when "posture-scan-failure-threshold-limit-exceeds" %}Validation failure threshold exceeded' +
  '{% when "posture-scan-new-resource-in-inventory", "new-resource-found" %}New resource found' +
  '{% when "posture-scan-completed", "scan-completed" %}Validation completed' +
  '{% else %}{{ headline }}{% endcase %}: {{ resource }}'

/** The title of a message about one event, by event type; `DEFAULT_TITLE` for the others. */
export const TITLES: Readonly<Record<string, string>> = {
  'user.image.analysis.completed': 'Image analysis completed: {{ resource }}',
  'user.image.analysis.failed': 'Image analysis failed: {{ resource }}',
  'user.checks.tag.vulnerabilities.update': 'Vulnerability update: {{ resource }}',
  'user.checks.tag.policy_evaluation.update': 'Policy evaluation {{ data.curr_eval.status }}: {{ resource }}',
  'user.policy.active.updated': 'Active policy bundle changed: {{ resource }}',
  'user.policy.active.content_change': 'Active policy content changed: {{ resource }}',
  'com.ibm.cloud.compliance.posture': POSTURE_TITLE,
  'com.ibm.cloud.compliance.test': 'Test notification: {{ summary }}',
}

export const DEFAULT_TITLE = '{{ headline }}: {{ resource }}'

export const DIGEST_TITLE =
  'Herald digest: {{ digest.total }} event{% if digest.total != 1 %}s{% endif %} for {{ account }}'

/**
 * A ticket channel files a configuration's digests in one ticket (each later digest comments
 * on it), so its title names the configuration, not one window's count.
 */
export const DIGEST_TICKET_TITLE =
  'Herald digests for {{ account }}: configuration {{ delivery.configuration_id }}'

/** A vulnerability ticket is about one finding; its title names it. */
export const FINDING_TICKET_TITLE =
  '{% assign f = findings | first %}{% if findings.size == 1 %}{{ f.id }} ({{ f.severity }}) in {{ f.package }} {{ f.version }}: {{ resource }}{% else %}Vulnerabilities: {{ resource }}{% endif %}'

const DIGEST_NONE_LISTED = 'The events are too large to list here.'

const DIGEST_LINES =
  '{% for c in digest.counts %}\n- {{ c.count }} × {{ c.type }} ({{ c.level }}){% endfor %}'

/**
 * The window's first events, one line each, and how many more were counted; a digest too
 * large for the event log with any of them listed lists none, and says why.
 */
const digestEvents = (bullet: string) =>
  `{% if digest.events.size > 0 %}\n\nFirst events:{% for e in digest.events %}\n${bullet} {{ e.time }} {{ e.type }} ({{ e.level }}): {{ e.resource }}{% endfor %}` +
  '{% if digest.omitted > 0 %}\n… and {{ digest.omitted }} more{% endif %}' +
  `{% else %}\n\n${DIGEST_NONE_LISTED}{% endif %}`

/** A digest in plain text or Markdown: the window, the counts, the first events. */
const DIGEST_TEXT =
  '{{ digest.total }} event{% if digest.total != 1 %}s{% endif %} between {{ digest.window_start }} and {{ digest.window_end }}:' +
  DIGEST_LINES +
  digestEvents('-')

const PLAIN_TEXT =
  '{% if digest %}' +
  DIGEST_TEXT +
  '{% else %}{{ summary }}\n\nLevel:    {{ level }}\nResource: {{ resource }}\nAccount:  {{ account }}\nTime:     {{ time }}\nEvent:    {{ type }} ({{ event_id }})' +
  '{% if details.size > 0 %}\n{% for line in details %}\n- {{ line }}{% endfor %}{% endif %}{% endif %}' +
  '{% if link %}\n\nView in Herald: {{ link }}{% endif %}' +
  '{% if payload %}\n\nEvent payload:\n{{ payload }}{% endif %}\n'

const HTML =
  '<!doctype html><html><body style="font-family:sans-serif">' +
  '<h2>{{ title }}</h2>' +
  '{% if digest %}<p>{{ digest.total }} event{% if digest.total != 1 %}s{% endif %} between {{ digest.window_start }} and {{ digest.window_end }}:</p><ul>' +
  '{% for c in digest.counts %}<li>{{ c.count }} × {{ c.type }} ({{ c.level }})</li>{% endfor %}</ul>' +
  '{% if digest.events.size > 0 %}<p>First events:</p><ul>{% for e in digest.events %}<li>{{ e.time }} {{ e.type }} ({{ e.level }}): {{ e.resource }}</li>{% endfor %}</ul>' +
  '{% if digest.omitted > 0 %}<p>… and {{ digest.omitted }} more</p>{% endif %}' +
  `{% else %}<p>${DIGEST_NONE_LISTED}</p>{% endif %}` +
  '{% else %}<p>{{ summary }}</p><table cellpadding="4">' +
  '<tr><th align="left">Level</th><td>{{ level }}</td></tr>' +
  '<tr><th align="left">Resource</th><td>{{ resource }}</td></tr>' +
  '<tr><th align="left">Account</th><td>{{ account }}</td></tr>' +
  '<tr><th align="left">Time</th><td>{{ time }}</td></tr>' +
  '<tr><th align="left">Event</th><td>{{ type }} ({{ event_id }})</td></tr></table>' +
  '{% if details.size > 0 %}<ul>{% for line in details %}<li>{{ line }}</li>{% endfor %}</ul>{% endif %}{% endif %}' +
  '{% if link %}<p><a href="{{ link }}">View in Herald</a></p>{% endif %}' +
  '{% if payload %}<h3>Event payload</h3><pre>{{ payload }}</pre>{% endif %}' +
  '</body></html>'

/** Slack's mrkdwn: the section under the header; the fields (level, resource, …) are blocks of their own. */
const SLACK_TEXT =
  '{% if digest %}*{{ digest.total }}* event{% if digest.total != 1 %}s{% endif %} between {{ digest.window_start }} and {{ digest.window_end }}' +
  DIGEST_LINES.replace('- ', '• ') +
  digestEvents('•') +
  '{% else %}{{ summary }}{% for line in details %}\n• {{ line }}{% endfor %}{% endif %}'

/** Plain text: a Teams card shows it as written, in TextRuns, which render no Markdown. */
const TEAMS_TEXT =
  '{% if digest %}{{ digest.total }} event{% if digest.total != 1 %}s{% endif %} between {{ digest.window_start }} and {{ digest.window_end }}' +
  DIGEST_LINES.replace('- ', '• ') +
  digestEvents('•') +
  '{% else %}{{ summary }}{% for line in details %}\n• {{ line }}{% endfor %}{% endif %}'

const GITHUB_BODY =
  '{% if digest %}' +
  DIGEST_TEXT +
  '{% if link %}\n\n[View in Herald]({{ link }}){% endif %}' +
  '\n\n_Filed by Herald. This configuration gets its events as digests: each later digest comments here, and reopens the issue if it was closed._\n' +
  '{% else %}{{ summary }}\n\n| | |\n|---|---|\n| Level | {{ level }} |\n| Resource | {{ resource }} |\n| Account | {{ account }} |\n| Time | {{ time }} |\n| Event | {{ type }} ({{ event_id }}) |\n' +
  '{% if details.size > 0 %}\n{% for line in details %}- {{ line }}\n{% endfor %}{% endif %}' +
  '{% if link %}\n[View in Herald]({{ link }})\n{% endif %}' +
  '\n_Filed by Herald. Herald comments here when this happens again and reopens the issue if it comes back after being closed._\n{% endif %}'

const TICKET_COMMENT =
  '{% if digest %}{% if regression %}A new digest after the ticket was closed.{% else %}A new digest.{% endif %}\n\n' +
  DIGEST_TEXT +
  '{% else %}{% if regression %}Regression: this happened again after the ticket was closed.{% else %}This happened again.{% endif %}\n\n' +
  '{{ summary }}\nTime: {{ time }}\nEvent: {{ type }} ({{ event_id }})' +
  '{% for line in details %}\n- {{ line }}{% endfor %}{% endif %}' +
  '{% if link %}\n\nView in Herald: {{ link }}{% endif %}\n'

const JIRA_DESCRIPTION =
  '{% if digest %}' +
  DIGEST_TEXT +
  '{% if link %}\n\nView in Herald: {{ link }}{% endif %}' +
  '\n\nFiled by Herald. This configuration gets its events as digests: each later digest comments here, and reopens the ticket if it was closed.' +
  '{% else %}{{ summary }}\n\nLevel: {{ level }}\nResource: {{ resource }}\nAccount: {{ account }}\nTime: {{ time }}\nEvent: {{ type }} ({{ event_id }})' +
  '{% if details.size > 0 %}\n{% for line in details %}\n- {{ line }}{% endfor %}{% endif %}' +
  '{% if link %}\n\nView in Herald: {{ link }}{% endif %}\n\nFiled by Herald.{% endif %}'

/** Bodies by channel and field; the title-like fields (title, subject, summary) come from `TITLES`. */
export const BODIES: { readonly [E in ChannelEndpoint]: Readonly<Partial<Record<TemplateField, string>>> } = {
  slack: { text: SLACK_TEXT },
  teams: { text: TEAMS_TEXT },
  email: { text: PLAIN_TEXT, html: HTML },
  webhook: {},
  github: { body: GITHUB_BODY, comment: TICKET_COMMENT },
  jira: { description: JIRA_DESCRIPTION, comment: TICKET_COMMENT },
}
