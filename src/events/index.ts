export { CloudEvent, type Decoded, decodeCloudEvent, decodeCloudEventBatch, Level } from './cloudevent.ts'
export { toFieldIssues, withMessage } from './io-ts-issues.ts'
export { decodeLogEvent, encodeLogEvent } from './wire.ts'
