export { createTokenRoutes } from './routes.ts'
export { createTokenService, type TokenService, type TokenServiceOptions, type TokenView } from './service.ts'
export {
  decideToken,
  decodeTokenEvent,
  evolveToken,
  IssueTokenBody,
  initialTokenState,
  TOKEN_STREAM_PREFIX,
  type TokenCommand,
  type TokenEvent,
  type TokenRecord,
  type TokenState,
  tokenStreamName,
} from './tokens.ts'
