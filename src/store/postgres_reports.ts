/**
 * The reports on PostgreSQL: the shared SQL (`reports_sql.ts`) with the calendar as a JSON parameter
 * (`jsonb_to_recordset`), in one read-only transaction so that both statements see the same data.
 *
 * @module
 */

import type postgres from "postgres";
import {
  figuresSql,
  messagesSql,
  type ReportData,
  type ReportDialect,
  type ReportQuery,
  toFigure,
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

/** The report's rows on the PostgreSQL pool `sql`. */
export async function postgresReport(sql: postgres.Sql, query: ReportQuery): Promise<ReportData> {
  const hours = query.hours;
  if (hours.length === 0) return { messages: [], figures: [] };
  const cal = JSON.stringify(hours);
  const start = hours[0].s;
  const end = hours[hours.length - 1].e;
  return await sql.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY", async (tx) => {
    // The planner's cost of a month's report is far above jit_above_cost, and compiling it took longer than running
    // it (6.5 s of JIT for a 12.8 s report at 200,000 messages): the report's statements run interpreted.
    await tx.unsafe("SET LOCAL jit = off");
    const messages = await tx.unsafe(messagesSql(POSTGRES_REPORTS), [cal, start, end]);
    const figures = await tx.unsafe(figuresSql(POSTGRES_REPORTS), [cal, start, end]);
    return {
      messages: messages.map((r) => toMessageCount(r)),
      figures: figures.map((r) => toFigure(r)),
    };
  }) as ReportData;
}
