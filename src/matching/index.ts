export {
  type AnchoreSelectorInput,
  type CompileOptions,
  compileAnchoreSelector,
  compilePattern,
} from './compile.ts'
export { InvalidPatternError, isInvalidPatternError } from './errors.ts'
export {
  type ExplainOptions,
  type ExplainSelectorOptions,
  type Explanation,
  explainPattern,
  explainSelector,
  type MatchFailure,
} from './explain.ts'
export { checkPatternSize, MAX_PATTERN_CONDITIONS, MAX_PATTERN_DEPTH, MAX_PATTERN_VALUES } from './parse.ts'
export {
  buildPatternIndex,
  type PatternIndex,
  type PatternIndexEntry,
  patternIndexSteps,
} from './pattern-index.ts'
export type {
  CompiledPattern,
  Field,
  LeafField,
  Matcher,
  NegatableMatcher,
  NumericBound,
  ObjectField,
  PatternNode,
  Scalar,
} from './types.ts'
