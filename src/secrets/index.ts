export { warnIfOpenToOthers } from './file-mode.ts'
export { loadOrCreateKeyFile } from './key-file.ts'
export type { SecretBox, SecretBoxOptions, UndecryptableReason } from './secret-box.ts'
export {
  createSecretBox,
  isSealedSecret,
  isSecretUndecryptable,
  SecretUndecryptableError,
} from './secret-box.ts'
