/**
 * Reports for supervisors (issue 22): a date range in a time zone is turned into its local hours, the store computes
 * the figures in SQL (`Store.report`), and they are shaped here for the API and the reports page. Each figure is
 * defined in docs/reports.md.
 *
 * @module
 */

import { DEFAULT_TIME_ZONE, hourCalendar } from "./calendar.ts";
import type { ReportData, ReportFigure } from "../store/reports_sql.ts";
import type { Store } from "../store/store.ts";

/** A set of durations: how many, the nearest-rank median and 90th percentile in seconds (null when none). */
export interface Durations {
  count: number;
  median_s: number | null;
  p90_s: number | null;
}

/** Messages of one channel in one hour or day. */
export interface MessageRow {
  key: string;
  channel: string;
  inbound: number;
  outbound: number;
}

/** One agent's figures over the range. */
export interface AgentRow {
  agent: string;
  /** Messages the agent sent users. */
  replies: number;
  response: Durations;
  first_response: Durations;
  resolution: Durations;
}

/** A report as the API answers it. */
export interface Report {
  from: string;
  to: string;
  tz: string;
  /** Every local hour (`YYYY-MM-DD HH`) and day of the range, in order, for the charts' axes. */
  hours: string[];
  days: string[];
  /** The channels with messages or conversations in the range, sorted. */
  channels: string[];
  messages: { hourly: MessageRow[]; daily: MessageRow[] };
  conversations: {
    daily: { day: string; channel: string; new: number }[];
    first_response: Durations;
    /** Conversations started in the range that no agent has answered (yet). */
    unanswered: number;
    resolution: Durations;
    response: Durations;
  };
  agents: AgentRow[];
  queue: { wait: Durations };
}

/** What a report is asked for (strings as the query string gives them). */
export interface ReportParams {
  from: unknown;
  to: unknown;
  tz?: unknown;
}

const NONE: Durations = { count: 0, median_s: null, p90_s: null };

function durations(f: ReportFigure | undefined): Durations {
  return f === undefined ? NONE : { count: f.n, median_s: f.median, p90_s: f.p90 };
}

/** Compute the report for `params` (a clear 400 for a bad range or zone, before the store is asked). */
export async function buildReport(store: Store, params: ReportParams): Promise<Report> {
  const tz = params.tz === undefined || params.tz === "" ? DEFAULT_TIME_ZONE : params.tz;
  const hours = hourCalendar(params.from, params.to, tz);
  return shapeReport(await store.report({ hours }), {
    from: String(params.from),
    to: String(params.to),
    tz: String(tz),
    hours: hours.map((h) => h.h),
  });
}

/** The store's rows as the API's report. */
export function shapeReport(
  data: ReportData,
  range: { from: string; to: string; tz: string; hours: string[] },
): Report {
  const days = [...new Set(range.hours.map((h) => h.slice(0, 10)))];
  const channels = new Set<string>();
  const rows = (bucket: "hour" | "day") => {
    const byKey = new Map<string, MessageRow>();
    for (const m of data.messages) {
      if (m.bucket !== bucket) continue;
      channels.add(m.channel);
      const id = `${m.key}\u0000${m.channel}`;
      let row = byKey.get(id);
      if (row === undefined) byKey.set(id, row = { key: m.key, channel: m.channel, inbound: 0, outbound: 0 });
      if (m.direction === "in") row.inbound += m.n;
      else row.outbound += m.n;
    }
    return [...byKey.values()];
  };
  const hourly = rows("hour");
  const daily = rows("day");
  const one = (metric: string, key = "") => data.figures.find((f) => f.metric === metric && f.key === key);
  const agentNames = new Set<string>();
  for (const f of data.figures) if (f.metric.startsWith("agent_") && f.key !== "") agentNames.add(f.key);
  const newDaily = data.figures.filter((f) => f.metric === "new_conversations").map((f) => {
    channels.add(f.key2);
    return { day: f.key, channel: f.key2, new: f.n };
  });
  return {
    ...range,
    days,
    channels: [...channels].sort(),
    messages: { hourly, daily },
    conversations: {
      daily: newDaily,
      first_response: durations(one("first_response")),
      unanswered: one("unanswered")?.n ?? 0,
      resolution: durations(one("resolution")),
      response: durations(one("response")),
    },
    agents: [...agentNames].sort().map((agent) => ({
      agent,
      replies: one("agent_replies", agent)?.n ?? 0,
      response: durations(one("agent_response", agent)),
      first_response: durations(one("agent_first_response", agent)),
      resolution: durations(one("agent_resolution", agent)),
    })),
    queue: { wait: durations(one("queue_wait")) },
  };
}
