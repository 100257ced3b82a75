export { warnIfOpenToOthers } from './file-mode.ts'
export { keyIdOfText } from './key.ts'
export { loadOrCreateKeyFile, readKeyFile } from './key-file.ts'
export type { SecretBox, SecretBoxOptions, UndecryptableReason } from './secret-box.ts'
export {
  createSecretBox,
  isSealedSecret,
  isSecretUndecryptable,
  keyIdOfSealed,
  SecretUndecryptableError,
} from './secret-box.ts'
