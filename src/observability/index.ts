export {
  createLogger,
  type LogFields,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  type ProcessLogger,
  silentLogger,
} from './logger.ts'
export {
  createMetrics,
  type GroupLag,
  lagOfGroups,
  type Metrics,
  type MetricsOptions,
  OTHER_ACCOUNTS,
} from './metrics.ts'
