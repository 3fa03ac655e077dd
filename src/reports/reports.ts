/**
 * Reports for supervisors (issue 22): a date range in a time zone is turned into its local hours, the store computes
 * the figures in SQL (`Store.report`), and they are shaped here for the API and the reports page. Each figure is
 * defined in docs/reports.md.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import { leadsTeam, type Role } from "../core/roles.ts";
import { DEFAULT_TIME_ZONE, hourCalendar } from "./calendar.ts";
import type { ReportData, ReportFigure } from "../store/reports_sql.ts";
import type { ContactSummary, Store, StoredMessage } from "../store/store.ts";

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

/** Reports and conversation exports for supervisors and admins; agents are refused (403). */
export class Reports {
  readonly #store: Store;
  readonly #roleOf: (agent: string) => Role;

  constructor(options: { store: Store; roleOf: (agent: string) => Role }) {
    this.#store = options.store;
    this.#roleOf = options.roleOf;
  }

  /** Throws a 403 naming the agent's role unless it is a supervisor or an admin. */
  check(agent: string, action: string): void {
    const role = this.#roleOf(agent);
    if (!leadsTeam(role)) {
      throw new KefuError(
        "role_required",
        `cannot ${action}: agent ${
          quote(agent)
        } is an ${role}; only supervisors and admins may (CONFIG_FILE agents[].role)`,
        403,
      );
    }
  }

  /** The report `agent` asks for. */
  async report(agent: string, params: ReportParams): Promise<Report> {
    this.check(agent, "read the reports");
    try {
      return await buildReport(this.#store, params);
    } catch (e) {
      if (e instanceof KefuError) throw e;
      throw new KefuError("store_failed", `cannot compute the report: ${(e as Error).message}; try again`, 503);
    }
  }

  /** One contact's whole conversation, oldest first, for `agent` to export. */
  async conversation(agent: string, id: string): Promise<Conversation> {
    this.check(agent, `export the conversation of contact ${quote(id)}`);
    const contact = await this.#store.contact(id);
    if (contact === undefined) {
      throw new KefuError("not_found", `cannot export contact ${quote(id)}: no such contact`, 404);
    }
    const pages: StoredMessage[][] = [];
    const seen = new Set<number>();
    let before: string | undefined;
    // Bounded: a page of EXPORT_PAGE at a time, at most MAX_EXPORT_MESSAGES in all.
    for (let n = 0; n < MAX_EXPORT_MESSAGES; n += EXPORT_PAGE) {
      const page = (await this.#store.history(id, { before, limit: EXPORT_PAGE })).filter((m) => !seen.has(m.seq));
      for (const m of page) seen.add(m.seq);
      if (page.length > 0) pages.push(page);
      if (page.length < EXPORT_PAGE) break;
      before = page[page.length - 1].id;
    }
    return { contact, messages: pages.flat().sort((a, b) => a.seq - b.seq) };
  }
}

/** A contact and its whole conversation (every kind of message: workflow lines, notes, events), oldest first. */
export interface Conversation {
  contact: ContactSummary;
  messages: StoredMessage[];
}

/** Messages read from the store per page of an export. */
export const EXPORT_PAGE = 1000;
/** The most messages one export holds (the newest). */
export const MAX_EXPORT_MESSAGES = 200_000;
