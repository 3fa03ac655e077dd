/**
 * The reports on SQLite: the shared SQL (`reports_sql.ts`) with the calendar as JSON (`json_each`). Run on the
 * store's background connection when it has one, so that a 30-day report never holds up the accept path.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import {
  figuresSql,
  messagesSql,
  type ReportData,
  type ReportDialect,
  type ReportQuery,
  toFigure,
  toMessageCount,
} from "./reports_sql.ts";

/** The SQLite dialect of the reports' SQL (the benchmark runs its statements one by one). */
export const SQLITE_REPORTS: ReportDialect = {
  calendar: "SELECT json_extract(value, '$.s') AS s, json_extract(value, '$.e') AS e, " +
    "json_extract(value, '$.h') AS h, json_extract(value, '$.d') AS d FROM json_each(:cal)",
  action: "json_extract(m.extra, '$.action')",
  cal: ":cal",
  start: ":s",
  end: ":e",
};

/** The report's rows on the SQLite connection `db`. */
export function sqliteReport(db: DatabaseSync, query: ReportQuery): ReportData {
  const hours = query.hours;
  if (hours.length === 0) return { messages: [], figures: [] };
  const params = { cal: JSON.stringify(hours), s: hours[0].s, e: hours[hours.length - 1].e };
  const messages = db.prepare(messagesSql(SQLITE_REPORTS)).all(params).map((r) => toMessageCount(r));
  const figures = db.prepare(figuresSql(SQLITE_REPORTS)).all(params).map((r) => toFigure(r));
  return { messages, figures };
}
