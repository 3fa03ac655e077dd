/**
 * The reports on PostgreSQL: the shared SQL (`reports_sql.ts`) with the calendar as a JSON parameter
 * (`jsonb_to_recordset`), for the days the pool's cache of days (`report_days.ts`) does not hold; in one read-only
 * transaction, so that the watermark, the new rows and the days' facts are of one snapshot.
 *
 * @module
 */

import type postgres from "postgres";
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

/** The PostgreSQL dialect of the reports' SQL (the benchmark runs its statements one by one). */
export const POSTGRES_REPORTS: ReportDialect = {
  calendar: "SELECT s, e, h, d FROM jsonb_to_recordset($1::text::jsonb) AS x(s bigint, e bigint, h text, d text)",
  action: "(m.extra::jsonb ->> 'action')",
  cal: "$1",
  start: "$2::bigint",
  end: "$3::bigint",
};

// One cache per pool (per process: each node of a cluster keeps its own, each checked against the database).
const caches = new WeakMap<postgres.Sql, ReportDayCache>();

/** What changed in the messages since the cache last looked (`report_days.ts`). */
async function watermarks(tx: postgres.TransactionSql, cache: ReportDayCache): Promise<Watermarks> {
  const count = async (sql: string, ...p: number[]) => Number((await tx.unsafe(sql, p))[0].n);
  const top = await count("SELECT coalesce(max(seq), 0) AS n FROM messages");
  const total = await count("SELECT count(*) AS n FROM messages");
  const next = cache.nextSeq(top);
  const aboveNext = await count("SELECT count(*) AS n FROM messages WHERE seq > $1", next);
  const from = cache.readFrom(next);
  const above = await count("SELECT count(*) AS n FROM messages WHERE seq > $1", from);
  const rows = above <= MAX_NEW_ROWS
    ? (await tx.unsafe("SELECT seq, send_time AS t, contact FROM messages WHERE seq > $1", [from]))
      .map((r) => ({ seq: Number(r.seq), t: Number(r.t), contact: String(r.contact) }))
    : null;
  return { total, above, rows, next, aboveNext };
}

/** The report's rows on the PostgreSQL pool `sql`; `nowS` (epoch seconds) tells which days are over. */
export async function postgresReport(
  sql: postgres.Sql,
  query: ReportQuery,
  nowS = Date.now() / 1000,
): Promise<ReportData> {
  if (query.hours.length === 0) return { messages: [], figures: [] };
  let cache = caches.get(sql);
  if (cache === undefined) caches.set(sql, cache = new ReportDayCache());
  const kept = cache;
  const days = reportDays(query.hours);
  return await sql.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY", async (tx) => {
    // The planner's cost of a month's report is far above jit_above_cost, and compiling it took longer than running
    // it (6.5 s of JIT for a 12.8 s report at 200,000 messages): the report's statements run interpreted.
    await tx.unsafe("SET LOCAL jit = off");
    const generation = kept.refresh(await watermarks(tx, kept));
    const facts = new Map<ReportDay, DayFacts>();
    for (const day of days) {
      const f = kept.get(day);
      if (f) facts.set(day, f);
    }
    for (const run of runsOf(days.filter((d) => !facts.has(d)), days)) {
      const hours = run.flatMap((d) => d.hours);
      const params = [JSON.stringify(hours), hours[0].s, hours[hours.length - 1].e];
      const messages = await tx.unsafe(messagesSql(POSTGRES_REPORTS), params);
      const rows = await tx.unsafe(factsSql(POSTGRES_REPORTS, run));
      const computed = toDayFacts(run, rows.map((r) => toDayFactRow(r)), messages.map((r) => toMessageCount(r)));
      for (const f of computed) {
        facts.set(f.day, f);
        kept.keep(f, nowS, generation);
      }
    }
    return combineDays(days.map((d) => facts.get(d)!));
  }) as ReportData;
}
