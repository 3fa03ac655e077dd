/**
 * The reports on PostgreSQL: the shared steps (`report_steps.ts`) with the calendar as a JSON parameter
 * (`jsonb_to_recordset`), in one read-only transaction, so that the watermark, the new rows and the days' facts are
 * of one snapshot.
 *
 * @module
 */

import type postgres from "postgres";
import { ReportDayCache } from "./report_days.ts";
import { type ReportRows, reportSteps } from "./report_steps.ts";
import type { ReportData, ReportDialect, ReportQuery } from "./reports_sql.ts";

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

/** The report's rows on the PostgreSQL pool `sql`; `nowS` (epoch seconds) tells which days are over. */
export async function postgresReport(
  sql: postgres.Sql,
  query: ReportQuery,
  nowS = Date.now() / 1000,
): Promise<ReportData> {
  let cache = caches.get(sql);
  if (cache === undefined) caches.set(sql, cache = new ReportDayCache());
  const kept = cache;
  return await sql.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY", async (tx) => {
    // The planner's cost of a month's report is far above jit_above_cost, and compiling it took longer than running
    // it (6.5 s of JIT for a 12.8 s report at 200,000 messages): the report's statements run interpreted.
    await tx.unsafe("SET LOCAL jit = off");
    const steps = reportSteps(POSTGRES_REPORTS, kept, query, nowS);
    let step = steps.next();
    while (!step.done) {
      const { sql, params } = step.value;
      step = steps.next(await tx.unsafe(sql, params as postgres.ParameterOrJSON<never>[]) as unknown as ReportRows);
    }
    return step.value;
  }) as ReportData;
}
