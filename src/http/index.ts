export { createHttpApp, type HttpAppOptions } from './app.ts'
export {
  ADMIN_ACCOUNT,
  type Authenticator,
  chainAuthenticators,
  createAdminTokenAuthenticator,
  type Principal,
  type Role,
} from './auth.ts'
export {
  type Authorizer,
  authorize,
  createExternalAuthorizer,
  type ExternalAuthorizerOptions,
  nativeAuthorizer,
} from './authorize.ts'
export type { AppEnv } from './env.ts'
export { type Problem, toProblem } from './problem.ts'
