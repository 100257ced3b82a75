import { createHash } from 'node:crypto'

/** AES-256 keys are 32 bytes. */
export const KEY_BYTES = 32

// Standard base64 of exactly 32 bytes: 43 characters, the last carrying the final 4 bits (so it is
// one of 16), and one optional `=`. Strict on purpose: Buffer.from(s, 'base64') skips characters it does not know,
// so a truncated or mistyped key would otherwise decode to different, shorter bytes.
const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=?$/

/**
 * The key's bytes, or undefined when the text is not the base64 encoding of exactly 32 bytes.
 * Surrounding whitespace (a key file's newline) is ignored.
 */
export const decodeKey = (text: string): Buffer | undefined => {
  const trimmed = text.trim()
  return BASE64_KEY.test(trimmed) ? Buffer.from(trimmed, 'base64') : undefined
}

/** Names a key without revealing it: the first 8 hex digits of its SHA-256. */
export const keyIdOf = (key: Buffer): string => createHash('sha256').update(key).digest('hex').slice(0, 8)

/** The id of a key given as base64 text, or undefined when it is not one. */
export const keyIdOfText = (text: string): string | undefined => {
  const bytes = decodeKey(text)
  return bytes === undefined ? undefined : keyIdOf(bytes)
}
