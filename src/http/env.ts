import type { Principal } from './auth.ts'

/** Variables every Herald route can read: set by the authentication middleware. */
export type AppEnv = { Variables: { principal: Principal } }
