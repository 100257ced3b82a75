export { events, type ReportContext, type ReportPrincipal, rootValue } from './resolvers.ts'
export { reportSchema } from './schema.ts'
