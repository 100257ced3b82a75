import { openSqliteFile } from '../../../src/adapters/sqlite-file.ts'

/**
 * The ids of the issues a ticket channel filed lately, per configuration, newest first: what
 * Jira's eventually consistent search is asked to reconcile (`reconcileIssues`, at most 50),
 * so an issue filed a moment ago is found, not filed again. A hint to the search, never a
 * source of truth: an issue deleted in Jira is simply not found.
 */
export interface RecentTickets {
  recent(configurationId: string): readonly number[]
  remember(configurationId: string, issueId: number): void
  /**
   * Written before a request to file an issue for `label` goes out: from `at` on, an issue may
   * exist that neither the answer (lost to a timeout or a crash) nor the lagging search shows.
   */
  filing(configurationId: string, label: string, at: number): void
  /** The filing's answer came, or an issue for `label` was found: nothing is in doubt any more. */
  settled(configurationId: string, label: string): void
  /** When a filing for `label` went out whose answer never came; undefined when none did. */
  unanswered(configurationId: string, label: string): number | undefined
}

/** Jira's limit on `reconcileIssues`. */
export const RECENT_TICKETS_KEPT = 50

/** Kept in this process only: a restarted deliverer starts without them (tests, `:memory:` set-ups). */
export const createMemoryRecentTickets = (keep = RECENT_TICKETS_KEPT): RecentTickets => {
  const byConfiguration = new Map<string, number[]>()
  const filings = new Map<string, number>()
  const filingKey = (configurationId: string, label: string) => `${configurationId}\u0000${label}`
  return {
    filing: (configurationId, label, at) => {
      filings.set(filingKey(configurationId, label), at)
    },
    settled: (configurationId, label) => {
      filings.delete(filingKey(configurationId, label))
    },
    unanswered: (configurationId, label) => filings.get(filingKey(configurationId, label)),
    recent: (configurationId) => [...(byConfiguration.get(configurationId) ?? [])].reverse(),
    remember: (configurationId, issueId) => {
      const ids = (byConfiguration.get(configurationId) ?? []).filter((id) => id !== issueId)
      ids.push(issueId)
      byConfiguration.set(configurationId, ids.slice(-keep))
    },
  }
}

/**
 * Kept in a SQLite file, written as soon as Jira answers the create: a deliverer killed after
 * filing an issue and restarted within the search's lag (a retry comes 0 and 5 s after a
 * failure) still finds the issue instead of filing a second one. Filings are written before
 * the request goes out, so one killed while Jira was answering is still known after a restart.
 *
 * @example
 * const tickets = createSqliteRecentTickets('data/recent-tickets.sqlite')
 * createDeliveryChannels({ guard, recentTickets: tickets })
 */
export const createSqliteRecentTickets = (
  path: string,
  keep = RECENT_TICKETS_KEPT,
): RecentTickets & { close(): void } => {
  const db = openSqliteFile(path, { synchronous: 'NORMAL' })
  db.exec(`
    CREATE TABLE IF NOT EXISTS recent_tickets (
      configuration_id TEXT    NOT NULL,
      issue_id         INTEGER NOT NULL,
      seq              INTEGER NOT NULL,
      PRIMARY KEY (configuration_id, issue_id)
    ) STRICT;
    CREATE INDEX IF NOT EXISTS recent_tickets_newest ON recent_tickets (configuration_id, seq);
    CREATE TABLE IF NOT EXISTS unanswered_filings (
      configuration_id TEXT    NOT NULL,
      label            TEXT    NOT NULL,
      at               INTEGER NOT NULL,
      PRIMARY KEY (configuration_id, label)
    ) STRICT;
  `)
  const filing = db.prepare(`
    INSERT INTO unanswered_filings (configuration_id, label, at) VALUES (?, ?, ?)
    ON CONFLICT (configuration_id, label) DO UPDATE SET at = excluded.at`)
  const settled = db.prepare('DELETE FROM unanswered_filings WHERE configuration_id = ? AND label = ?')
  const unanswered = db.prepare('SELECT at FROM unanswered_filings WHERE configuration_id = ? AND label = ?')
  const recent = db.prepare(
    'SELECT issue_id FROM recent_tickets WHERE configuration_id = ? ORDER BY seq DESC LIMIT ?',
  )
  const remember = db.prepare(`
    INSERT INTO recent_tickets (configuration_id, issue_id, seq)
    VALUES (?1, ?2, (SELECT coalesce(max(seq), 0) + 1 FROM recent_tickets WHERE configuration_id = ?1))
    ON CONFLICT (configuration_id, issue_id) DO UPDATE SET seq = excluded.seq`)
  const trim = db.prepare(`
    DELETE FROM recent_tickets WHERE configuration_id = ?1 AND seq <=
      (SELECT seq FROM recent_tickets WHERE configuration_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)`)
  return {
    recent: (configurationId) =>
      (recent.all(configurationId, keep) as { issue_id: number }[]).map((r) => r.issue_id),
    remember: (configurationId, issueId) => {
      remember.run(configurationId, issueId)
      trim.run(configurationId, keep)
    },
    filing: (configurationId, label, at) => {
      filing.run(configurationId, label, Math.trunc(at))
    },
    settled: (configurationId, label) => {
      settled.run(configurationId, label)
    },
    unanswered: (configurationId, label) =>
      (unanswered.get(configurationId, label) as { at: number } | undefined)?.at,
    close: () => db.close(),
  }
}
