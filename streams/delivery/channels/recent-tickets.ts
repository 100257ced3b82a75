import { columnsOf, openSqliteFile } from '../../../src/adapters/sqlite-file.ts'

/**
 * What ticket channels keep of their filings, per target (a GitHub repository, a Jira project:
 * see `githubTarget`, `jiraTarget`), which every configuration filing there shares:
 *
 * - the ids of the issues filed lately, newest first: what Jira's eventually consistent search
 *   is asked to reconcile (`reconcileIssues`, at most 50), so an issue filed a moment ago is
 *   found, not filed again. A hint to the search, never a source of truth: an issue deleted in
 *   Jira is simply not found;
 * - the filings whose answer never came, so a retry does not file a second ticket while the
 *   first may still be on its way.
 */
export interface RecentTickets {
  recent(target: string): readonly number[]
  remember(target: string, issueId: number): void
  /**
   * Written before a request to file an issue for `label` goes out: from `at` on, an issue may
   * exist that neither the answer (lost to a timeout or a crash) nor the lagging search shows.
   */
  filing(target: string, label: string, at: number): void
  /** The filing's answer came, or an issue for `label` was found: nothing is in doubt any more. */
  settled(target: string, label: string): void
  /** When a filing for `label` went out whose answer never came; undefined when none did. */
  unanswered(target: string, label: string): number | undefined
}

/** Jira's limit on `reconcileIssues`. */
export const RECENT_TICKETS_KEPT = 50

/** Kept in this process only: a restarted deliverer starts without them (tests, `:memory:` set-ups). */
export const createMemoryRecentTickets = (keep = RECENT_TICKETS_KEPT): RecentTickets => {
  const byTarget = new Map<string, number[]>()
  const filings = new Map<string, number>()
  const filingKey = (target: string, label: string) => `${target}\u0000${label}`
  return {
    filing: (target, label, at) => {
      filings.set(filingKey(target, label), at)
    },
    settled: (target, label) => {
      filings.delete(filingKey(target, label))
    },
    unanswered: (target, label) => filings.get(filingKey(target, label)),
    recent: (target) => [...(byTarget.get(target) ?? [])].reverse(),
    remember: (target, issueId) => {
      const ids = (byTarget.get(target) ?? []).filter((id) => id !== issueId)
      ids.push(issueId)
      byTarget.set(target, ids.slice(-keep))
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
  // Files written before tickets were shared per target kept them per configuration: those
  // rows can never match a target, so they go (an unanswered filing of the minute before the
  // upgrade is forgotten with them).
  if (columnsOf(db, 'recent_tickets').includes('configuration_id'))
    db.exec('DROP TABLE recent_tickets; DROP TABLE IF EXISTS unanswered_filings;')
  db.exec(`
    CREATE TABLE IF NOT EXISTS recent_tickets (
      target    TEXT    NOT NULL,
      issue_id  INTEGER NOT NULL,
      seq       INTEGER NOT NULL,
      PRIMARY KEY (target, issue_id)
    ) STRICT;
    CREATE INDEX IF NOT EXISTS recent_tickets_newest ON recent_tickets (target, seq);
    CREATE TABLE IF NOT EXISTS unanswered_filings (
      target    TEXT    NOT NULL,
      label     TEXT    NOT NULL,
      at        INTEGER NOT NULL,
      PRIMARY KEY (target, label)
    ) STRICT;
  `)
  const filing = db.prepare(`
    INSERT INTO unanswered_filings (target, label, at) VALUES (?, ?, ?)
    ON CONFLICT (target, label) DO UPDATE SET at = excluded.at`)
  const settled = db.prepare('DELETE FROM unanswered_filings WHERE target = ? AND label = ?')
  const unanswered = db.prepare('SELECT at FROM unanswered_filings WHERE target = ? AND label = ?')
  const recent = db.prepare('SELECT issue_id FROM recent_tickets WHERE target = ? ORDER BY seq DESC LIMIT ?')
  const remember = db.prepare(`
    INSERT INTO recent_tickets (target, issue_id, seq)
    VALUES (?1, ?2, (SELECT coalesce(max(seq), 0) + 1 FROM recent_tickets WHERE target = ?1))
    ON CONFLICT (target, issue_id) DO UPDATE SET seq = excluded.seq`)
  const trim = db.prepare(`
    DELETE FROM recent_tickets WHERE target = ?1 AND seq <=
      (SELECT seq FROM recent_tickets WHERE target = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)`)
  return {
    recent: (target) => (recent.all(target, keep) as { issue_id: number }[]).map((r) => r.issue_id),
    remember: (target, issueId) => {
      remember.run(target, issueId)
      trim.run(target, keep)
    },
    filing: (target, label, at) => {
      filing.run(target, label, Math.trunc(at))
    },
    settled: (target, label) => {
      settled.run(target, label)
    },
    unanswered: (target, label) => (unanswered.get(target, label) as { at: number } | undefined)?.at,
    close: () => db.close(),
  }
}
