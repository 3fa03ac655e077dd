/**
 * The reports' HTTP API (issue 22), for supervisors and admins (an agent gets a 403 JSON error):
 *
 * - `GET {BASE_PATH}/reports?from=YYYY-MM-DD&to=YYYY-MM-DD&tz=Asia/Shanghai` — the report as JSON; with
 *   `format=csv&table=<one of REPORT_TABLES>`, that table as a CSV file.
 * - `GET {CONTACTS_PATH}/:contact_id/export?format=json|csv&tz=…` — one contact's whole conversation.
 *
 * @module
 */

import { Hono, type MiddlewareHandler } from "hono";
import { KefuError, quote } from "../core/errors.ts";
import { BASE_PATH, CONTACTS_PATH } from "../envelope/protocol.ts";
import type { Hub } from "../hub/hub.ts";
import type { AgentEnv } from "../agents/middleware.ts";
import { ok } from "../agents/workplace_routes.ts";
import { DEFAULT_TIME_ZONE, hourCalendar } from "./calendar.ts";
import { conversationCsv, conversationJson, REPORT_TABLES, reportCsv, type ReportTable } from "./export.ts";

/** The reports: GET with `from`, `to`, `tz` (and `format=csv&table=`). */
export const REPORTS_PATH = `${BASE_PATH}/reports`;

function formatOf(value: string | undefined): "json" | "csv" {
  if (value === undefined || value === "" || value === "json") return "json";
  if (value === "csv") return "csv";
  throw new KefuError("wrong_type", `format must be "json" (default) or "csv", got ${quote(value)}`);
}

function zoneOf(value: string | undefined): string {
  const tz = value === undefined || value === "" ? DEFAULT_TIME_ZONE : value;
  // The calendar of one day checks the zone with the runtime's rules: a clear 400 for one it does not know.
  hourCalendar("2026-01-01", "2026-01-01", tz);
  return tz;
}

function download(body: string, type: string, name: string): Response {
  return new Response(body, {
    headers: {
      "content-type": type,
      "content-disposition": `attachment; filename="${name.replace(/[^\w.-]/g, "_")}"; filename*=UTF-8''${
        encodeURIComponent(name)
      }`,
      "cache-control": "no-store",
    },
  });
}

/** The reports' routes, as a sub-app to mount at `/`; `auth` resolves the agent. */
export function reportsRoutes(options: { hub: Hub; auth: MiddlewareHandler<AgentEnv> }): Hono<AgentEnv> {
  const { hub } = options;
  const app = new Hono<AgentEnv>();
  app.use(REPORTS_PATH, options.auth);
  const exportPath = `${CONTACTS_PATH}/:contact_id/export`;
  app.use(exportPath, options.auth);

  app.get(REPORTS_PATH, async (c) => {
    const format = formatOf(c.req.query("format"));
    const table = c.req.query("table");
    if (format === "csv" && !REPORT_TABLES.includes(table as ReportTable)) {
      throw new KefuError(
        "wrong_type",
        `table must be one of ${REPORT_TABLES.join(", ")} for a CSV report, got ${quote(table)}`,
      );
    }
    const report = await hub.reports.report(c.var.agent, {
      from: c.req.query("from"),
      to: c.req.query("to"),
      tz: c.req.query("tz"),
    });
    if (format === "json") return c.json(ok({ report }));
    const name = `kefu-${table}-${report.from}-${report.to}.csv`;
    return download(reportCsv(report, table as ReportTable), "text/csv; charset=utf-8", name);
  });

  app.get(exportPath, async (c) => {
    const format = formatOf(c.req.query("format"));
    const tz = zoneOf(c.req.query("tz"));
    const id = c.req.param("contact_id");
    const conversation = await hub.reports.conversation(c.var.agent, id);
    const name = `kefu-conversation-${id}.${format}`;
    if (format === "csv") return download(conversationCsv(conversation, tz), "text/csv; charset=utf-8", name);
    return download(JSON.stringify(conversationJson(conversation, tz)), "application/json; charset=utf-8", name);
  });
  return app;
}
