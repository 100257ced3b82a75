/**
 * Every configuration key: type, default, secrecy and meaning. The loader, the env scheme,
 * `redactConfig` and REFERENCE.md are all derived from this tree.
 */
import {
  ADMIN_TOKEN_MIN_LENGTH,
  allowlistEntry,
  base64Key,
  bearerToken,
  boolean,
  databaseName,
  decimal,
  group,
  hostAddress,
  hostPort,
  httpUrl,
  httpUrlWithoutUserinfo,
  integer,
  key,
  kurrentConnectionString,
  listOf,
  milliseconds,
  nonEmptyString,
  nullable,
  oneOf,
  optionalGroup,
  type ShapeValue,
  secretString,
  timerMilliseconds,
  timerSeconds,
  topicName,
} from './spec.ts'
import type { Config } from './types.ts'

const positive = integer(1)

/**
 * The longest step of `retry_schedule_ms`: a week is already far past any endpoint's outage
 * worth retrying through, and the deliverer never waits longer (MAX_RETRY_WAIT_MS in
 * streams/delivery/retry-policy.ts), since the next attempt's time must stay a date.
 */
const RETRY_STEP_MAX_MS = 7 * 86_400_000

// Names of the later work each key waits for; REFERENCE.md prints them, so keep them short.

export const schema = group({
  listen: key(hostAddress, { default: '0.0.0.0', doc: 'Address the HTTP API binds.' }),
  port: key(integer(0, 65535), {
    default: 8228,
    doc: 'Port the HTTP API listens on; 0 picks a free port (logged in `herald.started`).',
  }),
  data_dir: key(nonEmptyString, {
    default: './data',
    doc: 'Folder of Herald’s local files: the embedded adapters’ (`eventlog.sqlite`, `eventstore.sqlite`, `warehouse/`), the delivery log and its view (`deliveries.sqlite`, `deliveries-view.sqlite`), the router’s and the projector’s processed-id windows and the digest buffer (`processed-ids.sqlite`, `projected-ids.sqlite`, `digests.sqlite`), the metric corrections still due (`metric-corrections.sqlite`), the Jira issues filed lately (`recent-tickets.sqlite`), the generated `secret.key`, and `herald.lock` with `herald.pid`: one process at a time may use the folder (the lock is dropped by the operating system when the process ends, however it ends; `herald.pid` names the holder). A relative path is resolved against the working directory. Keep it on persistent storage, also with Kafka and KurrentDB. `herald start` creates it mode 0700 and its files for its own user only (umask 077); it warns (`herald.file_mode_too_open`) of a `secret.key` or `admin-token` other users may read or change.',
  }),
  log_level: key(oneOf(['debug', 'info', 'warn', 'error'] as const), {
    default: 'info',
    doc: 'Lowest level written to the log, kafkajs’s own lines (`kafka_event_log.client`) included.',
  }),
  require_auth: key(boolean, {
    default: true,
    doc: 'Seed key. Requests need `Authorization: Bearer <token>`; `false` lets requests without a token through as the admin account (development only; every start then logs the warning `auth.not_required`, naming the address: `listen` is every interface by default). A token that is sent is still checked: a wrong one answers 401, a known one acts as its own account and role.',
  }),
  admin_token: key(nullable(bearerToken(ADMIN_TOKEN_MIN_LENGTH)), {
    default: null,
    secret: 'value',
    doc: 'Seeds an admin API token (usually from `HERALD_ADMIN_TOKEN`) so a fresh install can create the first tokens. At least 16 characters without whitespace (a line break around it, as a file read into the variable leaves, is dropped); never printed. When unset and `require_auth` is on, `herald start` generates one into `data_dir/admin-token`.',
  }),
  authorization_handler: key(oneOf(['native', 'external'] as const), {
    default: 'native',
    doc: 'Seed key. `native`: the built-in role table decides; `external`: each action is POSTed to `authorization_handler_config.endpoint` as `{principal: {account, role}, action, request: {method, path}}`, and allowed only on a 200 answer `{"allowed": true}` (no usable answer: 503, never allowed).',
  }),
  authorization_handler_config: group({
    endpoint: key(nullable(httpUrlWithoutUserinfo), {
      default: null,
      doc: 'URL of the external authorizer. Required when `authorization_handler` is `external`. A URL with user-info (`https://user:password@host/…`) is refused: Herald calls it with `fetch`, which cannot send one.',
    }),
    timeout_ms: key(timerMilliseconds, {
      default: 2000,
      doc: 'Milliseconds to wait for the external authorizer before answering 503.',
    }),
  }),
  ui_url: key(nullable(httpUrl), {
    default: null,
    doc: 'Seed key. When set, messages link to the UI at this URL; when unset, messages carry no links.',
  }),
  shutdown_timeout_ms: key(timerMilliseconds, {
    default: 30000,
    doc: 'Milliseconds a graceful shutdown may take before Herald ends anyway, killing itself (SIGKILL: exit status 137), since an exit could wait for a chDB statement still running. Requests in flight get a quarter of it to finish, then their connections are dropped unanswered; the consumers finish and commit their batches meanwhile.',
  }),
  outbound: group({
    allowlist: key(listOf(allowlistEntry, 'a list of host names, IP addresses or CIDR ranges'), {
      default: [],
      doc: 'Hosts (`*.example.com` allowed), IP addresses and CIDR ranges the SSRF guard lets outbound requests reach even when they are private or loopback. `HERALD_OUTBOUND_ALLOWLIST` is an alias of the variable.',
    }),
    sender_thread: key(boolean, {
      default: true,
      doc: 'Outbound HTTP requests (webhooks, Slack, Teams, GitHub, Jira) go out from a thread of their own, `http-sender`, so connecting, TLS and parsing the answers leave the event loop that schedules deliveries and serves the API. The SSRF guard still judges every target on the event loop first. `false`: the requests run on the event loop.',
    }),
  }),
  metrics: group({
    account_series_limit: key(integer(0, 10_000), {
      default: 0,
      doc: '`/metrics` is served without a token, so by default none of its series names an account: `herald_events_ingested_total` counts every account’s events together. A number above 0 gives that many accounts a series of their own (`herald_events_ingested_total{account="acme"}`), the first ones to send events since the process started; the accounts after them are counted together under `account="_other"` (never an account name), so the series cannot grow with the accounts. Anyone who can reach the port then sees those accounts’ names and how active they are.',
    }),
  }),
  notifications: group({
    enabled: key(boolean, {
      default: true,
      doc: 'Seed key. `false`: no events are routed and nothing is delivered; the configuration API keeps working.',
    }),
    cycle_timers: group({
      notifications: key(positive, {
        default: 30,
        doc: 'Seed key. Seconds: the digest window of a configuration that asks for digests (`digest: true`) without naming its own `digest_window_seconds`. The events it matches within a window go out as one digest when the window closes; windows are aligned to multiples of their length, and buffered durably in `data_dir/digests.sqlite`.',
      }),
    }),
    digest_max_attempts: key(integer(1, 1_000_000), {
      default: 150,
      doc: 'Times a closed digest window may fail to go out for a reason that retrying does not cure — its digest cannot be made (its events cannot be read back from a damaged `digests.sqlite`), it is too large for the event log even listing none of its events, or the log refuses it for good — each logged as `router.digest_deferred` and tried again after 1 s, 2 s, … up to 10 minutes between tries (150: about a day). Then it is given up: set aside on `event_log.topics.dlq` (code `digest_undeliverable`, its first events as a CloudEvents batch, `herald.digest.*` headers naming the window), logged as `router.digest_dead_lettered`, and dropped from the buffer. An event log that cannot be reached counts no attempt: the windows wait for it, however long.',
    }),
    limits: group({
      selectors_per_configuration: key(integer(1, 100_000), {
        default: 500,
        doc: 'Most selectors one configuration may have; adding one more is refused with 409 `limit_reached` (naming `selectors`). Every request about a configuration works on all its selectors (and the first one an instance serves folds its whole history), and the router rebuilds an account’s selectors on each change, so without a bound one account could slow the API and routing for all. One selector can match many events (type wildcards, a content pattern with `$or`). Lowering it removes no selector a configuration already has.',
      }),
      configurations_per_account: key(integer(1, 100_000), {
        default: 200,
        doc: 'Most notification configurations one account may have, of all endpoint types together; creating one more is refused with 409 `limit_reached` (naming `configurations`). With `selectors_per_configuration`, it bounds one account’s selectors (100,000 by default: one account of that many is indexed in seconds — 3–10 s measured on a busy 2-core machine, 1.5–5 s again after each change to it, which compiles only the selectors that changed — in slices between which routing goes on, the event loop standing still for a few hundred milliseconds at most, mostly collecting garbage). Counted in what this instance has read: with several instances, creations on different instances at the same moment may pass it by their number. Lowering it deletes no configuration.',
      }),
    }),
    webhook_timeout_ms: key(timerMilliseconds, {
      default: 15000,
      doc: 'Milliseconds one outbound delivery request may take (every endpoint type: an HTTP exchange, or a whole SMTP session); a timeout is retried. A GitHub or Jira delivery makes several requests, each within this; `delivery.attempt_timeout_ms` bounds them together.',
    }),
    delivery: group({
      concurrency: key(positive, {
        default: 256,
        doc: 'Deliveries sent at the same time, over all configurations. Each configuration has its own queue, sent one delivery at a time and in order (or up to `max_in_flight` at a time), so a slow or failing endpoint holds only its own share of these and delays only itself. The outcomes of attempts that finish together are written to the delivery log in one transaction, so more configurations at a time also means fewer syncs to disk per delivery. Each one in flight holds an outbound connection (a file descriptor); with many configurations, 256 delivered about 14% more a second than 128 (see test/bench/HISTORY.md).',
      }),
      retry_schedule_ms: key(
        listOf(
          milliseconds(RETRY_STEP_MAX_MS, '7 days'),
          'a list of milliseconds (comma-separated in the environment)',
        ),
        {
          default: [0, 5000, 300000, 1800000, 7200000, 18000000, 36000000, 36000000],
          doc: 'Wait before each retry of a delivery that failed retriably (429, 5xx, a timeout, a network error), in order: the default retries immediately, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h. When the list is used up the delivery is dead-lettered (listed and replayable). A longer `Retry-After` from the endpoint wins, up to 10 h or this list’s longest step if that is longer (a longer ask waits that much). Other 4xx are not retried. Each step is at most 7 days (604800000), and no retry waits longer, whatever the jitter.',
        },
      ),
      retention_days: key(integer(0, 36_500), {
        default: 30,
        doc: 'Days a settled delivery (sent, rejected, skipped, dead-lettered) is kept after it was requested and last changed: then its stream is deleted from the delivery log and its rows from the read model (`data_dir/deliveries-view.sqlite`), so neither grows without end. Checked hourly, in batches, starting a minute after start-up; each pass that deletes anything logs `delivery.retention_pass`. Pending and retrying deliveries are never deleted; one replayed while a pass runs is kept. A deleted delivery is no longer listed, shown or replayable, and the same delivery command arriving again afterwards would be delivered again, so keep this longer than any redelivery could come. SQLite files reuse the space freed rather than shrinking. 0: keep every delivery.',
      }),
      retry_jitter_percent: key(integer(0, 100), {
        default: 20,
        doc: 'Each retry wait varies at random by up to this percentage either way, so endpoints that failed together are not retried in lockstep.',
      }),
      disable_after_failing_ms: key(integer(0), {
        default: 86_400_000,
        doc: 'A configuration whose every attempt failed for this long (no success since, not changed since, and no quiet gap between two failures longer than the longest wait a retry can take, the schedule’s or a `Retry-After`’s (10 h at least), with jitter plus an hour) is disabled, recorded in its history as `system/sustained_failure`, and announced to the admin account as a system event (`system.notifications.configuration_disabled`; tried again until it is published, after a restart too). A disable the store refused is tried again at the next failed attempt. 0: never.',
      }),
      replay_limit: key(integer(1, 100_000), {
        default: 1000,
        doc: 'Most deliveries one `POST /v1/notifications/deliveries/replay` sends again; replay again for more.',
      }),
      attempt_timeout_ms: key(nullable(timerMilliseconds), {
        default: null,
        doc: "Milliseconds one delivery attempt may take in all, at least `webhook_timeout_ms`; null: twice `webhook_timeout_ms`. A GitHub or Jira filing makes several requests (a search, the issue, its labels; a retry reads the issue's comments page by page), and an address is looked up before each connection. Past it the attempt is abandoned, as a timeout, and retried. On Kafka it is also the hand-over wait before an instance serves a delivery queue it took over in a rebalance, so the previous owner's attempt is over by then.",
      }),
      jira_search_lag_ms: key(integer(0), {
        default: 60_000,
        doc: "How long Jira's search may lag behind a new issue. Herald records each filing before it sends it; when the answer never comes (a timeout, or Herald killed meanwhile) and search shows no open issue for the ticket key, the retry waits until this long after that filing, then searches again, and files only if the issue is still not there. Shorter risks a second issue for one key; 0 never waits.",
      }),
      max_in_flight: group({
        webhook: key(integer(1, 64), {
          default: 1,
          doc: 'Deliveries of one webhook configuration sent at the same time, unless the configuration sets its own `max_in_flight` (1 to 64, through the API). 1 (the default): one at a time, each sent once the one before it succeeded, so they arrive in order. Above 1, a configuration whose endpoint takes a while to answer gets through its deliveries faster (one configuration at 1 sends at most one delivery per round trip), but they may arrive out of order (as the Standard Webhooks spec allows; order them by `webhook-timestamp` or the event `time`), and after a crash up to this many may be sent again (each with its `webhook-id`). A failure still holds the rest of the queue until its retry.',
        }),
        email: key(integer(1, 64), {
          default: 1,
          doc: 'Messages of one email configuration sent at the same time, each over its own SMTP session; as `max_in_flight.webhook`.',
        }),
        slack: key(integer(1, 64), {
          default: 1,
          doc: 'Messages of one Slack configuration sent at the same time; as `max_in_flight.webhook`. The rate limit still applies.',
        }),
        teams: key(integer(1, 64), {
          default: 1,
          doc: 'Messages of one Teams configuration sent at the same time; as `max_in_flight.webhook`. The rate limit still applies. (GitHub and Jira configurations always file one ticket at a time: that is what keeps a ticket key to one open issue.)',
        }),
      }),
      rate_limits: group({
        slack: key(integer(0), {
          default: 60,
          doc: 'Requests per minute to one Slack incoming webhook (Slack allows about one a second). 0: no limit.',
        }),
        teams: key(integer(0), {
          default: 60,
          doc: 'Requests per minute to one Teams webhook. 0: no limit.',
        }),
        email: key(integer(0), {
          default: 120,
          doc: 'Messages per minute through one SMTP account (host, port and user). 0: no limit.',
        }),
        webhook: key(integer(0), {
          default: 0,
          doc: 'Requests per minute to one webhook URL. 0 (the default): no limit beyond `max_in_flight.webhook` requests at a time per configuration.',
        }),
        github: key(integer(0), {
          default: 60,
          doc: 'Requests per minute with one GitHub token (GitHub asks for a second between content-creating requests). 0: no limit.',
        }),
        jira: key(integer(0), { default: 60, doc: 'Requests per minute as one Jira user. 0: no limit.' }),
      }),
    }),
  }),
  reports: group({
    enabled: key(boolean, {
      default: true,
      doc: '`false`: the projector does not run, so nothing new reaches the reports.',
    }),
    enable_data_ingress: key(boolean, {
      default: true,
      doc: '`false`: nothing new is projected and no metric points are recorded; the report API keeps answering from what is there, its projection lag growing with the age of the oldest event waiting (and `herald_consumer_lag_messages` of `herald-projector` counting them).',
    }),
    cycle_timers: group({
      load: key(decimal(0.05, 86400), {
        default: 0.5,
        doc: 'Seed key. Seconds (fractions allowed) a partial projector batch waits at most for more events: a batch is inserted when it holds `batch_size` events or its oldest event has waited this long. An event becomes visible in the reports after up to this wait plus its batch’s insert, so this sets most of their freshness; a backlog is read in full batches whatever it is. Shorter waits mean more, smaller inserts, so more of the warehouse’s merging: in the freshness benchmark at 10,000 events/s, 0.5 s gave a p99 of 1.0–1.7 s at 148–168 µs of CPU per event, 1 s 2.1–2.4 s at 143–153, and 0.25 s no better than 0.5 at 168–170; at 1,000 events/s, 0.5 s gave 0.76–0.82 s at 629–676 µs, 1 s 1.3–1.4 s at 541–546. Set 1 or more to spend less CPU where reports may lag more. On Kafka a fetch waits at most 10 s (a third of the consumer session timeout, beyond which the projector would be dropped from its group at every quiet fetch), so a longer wait there hands over what is waiting every 10 s.',
      }),
      refresh: key(positive, {
        default: 60,
        doc: 'Seed key, accepted for compatibility: the current tables are maintained as each event is projected, so there is nothing to refresh.',
      }),
      metrics: key(timerSeconds, {
        default: 3600,
        doc: 'Seconds between metric data points: a point of every metric is recorded for every account (with any image, tag or policy evaluation by then) as of each multiple of this interval since the epoch, once the projection has passed it, stored in `metric_points` and published to the metrics topic. None is taken as of the start-up instant itself: a start-up records the multiples since the latest one recorded before, up to the latest 1,000 (with none recorded, the latest multiple), that one included and published again, in case a crash came between storing and publishing it, unless marked published. Instances sharing a ClickHouse server record and publish each multiple once between them, marking it published in `metric_boundaries`, another taking it over should the recording one die midway. Nothing is recorded while `reports.enable_data_ingress` is false.',
      }),
    }),
    metric_corrections: key(integer(0, 10_000), {
      default: 24,
      doc: 'How many of the latest metric boundaries already recorded are recorded again when the projector stores events with a time before them (a producer’s backlog, a Kafka partition catching up): the accounts of those events get their points at each such boundary computed again from history, replacing the ones recorded without them, and published again to the metrics topic. The events stored within 5 s are corrected together, at the cost of one recording of their accounts per boundary. Boundaries an earlier run recorded count too; older ones (and those before a gap in what was recorded) are named in a `reports.metrics_late_uncorrected` warning for `POST /v1/reports/metrics/backfill`. Which accounts are due a correction is kept in `data_dir/metric-corrections.sqlite` before the projector commits their events, so the corrections a stop or a crash interrupted are made at the next start-up. 0: none is recorded again.',
    }),
    batch_size: key(positive, {
      default: 20000,
      doc: 'Most events the projector inserts in one batch. Each batch writes a part into every report table, which costs the embedded warehouse about 10 ms of CPU whatever its size, and each part is merged again later, so larger batches project more events per CPU-second under load (20,000 rather than 5,000: about a third less warehouse CPU per event); a batch is only as large as what is waiting, and when the log is quiet `cycle_timers.load` bounds how long a partial batch waits to fill.',
    }),
    batch_bytes: key(integer(1024, 1_073_741_824), {
      default: 33_554_432,
      doc: 'Most bytes of event values the projector takes in one batch from the embedded event log (a batch holds one event at least, whatever its size); with Kafka, `event_log.kafka.consumer.max_bytes_per_partition` bounds each fetch instead. The projector holds about 12 to 18 times its batch’s bytes while folding and inserting it (on image reports: 371 MB for a batch of 20.7 MB, 995 MB for 82.8 MB), so a backlog of large reports (up to 5 MiB each) bounded by `batch_size` alone ran it out of memory. The default, 32 MiB, keeps whole the 20,000-event batches of the activity generator’s mix (about 1.4 KB an event).',
    }),
    projector_thread: key(boolean, {
      default: true,
      doc: 'Run the projector on a thread of its own (`projector`), with its own connection to the warehouse: decoding, folding and writing the warehouse’s blocks then leave the event loop, which keeps HTTP ingest, the router and the API. It decodes each event again there rather than sharing the router’s decoded copy, a few µs more CPU per event in all. `false`: on the event loop, in slices of it.',
    }),
    graphiql: key(boolean, {
      default: true,
      doc: 'Serve GraphiQL on a browser’s GET of `/v1/reports/graphql`. The page holds no data and is served without a token; its queries carry the token set in its header editor.',
    }),
  }),
  event_log: group({
    kind: key(oneOf(['embedded', 'kafka'] as const), {
      default: 'embedded',
      doc: '`embedded`: SQLite file in `data_dir`; `kafka`: the brokers below.',
    }),
    partitions: key(nullable(positive), {
      default: null,
      doc: 'Partitions per topic when Herald creates a topic (the embedded log’s topics, or Kafka topics that do not exist yet). Unset: 1 on the embedded log, 3 on Kafka. The embedded log is read by one process on one event loop, so partitions only split its batches: each partition’s batch is a warehouse insert of its own (a part in every report table, merged again later) and a router batch of its own. With one, the freshness benchmark at 10,000 events/s offered spent 159–187 µs of CPU per event instead of 197–216, chDB’s merges half as much. A topic that exists keeps its partitions.',
    }),
    topics: group({
      events: key(topicName, {
        default: 'engine.events',
        doc: 'Engine CloudEvents in.',
      }),
      dlq: key(topicName, {
        default: 'engine.events.dlq',
        doc: 'Undecodable or invalid input, set aside.',
      }),
      deliveries: key(topicName, {
        default: 'notifications.deliveries',
        doc: 'Router → deliverer commands.',
      }),
      outcomes: key(topicName, {
        default: 'notifications.outcomes',
        doc: 'Delivery outcomes for downstream consumers.',
      }),
      metrics: key(topicName, {
        default: 'reports.metrics',
        doc: 'Metric data points for downstream consumers.',
      }),
    }),
    embedded: group({
      retention_hours: key(integer(0, 876_000), {
        default: 168,
        doc: 'Hours the embedded log keeps a message after its publish; older ones are deleted, oldest first, whether consumed or not (Kafka’s time-based retention; 168 is its default). Every consumer is normally seconds behind, and report rebuilds replay the warehouse’s `events` table, not the log, so a week only bounds how long a stopped Herald can stay down without its consumers missing what was published before; a group that had not consumed deleted messages is logged as `eventlog.retention_unconsumed`. 0 keeps every message (the file then grows by about 1.3 KiB per kilobyte event).',
      }),
      tail_mib: key(integer(0, 1024), {
        default: 16,
        doc: 'MiB of message values each partition of the embedded log also keeps in memory, its newest. A consumer reading within them is handed the published messages themselves instead of reading rows back from the file, and the router and projector, both handed the same event, decode it once; an event that came in through `POST /v1/events` is not decoded again at all. Memory grows by up to this much per partition of a busy topic, and by the decoded events it holds (about 11 MiB of V8 heap for 16 MiB of kilobyte events). 0 reads everything back from the file.',
      }),
    }),
    kafka: group({
      brokers: key(listOf(hostPort, 'a list of host:port'), {
        default: [],
        doc: 'Bootstrap brokers. Required (non-empty) when `event_log.kind` is `kafka`.',
      }),
      client_id: key(nonEmptyString, {
        default: 'herald',
        doc: 'Kafka client id.',
      }),
      ssl: key(boolean, { default: false, doc: 'Connect with TLS.' }),
      idempotent: key(boolean, {
        default: true,
        doc: 'Publish from an idempotent producer, so a retried send cannot duplicate or reorder messages. Needs a cluster with a live controller; turn off only for one without (librdkafka’s mock cluster in tests).',
      }),
      max_request_bytes: key(integer(4096, 1_073_741_824), {
        default: 1_048_576,
        doc: 'Most bytes one produce request carries, framing included (the Java producer’s `max.request.size`). A publish larger than that — a router batch of up to 1,000 delivery commands, an HTTP batch of events — goes out in several requests, one after the other, each partition’s messages in order; a broker refuses a record batch over its `message.max.bytes` (by default 1,048,588) with MESSAGE_TOO_LARGE, so keep this at or below that of the brokers and of every topic Herald writes to. A message that does not fit in one request alone (about 600 bytes less than this) is refused before anything is sent: `POST /v1/events` answers 413 naming it, the router sets aside an event whose delivery command is that large on the dead-letter topic, and a digest that large lists fewer of its events. Set above the brokers’ limit, a request they refuse is sent again in halves (a round trip more each time, logged as `kafka_event_log.request_refused_too_large`), and a message they refuse alone is refused as one over this limit, once those before it are written: the router then logs `router.command_refused` and sets the event aside on the dead-letter topic (without its value if that is refused too), a digest waits as one the log refuses, and `POST /v1/events` answers 413.',
      }),
      sasl: optionalGroup(
        {
          mechanism: key(oneOf(['plain', 'scram-sha-256', 'scram-sha-512'] as const), {
            doc: 'SASL mechanism. Required when `sasl` is set.',
          }),
          username: key(nonEmptyString, {
            doc: 'SASL user. Required when `sasl` is set.',
          }),
          password: key(secretString(1), {
            secret: 'value',
            doc: 'SASL password. Required when `sasl` is set.',
          }),
        },
        'SASL authentication; null (the default) connects without. Setting any `HERALD_EVENT_LOG__KAFKA__SASL__*` variable sets it; `HERALD_EVENT_LOG__KAFKA__SASL=` (empty) clears one from the file.',
      ),
      consumer: group({
        max_wait_ms: key(integer(0, 60_000), {
          default: 5000,
          doc: 'Longest a fetch waits on the broker for new messages (kafkajs’s `maxWaitTimeInMs`). A broker answers as soon as there is data; lower it only for one that holds empty fetches for the whole wait. At most 10 s is used (a third of the consumer session timeout: kafkajs heartbeats between fetches, so a longer one gets the consumer dropped from its group whenever the log is quiet).',
        }),
        commit_interval_ms: key(integer(0, 3_600_000), {
          default: 1000,
          doc: 'Handled offsets are committed together at most this often, and always before a consumer leaves its group. 0: each batch is committed before the next batch of its partition starts (one request per batch). Either way delivery is at-least-once; a crash or rebalance redelivers at most this much, which the router’s processed-id window and the projector’s versioned tables absorb.',
        }),
        partitions_consumed_concurrently: key(positive, {
          default: 16,
          doc: 'Partitions whose batches one consumer handles at the same time; each partition’s batches still run one at a time, in order. A batch waits on the broker and on disk (the router publishes its commands and records what it routed), so with 1 each partition waits for the others’ round trips: on three partitions at 1,500 events/s the median publish → delivery command was 1.7 s with 1 and 0.25 s with 3. More than a consumer’s partitions is harmless; memory grows by one batch (`max_bytes_per_partition`) per partition in flight.',
        }),
        max_bytes_per_partition: key(integer(1024, 1_073_741_824), {
          default: 1_048_576,
          doc: 'Most bytes one fetch returns per partition: the largest batch a fetch can bring.',
        }),
        max_bytes: key(integer(1024, 1_073_741_824), {
          default: 10_485_760,
          doc: 'Most bytes one fetch returns over all partitions.',
        }),
      }),
    }),
  }),
  event_store: group({
    kind: key(oneOf(['embedded', 'kurrentdb'] as const), {
      default: 'embedded',
      doc: '`embedded`: SQLite file in `data_dir`; `kurrentdb`: the server below.',
    }),
    kurrentdb: group({
      connection_string: key(nullable(kurrentConnectionString), {
        default: null,
        secret: 'credentials',
        doc: 'e.g. `kurrentdb://admin:changeit@localhost:2113?tls=false`. Required when `event_store.kind` is `kurrentdb`. Its credentials are secret. An option the KurrentDB client does not know is refused (the client would only warn, quoting the whole string), as is a value it cannot read; `throwOnAppendFailure=false` is refused: Herald needs a conflicting append to fail.',
      }),
    }),
  }),
  warehouse: group({
    kind: key(oneOf(['embedded', 'clickhouse'] as const), {
      default: 'embedded',
      doc: '`embedded`: chDB in process, files under `data_dir/warehouse`; `clickhouse`: the server below.',
    }),
    clickhouse: group({
      url: key(nullable(httpUrl), {
        default: null,
        doc: 'HTTP(S) URL of the ClickHouse server. Required when `warehouse.kind` is `clickhouse`. It may hold the user and password (`http://herald:secret@ch:8123`) and the database as its path (`/herald`); the keys below win over it.',
      }),
      username: key(nullable(nonEmptyString), {
        default: null,
        doc: 'ClickHouse user; null: the URL’s, else `default`.',
      }),
      password: key(nullable(secretString(1)), {
        default: null,
        secret: 'value',
        doc: 'ClickHouse password; null: the URL’s, else none.',
      }),
      database: key(nullable(databaseName), {
        default: null,
        doc: 'Database holding Herald’s tables; null: the URL’s path, else the user’s default database.',
      }),
    }),
  }),
  schema_registry: group({
    kind: key(oneOf(['embedded', 'confluent'] as const), {
      default: 'embedded',
      doc: '`embedded`: schemas from `schemas/`, in process; `confluent`: the registry below.',
    }),
    confluent: group({
      url: key(nullable(httpUrl), {
        default: null,
        doc: 'URL of the Confluent Schema Registry. Required when `schema_registry.kind` is `confluent`.',
      }),
      username: key(nullable(nonEmptyString), {
        default: null,
        doc: 'Basic-auth user; set together with `password`.',
      }),
      password: key(nullable(secretString(1)), {
        default: null,
        secret: 'value',
        doc: 'Basic-auth password; set together with `username`.',
      }),
      register_schemas: key(boolean, {
        default: false,
        doc: '`true`: register Herald’s schemas (the event catalog in `schemas/`, the downstream topics in `schemas/topics/`) at start-up; `false`: expect them registered.',
      }),
    }),
  }),
  secrets: group({
    encryption_key: key(nullable(base64Key(32)), {
      default: null,
      secret: 'value',
      doc: 'Base64 of 32 random bytes (`openssl rand -base64 32`) that encrypts endpoint secrets (AES-256-GCM) before they are appended to the event store. When unset, `herald start` generates one into `data_dir/secret.key` (mode 0600); keep that file with the event store, since without it the stored secrets cannot be opened: a start that finds it missing while stored secrets were sealed with a key that is not in `previous_keys` refuses, naming their key ids, rather than generate another. Set while `secret.key` holds the key stored secrets were sealed with, that key must be listed in `previous_keys` (or the file removed, to give those secrets up).',
    }),
    previous_keys: key(listOf(base64Key(32), 'a list of base64 keys of 32 bytes'), {
      default: [],
      secret: 'value',
      doc: 'Keys rotated out: they still open the secrets they sealed, never seal new ones. To rotate, move the old `encryption_key` (or the key in `data_dir/secret.key`) here and set a new one: every start seals again with the current key each stored secret a previous key sealed, then logs `secrets.keys_in_use`, whose `unused_previous_key_ids` are the keys that may now be removed from this list.',
    }),
  }),
})

// Compile-time proof that the hand-written `Config` (readable, documented) and the type the
// schema actually decodes to agree; a key added to only one of them fails here. Mutual
// assignability rather than the stricter identity trick, which misfires on nested mapped types.
type Same<X, Y> = [X] extends [Y] ? ([Y] extends [X] ? true : false) : false
export const schemaMatchesConfig: Same<ShapeValue<typeof schema.shape>, Config> = true
