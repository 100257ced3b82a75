/**
 * Herald's validated configuration, deeply readonly. Keys keep the YAML's snake_case so a key
 * reads the same in the file, in the code, in error messages and (upper-cased) in its
 * environment variable. Components take the slice they need (`WarehouseConfig`, …), never
 * the whole. REFERENCE.md describes every key.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

export type AuthorizationHandler = 'native' | 'external'

export interface AuthorizationHandlerConfig {
  /** The external authorizer's http(s) URL, without user-info; never null when `authorization_handler` is `external`. */
  readonly endpoint: string | null
  readonly timeout_ms: number
}

export interface OutboundConfig {
  /** Host names (`*.domain` allowed), IP addresses and CIDR ranges exempt from the SSRF guard. */
  readonly allowlist: readonly string[]
  /** Outbound HTTP requests run on the `http-sender` thread rather than the event loop. */
  readonly sender_thread: boolean
}

export interface MetricsConfig {
  /** Accounts `herald_events_ingested_total` labels by name; 0: no account label on `/metrics`. */
  readonly account_series_limit: number
}

export interface NotificationsConfig {
  readonly enabled: boolean
  readonly cycle_timers: {
    /** Seconds: the digest window of a configuration that asks for digests without naming its own. */
    readonly notifications: number
  }
  /** Failures for good a digest window may have before it is dead-lettered. */
  readonly digest_max_attempts: number
  /** What one account may store. */
  readonly limits: {
    readonly selectors_per_configuration: number
    readonly configurations_per_account: number
  }
  readonly webhook_timeout_ms: number
  readonly delivery: DeliveryConfig
}

/** The deliverer's queues, retries and rate limits. */
export interface DeliveryConfig {
  readonly concurrency: number
  /** The wait before each retry, in order; used up: dead-lettered. */
  readonly retry_schedule_ms: readonly number[]
  readonly retry_jitter_percent: number
  /** Settled deliveries older than this are deleted from the delivery log; 0: kept for good. */
  readonly retention_days: number
  /** 0: never disabled for failing. */
  readonly disable_after_failing_ms: number
  readonly replay_limit: number
  /**
   * The most one attempt takes, all its requests together; on Kafka also the queue hand-over
   * wait. Null: twice `webhook_timeout_ms` (`attemptTimeoutOf`).
   */
  readonly attempt_timeout_ms: number | null
  /** How long after a filing whose answer was lost a Jira delivery waits for search to show the issue. */
  readonly jira_search_lag_ms: number
  /** Deliveries of one configuration in flight at once, by endpoint type (tickets: always 1). */
  readonly max_in_flight: {
    readonly webhook: number
    readonly email: number
    readonly slack: number
    readonly teams: number
  }
  /** Requests per minute per target, by endpoint type; 0: no limit. */
  readonly rate_limits: {
    readonly slack: number
    readonly teams: number
    readonly email: number
    readonly webhook: number
    readonly github: number
    readonly jira: number
  }
}

export interface ReportsConfig {
  readonly enabled: boolean
  readonly enable_data_ingress: boolean
  /** All in seconds. */
  readonly cycle_timers: {
    readonly load: number
    readonly refresh: number
    readonly metrics: number
  }
  /** Metric boundaries recorded again for events projected after them; 0: none. */
  readonly metric_corrections: number
  readonly batch_size: number
  readonly batch_bytes: number
  readonly projector_thread: boolean
  readonly graphiql: boolean
}

export type EventLogKind = 'embedded' | 'kafka'

export interface EventLogTopics {
  readonly events: string
  readonly dlq: string
  readonly deliveries: string
  readonly outcomes: string
  readonly metrics: string
}

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512'

export interface KafkaSaslConfig {
  readonly mechanism: SaslMechanism
  readonly username: string
  readonly password: string
}

export interface KafkaConfig {
  /** `host:port` each; never empty when `event_log.kind` is `kafka`. */
  readonly brokers: readonly string[]
  readonly client_id: string
  readonly ssl: boolean
  readonly sasl: KafkaSaslConfig | null
  readonly idempotent: boolean
  readonly max_request_bytes: number
  readonly consumer: KafkaConsumerConfig
}

export interface KafkaConsumerConfig {
  readonly max_wait_ms: number
  readonly commit_interval_ms: number
  readonly partitions_consumed_concurrently: number
  readonly max_bytes_per_partition: number
  readonly max_bytes: number
}

export interface EventLogConfig {
  readonly kind: EventLogKind
  /** Unset: see `topicPartitions`. */
  readonly partitions: number | null
  readonly topics: EventLogTopics
  readonly embedded: { readonly retention_hours: number; readonly tail_mib: number }
  readonly kafka: KafkaConfig
}

export type EventStoreKind = 'embedded' | 'kurrentdb'

export interface EventStoreConfig {
  readonly kind: EventStoreKind
  readonly kurrentdb: {
    /** Never null when `kind` is `kurrentdb`. */
    readonly connection_string: string | null
  }
}

export type WarehouseKind = 'embedded' | 'clickhouse'

export interface ClickHouseConfig {
  /** Never null when `warehouse.kind` is `clickhouse`. */
  readonly url: string | null
  /** Null: the URL's user, else `default`. */
  readonly username: string | null
  /** Null: the URL's password, else none. */
  readonly password: string | null
  /** Null: the URL's path, else the user's default database. */
  readonly database: string | null
}

export interface WarehouseConfig {
  readonly kind: WarehouseKind
  readonly clickhouse: ClickHouseConfig
}

export type SchemaRegistryKind = 'embedded' | 'confluent'

export interface ConfluentSchemaRegistryConfig {
  /** Never null when `schema_registry.kind` is `confluent`. */
  readonly url: string | null
  /** Set together with `password`, or neither. */
  readonly username: string | null
  readonly password: string | null
  readonly register_schemas: boolean
}

export interface SchemaRegistryConfig {
  readonly kind: SchemaRegistryKind
  readonly confluent: ConfluentSchemaRegistryConfig
}

export interface SecretsConfig {
  /** Base64 of 32 bytes. */
  readonly encryption_key: string | null
  /** Keys rotated out, base64 of 32 bytes each: they open, never seal. */
  readonly previous_keys: readonly string[]
}

export interface Config {
  readonly listen: string
  readonly port: number
  /** Absolute: a relative value is resolved against the working directory at load time. */
  readonly data_dir: string
  readonly log_level: LogLevel
  readonly require_auth: boolean
  readonly admin_token: string | null
  readonly authorization_handler: AuthorizationHandler
  readonly authorization_handler_config: AuthorizationHandlerConfig
  readonly ui_url: string | null
  readonly shutdown_timeout_ms: number
  readonly outbound: OutboundConfig
  readonly metrics: MetricsConfig
  readonly notifications: NotificationsConfig
  readonly reports: ReportsConfig
  readonly event_log: EventLogConfig
  readonly event_store: EventStoreConfig
  readonly warehouse: WarehouseConfig
  readonly schema_registry: SchemaRegistryConfig
  readonly secrets: SecretsConfig
}
