/**
 * Files for supervisors (issue 22): a contact's conversation as JSON or CSV, and each table of a report as CSV. CSV
 * is written by `csv-stringify` and starts with a UTF-8 byte order mark, so that Excel opens Chinese text as UTF-8.
 * Every message of the conversation is exported whatever its type — a kind added later (an internal note) passes
 * through as its type, content and extra fields.
 *
 * @module
 */

import { stringify } from "csv-stringify/sync";
import type { StoredMessage } from "../store/store.ts";
import type { Durations, Report } from "./reports.ts";
import type { Conversation } from "./reports.ts";

/** What Excel needs to read a CSV file as UTF-8. */
export const BOM = "\uFEFF";

/** `YYYY-MM-DD HH:mm:ss` of epoch seconds `t` in zone `tz`. */
export function localTime(t: number, tz: string): string {
  const format = new Intl.DateTimeFormat("en-CA", {
    timeZone: tz,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });
  const p = Object.fromEntries(format.formatToParts(t * 1000).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** One message as an export shows it. */
function exported(m: StoredMessage, tz: string) {
  return {
    seq: m.seq,
    id: m.id,
    time: localTime(m.sendTime, tz),
    send_time: m.sendTime,
    direction: m.direction,
    type: m.type,
    agent_id: m.agent,
    name: m.name,
    content: m.content,
    media: m.media,
    state: m.state,
    detail: m.detail,
    extra: m.extra ?? {},
  };
}

/** The conversation as the JSON export: the contact, then every message oldest first. */
export function conversationJson(c: Conversation, tz: string): unknown {
  const k = c.contact;
  return {
    tz,
    contact: {
      contact_id: k.id,
      user_id: k.user,
      channel: k.channel,
      account: k.account,
      name: k.name,
      display_name: k.displayName,
      note: k.note,
      agent_id: k.agent,
      status: k.status,
      tags: k.tags ?? [],
    },
    messages: c.messages.map((m) => exported(m, tz)),
  };
}

const CONVERSATION_COLUMNS = [
  "seq",
  "time",
  "direction",
  "type",
  "agent_id",
  "name",
  "content",
  "media",
  "state",
  "action",
  "note",
  "extra",
] as const;

/** The conversation as CSV (with the BOM): a row per message, workflow lines' action and note in their columns. */
export function conversationCsv(c: Conversation, tz: string): string {
  const rows = c.messages.map((m) => {
    const e = exported(m, tz);
    const extra = m.extra ?? {};
    return [
      e.seq,
      e.time,
      e.direction,
      e.type,
      e.agent_id,
      e.name,
      e.content,
      e.media,
      e.state,
      extra.action ?? "",
      extra.note ?? "",
      Object.keys(extra).length === 0 ? "" : JSON.stringify(extra),
    ];
  });
  return BOM + stringify([[...CONVERSATION_COLUMNS], ...rows]);
}

/** The tables of a report that can be downloaded as CSV. */
export const REPORT_TABLES = ["messages_hourly", "messages_daily", "conversations_daily", "agents", "summary"] as const;

/** One of {@link REPORT_TABLES}. */
export type ReportTable = typeof REPORT_TABLES[number];

const d = (x: Durations) => [x.count, x.median_s ?? "", x.p90_s ?? ""];

/** One table of a report as CSV (with the BOM). */
export function reportCsv(r: Report, table: ReportTable): string {
  let rows: unknown[][];
  switch (table) {
    case "messages_hourly":
    case "messages_daily":
      rows = [
        [table === "messages_hourly" ? "hour" : "day", "channel", "inbound", "outbound"],
        ...(table === "messages_hourly" ? r.messages.hourly : r.messages.daily).map((
          m,
        ) => [m.key, m.channel, m.inbound, m.outbound]),
      ];
      break;
    case "conversations_daily":
      rows = [["day", "channel", "new"], ...r.conversations.daily.map((c) => [c.day, c.channel, c.new])];
      break;
    case "agents":
      rows = [
        [
          "agent",
          "replies",
          "responses",
          "response_median_s",
          "response_p90_s",
          "first_responses",
          "first_response_median_s",
          "first_response_p90_s",
          "resolved",
          "resolution_median_s",
          "resolution_p90_s",
        ],
        ...r.agents.map((a) => [a.agent, a.replies, ...d(a.response), ...d(a.first_response), ...d(a.resolution)]),
      ];
      break;
    case "summary":
      rows = [
        ["metric", "count", "median_s", "p90_s"],
        ["first_response", ...d(r.conversations.first_response)],
        ["response", ...d(r.conversations.response)],
        ["resolution", ...d(r.conversations.resolution)],
        ["queue_wait", ...d(r.queue.wait)],
        ["unanswered", r.conversations.unanswered, "", ""],
      ];
      break;
  }
  return BOM + stringify(rows);
}
