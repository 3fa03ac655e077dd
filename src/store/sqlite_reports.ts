/**
 * The reports on SQLite: the shared SQL (`reports_sql.ts`) with the calendar as JSON (`json_each`), for the days the
 * connection's cache of days (`report_days.ts`) does not hold. Run on the store's background connection when it has
 * one, so that a 30-day report never holds up the accept path; in one read transaction, so that the watermark, the
 * new rows and the days' facts are of one snapshot.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import {
  combineDays,
  type DayFacts,
  MAX_NEW_ROWS,
  type ReportDay,
  ReportDayCache,
  reportDays,
  runsOf,
  toDayFacts,
  type Watermarks,
} from "./report_days.ts";
import {
  factsSql,
  messagesSql,
  type ReportData,
  type ReportDialect,
  type ReportQuery,
  toDayFactRow,
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

// One cache per connection (the background worker's lives as long as the store).
const caches = new WeakMap<DatabaseSync, ReportDayCache>();

/** The facts of consecutive `days`, computed from the messages. */
function computeDays(db: DatabaseSync, days: ReportDay[]): DayFacts[] {
  const hours = days.flatMap((d) => d.hours);
  const params = { cal: JSON.stringify(hours), s: hours[0].s, e: hours[hours.length - 1].e };
  const messages = db.prepare(messagesSql(SQLITE_REPORTS)).all(params).map((r) => toMessageCount(r));
  const facts = db.prepare(factsSql(SQLITE_REPORTS, days)).all().map((r) => toDayFactRow(r));
  return toDayFacts(days, facts, messages);
}

/** What changed in the messages since the cache last looked (`report_days.ts`). */
function watermarks(db: DatabaseSync, cache: ReportDayCache): Watermarks {
  const count = (sql: string, ...p: number[]) => Number((db.prepare(sql).get(...p) as { n: number }).n);
  const top = count("SELECT coalesce(max(seq), 0) AS n FROM messages");
  const total = count("SELECT count(*) AS n FROM messages");
  const next = cache.nextSeq(top);
  const aboveNext = count("SELECT count(*) AS n FROM messages WHERE seq > ?", next);
  const from = cache.readFrom(next);
  const above = count("SELECT count(*) AS n FROM messages WHERE seq > ?", from);
  const rows = above <= MAX_NEW_ROWS
    ? db.prepare("SELECT seq, send_time AS t, contact FROM messages WHERE seq > ?").all(from)
      .map((r) => ({ seq: Number(r.seq), t: Number(r.t), contact: String(r.contact) }))
    : null;
  return { total, above, rows, next, aboveNext };
}

/** The report's rows on the SQLite connection `db`; `nowS` (epoch seconds) tells which days are over. */
export function sqliteReport(db: DatabaseSync, query: ReportQuery, nowS = Date.now() / 1000): ReportData {
  if (query.hours.length === 0) return { messages: [], figures: [] };
  let cache = caches.get(db);
  if (cache === undefined) caches.set(db, cache = new ReportDayCache());
  const days = reportDays(query.hours);
  // A read transaction of its own, unless the caller's connection is in one already.
  const own = !db.isTransaction;
  if (own) db.exec("BEGIN");
  try {
    const generation = cache.refresh(watermarks(db, cache));
    const facts = new Map<ReportDay, DayFacts>();
    for (const day of days) {
      const kept = cache.get(day);
      if (kept) facts.set(day, kept);
    }
    for (const run of runsOf(days.filter((d) => !facts.has(d)), days)) {
      for (const f of computeDays(db, run)) {
        facts.set(f.day, f);
        cache.keep(f, nowS, generation);
      }
    }
    return combineDays(days.map((d) => facts.get(d)!));
  } finally {
    if (own) db.exec("COMMIT");
  }
}
