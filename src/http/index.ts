export { createHttpApp, type HttpAppOptions } from './app.ts'
export {
  ADMIN_ACCOUNT,
  type Authenticator,
  createAdminTokenAuthenticator,
  type Principal,
  type Role,
} from './auth.ts'
export type { AppEnv } from './env.ts'
export { type Problem, toProblem } from './problem.ts'
