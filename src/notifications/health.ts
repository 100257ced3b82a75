/** How a configuration's deliveries have gone lately: Anchore's endpoint configuration status. */
export type ConfigurationHealth = 'healthy' | 'unhealthy' | 'unknown'

export interface HealthReport {
  readonly status: ConfigurationHealth
  /** Of the recent outcomes kept, how many succeeded and how many failed. */
  readonly recent: { readonly succeeded: number; readonly failed: number }
  readonly last_outcome_at: string | null
}

export interface DeliveryHealth {
  /** `ok`: the endpoint accepted the delivery; otherwise it failed or refused it. */
  record(configurationId: string, ok: boolean, at: number): void
  statusOf(configurationId: string): HealthReport
}

/** Where durable outcomes come from: the delivery log's read model. */
export interface OutcomeSource {
  /** The configuration's latest `keep` attempt outcomes, oldest first. */
  recentOutcomes(
    configurationId: string,
    keep: number,
  ): readonly { readonly ok: boolean; readonly at: number }[]
}

export interface DeliveryHealthOptions {
  /** Recent outcomes a report counts (default 20). */
  readonly keep?: number
  /** In memory only: configurations remembered at most (default 100 000). */
  readonly maxConfigurations?: number
  /**
   * Reads outcomes from the delivery log, so a status survives a restart and covers every
   * deliverer; `record` then does nothing, the log being where outcomes are recorded.
   */
  readonly source?: OutcomeSource
}

const report = (list: readonly { readonly ok: boolean; readonly at: number }[]): HealthReport => {
  const last = list.at(-1)
  const succeeded = list.filter((o) => o.ok).length
  return {
    status: last === undefined ? 'unknown' : last.ok ? 'healthy' : 'unhealthy',
    recent: { succeeded, failed: list.length - succeeded },
    last_outcome_at: last === undefined ? null : new Date(last.at).toISOString(),
  }
}

/**
 * Recent delivery outcomes per configuration, newest last. A configuration is healthy when its
 * latest delivery went through and unhealthy when it did not: the latest outcome is what a
 * user acts on, and the counts show whether it is a blip or a pattern. No outcome yet: unknown.
 * With a `source` the outcomes come from the delivery log; without, from what was recorded in
 * this process.
 *
 * @example
 * const health = createDeliveryHealth({ source: deliveryView })
 * health.statusOf(configurationId).status // 'healthy'
 */
export const createDeliveryHealth = ({
  keep = 20,
  maxConfigurations = 100_000,
  source,
}: DeliveryHealthOptions = {}): DeliveryHealth => {
  if (source !== undefined)
    return {
      record: () => {},
      statusOf: (configurationId) => report(source.recentOutcomes(configurationId, keep)),
    }
  const outcomes = new Map<string, { ok: boolean; at: number }[]>()
  return {
    record: (configurationId, ok, at) => {
      let list = outcomes.get(configurationId)
      if (list === undefined) {
        if (outcomes.size >= maxConfigurations) {
          const oldest = outcomes.keys().next()
          if (oldest.done !== true) outcomes.delete(oldest.value)
        }
        list = []
        outcomes.set(configurationId, list)
      }
      list.push({ ok, at })
      if (list.length > keep) list.shift()
    },
    statusOf: (configurationId) => report(outcomes.get(configurationId) ?? []),
  }
}
