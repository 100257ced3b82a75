import type { WarehouseMigration } from './migrate.ts'

/**
 * The raw table keeps the envelope attributes its columns do not hold (`datacontenttype`,
 * `dataschema`, extension attributes, and `time: null` for an event that carried no time), as
 * a JSON object, so an event read back (selector preview and explain, a rebuild) is the event
 * that arrived. Rows stored before have `{}`: read back without them, as before.
 */
export const m0006EventAttributes: WarehouseMigration = {
  version: 6,
  name: 'event-attributes',
  statements: [`ALTER TABLE events ADD COLUMN IF NOT EXISTS attributes String DEFAULT '{}' AFTER data`],
}
