export type { AppEnv } from '../access/index.ts'
