/**
 * A report's work on either engine, written once: a generator that yields each statement it needs run (SQL and
 * positional parameters) and takes back its rows. SQLite drives it synchronously (its read transaction must not
 * give way to other work on the connection), PostgreSQL with `await` in a transaction of its own.
 *
 * @module
 */

import {
  combineDays,
  type DayFacts,
  MAX_NEW_ROWS,
  type ReportDay,
  type ReportDayCache,
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

/** A statement the report needs: its SQL and positional parameters. */
export interface ReportStatement {
  sql: string;
  params: unknown[];
}

/** Rows as both drivers give them: objects by column name. */
export type ReportRows = ArrayLike<Record<string, unknown>> & Iterable<Record<string, unknown>>;

/** The statements of one report, then its data; `nowS` (epoch seconds) tells which days are over. */
export function* reportSteps(
  d: ReportDialect,
  cache: ReportDayCache,
  query: ReportQuery,
  nowS: number,
): Generator<ReportStatement, ReportData, ReportRows> {
  if (query.hours.length === 0) return { messages: [], figures: [] };
  const days = reportDays(query.hours);
  const generation = cache.refresh(yield* watermarks(d, cache));
  const facts = new Map<ReportDay, DayFacts>();
  for (const day of days) {
    const kept = cache.get(day);
    if (kept) facts.set(day, kept);
  }
  for (const run of runsOf(days.filter((day) => !facts.has(day)), days)) {
    const hours = run.flatMap((day) => day.hours);
    const messages = yield { sql: messagesSql(d), params: [JSON.stringify(hours), hours[0].s, hours.at(-1)!.e] };
    const rows = yield { sql: factsSql(d, run), params: [] };
    const computed = toDayFacts(
      run,
      [...rows].map((r) => toDayFactRow(r)),
      [...messages].map((r) => toMessageCount(r)),
    );
    for (const f of computed) {
      facts.set(f.day, f);
      cache.keep(f, nowS, generation);
    }
  }
  return combineDays(days.map((day) => facts.get(day)!));
}

/** What changed in the messages since the cache last looked (`report_days.ts`). */
function* watermarks(d: ReportDialect, cache: ReportDayCache): Generator<ReportStatement, Watermarks, ReportRows> {
  const count = function* (sql: string, ...params: number[]): Generator<ReportStatement, number, ReportRows> {
    return Number((yield { sql, params })[0].n);
  };
  const top = yield* count("SELECT coalesce(max(seq), 0) AS n FROM messages");
  const total = yield* count("SELECT count(*) AS n FROM messages");
  const next = cache.nextSeq(top);
  const aboveNext = yield* count(`SELECT count(*) AS n FROM messages WHERE seq > ${d.cal}`, next);
  const from = cache.readFrom(next);
  const above = yield* count(`SELECT count(*) AS n FROM messages WHERE seq > ${d.cal}`, from);
  const rows = above <= MAX_NEW_ROWS
    ? [...yield { sql: `SELECT seq, send_time AS t, contact FROM messages WHERE seq > ${d.cal}`, params: [from] }]
      .map((r) => ({ seq: Number(r.seq), t: Number(r.t), contact: String(r.contact) }))
    : null;
  return { total, above, rows, next, aboveNext };
}
