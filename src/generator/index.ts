export {
  type ActivityOptions,
  generateActivity,
  LAST_TIME_MS,
  SimulatedTimeError,
} from './activity.ts'
export { createRandom, type Random } from './random.ts'
