/**
 * The reports on SQLite: the shared steps (`report_steps.ts`) with the calendar as JSON (`json_each`), run
 * synchronously on the store's background connection when it has one, so that a 30-day report never holds up the
 * accept path; in one read transaction, so that the watermark, the new rows and the days' facts are of one snapshot.
 *
 * @module
 */

import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import { ReportDayCache } from "./report_days.ts";
import { type ReportRows, reportSteps } from "./report_steps.ts";
import type { ReportData, ReportDialect, ReportQuery } from "./reports_sql.ts";

/** The SQLite dialect of the reports' SQL (the benchmark runs its statements one by one). */
export const SQLITE_REPORTS: ReportDialect = {
  calendar: "SELECT json_extract(value, '$.s') AS s, json_extract(value, '$.e') AS e, " +
    "json_extract(value, '$.h') AS h, json_extract(value, '$.d') AS d FROM json_each(?1)",
  action: "json_extract(m.extra, '$.action')",
  cal: "?1",
  start: "?2",
  end: "?3",
};

// One cache per connection (the background worker's lives as long as the store).
const caches = new WeakMap<DatabaseSync, ReportDayCache>();

/** The report's rows on the SQLite connection `db`; `nowS` (epoch seconds) tells which days are over. */
export function sqliteReport(db: DatabaseSync, query: ReportQuery, nowS = Date.now() / 1000): ReportData {
  let cache = caches.get(db);
  if (cache === undefined) caches.set(db, cache = new ReportDayCache());
  // A read transaction of its own, unless the caller's connection is in one already.
  const own = !db.isTransaction;
  if (own) db.exec("BEGIN");
  try {
    const steps = reportSteps(SQLITE_REPORTS, cache, query, nowS);
    let step = steps.next();
    while (!step.done) {
      const { sql, params } = step.value;
      step = steps.next(db.prepare(sql).all(...params as SQLInputValue[]) as ReportRows);
    }
    return step.value;
  } finally {
    if (own) db.exec("COMMIT");
  }
}
