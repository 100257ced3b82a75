import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  visit,
  type YAMLError,
} from 'yaml'
import type { FieldIssue } from '../errors/index.ts'
import { errorText } from '../errors/index.ts'

export type ReadFile = (path: string) => string

export interface ConfigFile {
  /** The file as plain data; `{}` for an empty file. */
  readonly tree: unknown
  /** `file:line` of a key, for pointing at it in messages; undefined if the file does not hold it. */
  readonly locate: (path: readonly string[]) => string | undefined
}

export type FileReading =
  | { readonly ok: true; readonly file: ConfigFile }
  | { readonly ok: false; readonly issues: readonly FieldIssue[] }

const describeReadError = (error: unknown): string => {
  const code = (error as { code?: unknown } | null)?.code
  switch (code) {
    case 'ENOENT':
      return 'no such file'
    case 'EACCES':
    case 'EPERM':
      return 'permission denied'
    case 'EISDIR':
      return 'it is a directory'
    default:
      return typeof code === 'string' ? code : errorText(error)
  }
}

const childOf = (
  document: Document,
  node: unknown,
  segment: string,
): { key: Node; value: unknown } | undefined => {
  const target = isAlias(node) ? node.resolve(document) : node
  if (isMap(target)) {
    const pair = target.items.find((item) => isScalar(item.key) && String(item.key.value) === segment)
    return pair !== undefined && isScalar(pair.key) ? { key: pair.key, value: pair.value } : undefined
  }
  if (isSeq(target) && /^\d+$/.test(segment)) {
    const item = target.items[Number(segment)]
    return isScalar(item) || isMap(item) || isSeq(item) ? { key: item, value: item } : undefined
  }
  return undefined
}

/**
 * Some parser messages end by quoting source text (`Block scalar header includes extra
 * characters: |hunter2`), and that text may be a secret; the part before the quote says enough.
 */
const withoutQuotedSource = (message: string): string => message.split('\n')[0]?.split(': ')[0] ?? ''

/**
 * A parser error in words of Herald's own where the parser's quote the source without a `: `
 * before it (`The !Passw0rd! tag has no suffix`): an unquoted value starting with `!` is read
 * as a tag.
 */
const yamlReason = (error: YAMLError): string =>
  error.code === 'TAG_RESOLVE_FAILED'
    ? 'a value starting with ! is read as a YAML tag; quote it'
    : withoutQuotedSource(error.message)

const UNRESOLVED_ALIAS = 'a value starting with * is read as a YAML alias of an anchor never set; quote it'

/**
 * Reads and parses the file named by `HERALD_CONFIG`. YAML errors are reported with their line
 * and the parser's reason only: the parser's own code frame would quote the offending line,
 * and that line may hold a secret.
 */
export const readConfigFile = (display: string, resolved: string, readFile: ReadFile): FileReading => {
  let text: string
  try {
    text = readFile(resolved)
  } catch (error) {
    return {
      ok: false,
      issues: [{ path: display, message: `cannot read the configuration file: ${describeReadError(error)}` }],
    }
  }
  const lines = new LineCounter()
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  const at = (offset: number): string => {
    const { line, col } = lines.linePos(offset)
    return `${display}:${line}:${col}`
  }
  const issues: FieldIssue[] = document.errors.map((error) => ({
    path: at(error.pos[0]),
    message: `invalid YAML: ${yamlReason(error)}`,
  }))
  // toJS would throw for these, naming the alias (which may be a secret written unquoted).
  if (issues.length === 0)
    visit(document, {
      Alias(_key, node) {
        if (node.resolve(document) === undefined)
          issues.push({ path: at(node.range?.[0] ?? 0), message: `invalid YAML: ${UNRESOLVED_ALIAS}` })
      },
    })
  if (issues.length > 0) {
    // One problem the parser reports twice (a bad tag) is listed once.
    const once = new Map(issues.map((issue) => [`${issue.path}\u0000${issue.message}`, issue]))
    return { ok: false, issues: [...once.values()] }
  }
  let tree: unknown
  try {
    tree = document.toJS() ?? {}
  } catch {
    return { ok: false, issues: [{ path: display, message: 'invalid YAML' }] }
  }
  const locate = (path: readonly string[]): string | undefined => {
    let node: unknown = document.contents
    let key: Node | undefined
    for (const segment of path) {
      const child = childOf(document, node, segment)
      if (child === undefined) return undefined
      key = child.key
      node = child.value
    }
    return key?.range === undefined || key.range === null
      ? undefined
      : `${display}:${lines.linePos(key.range[0]).line}`
  }
  return { ok: true, file: { tree, locate } }
}
