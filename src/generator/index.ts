export { type ActivityOptions, generateActivity } from './activity.ts'
export { createRandom, type Random } from './random.ts'
