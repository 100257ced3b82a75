import { runProcessedIdsContract } from '../../test/contracts/processed-ids.contract.ts'
import { createMemoryProcessedIds } from './processed-ids.ts'

runProcessedIdsContract({
  name: 'memory',
  open: async (options) => createMemoryProcessedIds(options),
  boundedByCount: true,
})
