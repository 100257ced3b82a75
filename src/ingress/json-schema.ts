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

/** `/data/findings/0/severity` → `data.findings.0.severity`; the root is `(root)`. */
export const pointerToPath = (pointer: string, child?: string): string => {
  const keys = pointer === '' ? [] : pointer.slice(1).split('/').map(unescapePointer)
  if (child !== undefined) keys.push(child)
  return keys.length === 0 ? '(root)' : keys.join('.')
}

/** One issue per failed keyword, named by the field it is about. */
export const ajvIssues = (errors: readonly ErrorObject[] | null | undefined): FieldIssue[] => {
  const issues: FieldIssue[] = []
  const seen = new Set<string>()
  for (const error of errors ?? []) {
    const missing = error.keyword === 'required' ? String(error.params.missingProperty) : undefined
    const extra =
      error.keyword === 'additionalProperties' ? String(error.params.additionalProperty) : undefined
    const path = pointerToPath(error.instancePath, missing ?? extra)
    const message =
      missing !== undefined
        ? 'is required'
        : extra !== undefined
          ? 'is not allowed'
          : (error.message ?? 'is invalid')
    const key = `${path}\u0000${message}`
    if (seen.has(key)) continue
    seen.add(key)
    issues.push({ path, message })
  }
  return issues
}
