import { createRequire } from 'node:module'
import { Ajv, type AnySchemaObject, type ErrorObject, type ValidateFunction } from 'ajv'
import { Ajv2019 } from 'ajv/dist/2019.js'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { FormatsPlugin } from 'ajv-formats'
import type { FieldIssue } from '../errors/index.ts'
import { isTimestamp } from '../events/index.ts'

// ajv-formats is CommonJS whose typings declare only a default export; require() gives the
// plugin itself whatever the module-interop settings.
const addFormats = createRequire(import.meta.url)('ajv-formats') as FormatsPlugin

type AnyAjv = Ajv | Ajv2019 | Ajv2020

// ajv-formats' date-time splits, matches two regular expressions and parses numbers: most of a
// Herald event's validation. `isTimestamp` accepts a subset of it (RFC 3339 with a `T` and an
// offset, the same calendar rules; a test proves the subset) in a single pass, so asking it
// first changes no answer and spares the slow check for all but unusual spellings.
const fullDateTime = addFormats.get('date-time') as {
  readonly validate: (s: string) => boolean
  readonly compare: (a: string, b: string) => number | undefined
}
const dateTime = {
  ...fullDateTime,
  validate: (s: string): boolean => isTimestamp(s) || fullDateTime.validate(s),
}

export interface CompileOptions {
  /**
   * Check the schema against its draft's meta-schema first (default false). A registry has
   * already checked what it serves; checking again costs most of a compilation.
   */
  readonly checkSchema?: boolean
}

/**
 * A fresh validator instance per schema: registries hold many versions of one schema with the
 * same `$id`, which a shared instance would refuse to compile twice. The draft follows the
 * schema's `$schema`; unknown keywords are allowed because producers' schemas carry their own.
 */
export const createAjv = (schema: unknown, compile: CompileOptions = {}): AnyAjv => {
  const draft =
    typeof schema === 'object' && schema !== null ? String((schema as AnySchemaObject).$schema ?? '') : ''
  const options = {
    strict: false,
    allErrors: true,
    validateFormats: true,
    validateSchema: compile.checkSchema ?? false,
  } as const
  const ajv = draft.includes('2020-12')
    ? new Ajv2020(options)
    : draft.includes('2019-09')
      ? new Ajv2019(options)
      : new Ajv(options)
  // Full format checks (a 30 February is no date-time), as the schemas' own fixtures expect,
  // though "fast" mode would save about a third of a validation.
  addFormats(ajv as Ajv)
  ajv.addFormat('date-time', dateTime)
  return ajv
}

/** Compiles a JSON Schema given as text or as an object. Throws on an invalid schema. */
export const compileJsonSchema = (
  schema: string | object,
  options: CompileOptions = {},
): ValidateFunction => {
  const parsed: unknown = typeof schema === 'string' ? JSON.parse(schema) : schema
  return createAjv(parsed, options).compile(parsed as AnySchemaObject)
}

const unescapePointer = (segment: string): string => segment.replaceAll('~1', '/').replaceAll('~0', '~')

/**
 * `/data/findings/0/severity` → `data.findings.0.severity`; the root is `(root)`. Given the
 * value the pointer points into, an element of an array is named by its index,
 * `data.findings[0].severity`, as the event contract names it.
 */
export const pointerToPath = (pointer: string, child?: string, value?: unknown): string => {
  const keys = pointer === '' ? [] : pointer.slice(1).split('/').map(unescapePointer)
  if (child !== undefined) keys.push(child)
  let path = ''
  let at = value
  for (const key of keys) {
    path += Array.isArray(at) ? `[${key}]` : path === '' ? key : `.${key}`
    at = typeof at === 'object' && at !== null ? (at as Record<string, unknown>)[key] : undefined
  }
  return path === '' ? '(root)' : path
}

const messageOf = (error: ErrorObject): string => {
  switch (error.keyword) {
    case 'required':
      return 'is required'
    case 'additionalProperties':
      return 'is not allowed'
    case 'propertyNames':
      return 'is not a property name the schema allows'
    case 'const':
      return `must be ${JSON.stringify(error.params.allowedValue)}`
    default:
      return error.message ?? 'is invalid'
  }
}

/**
 * One issue per failed keyword, named by the field it is about (`pointerToPath`, given the
 * validated `value`: array elements by index): a missing or extra field by itself, a property
 * name `propertyNames` refuses by itself, once, not by each way it fails.
 */
export const ajvIssues = (
  errors: readonly ErrorObject[] | null | undefined,
  value?: unknown,
): FieldIssue[] => {
  const issues: FieldIssue[] = []
  const seen = new Set<string>()
  for (const error of errors ?? []) {
    // The ways a property name fails the `propertyNames` schema; the keyword's own error names it.
    if (error.propertyName !== undefined) continue
    const child =
      error.keyword === 'required'
        ? String(error.params.missingProperty)
        : error.keyword === 'additionalProperties'
          ? String(error.params.additionalProperty)
          : error.keyword === 'propertyNames'
            ? String(error.params.propertyName)
            : undefined
    const path = pointerToPath(error.instancePath, child, value)
    const message = messageOf(error)
    const key = `${path}\u0000${message}`
    if (seen.has(key)) continue
    seen.add(key)
    issues.push({ path, message })
  }
  return issues
}
