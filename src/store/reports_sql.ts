/**
 * The reports' SQL (issue 22), one text for both engines: each engine gives the calendar (the range's local hours,
 * `src/reports/calendar.ts`), how it reads a workflow line's action out of `extra`, and its placeholders. The
 * conversations, responses and waits are found in the database, which answers each day's counts and histograms of
 * durations, so that a 30-day report reads no message into the process; `report_days.ts` keeps the days and computes
 * the percentiles. docs/reports.md defines each figure; the names here follow it.
 *
 * @module
 */

import type { CalendarHour } from "../reports/calendar.ts";

/** What a report is asked for: the local hours of its range, in order (contiguous). */
export interface ReportQuery {
  hours: readonly CalendarHour[];
}

/** Messages of one channel in one direction in one hour or day. */
export interface MessageCount {
  bucket: "hour" | "day";
  /** The hour (`YYYY-MM-DD HH`) or day (`YYYY-MM-DD`) in the report's time zone. */
  key: string;
  channel: string;
  direction: "in" | "out";
  n: number;
}

/**
 * One figure: `metric` over a set of durations in seconds (its count, nearest-rank median and 90th percentile), or
 * a count alone (median and p90 null). `key` and `key2` say of what: an agent, a day and a channel, or "".
 */
export interface ReportFigure {
  metric: string;
  key: string;
  key2: string;
  n: number;
  median: number | null;
  p90: number | null;
}

/** What the store computes for a report. */
export interface ReportData {
  messages: MessageCount[];
  figures: ReportFigure[];
}

/** How one engine speaks: its calendar CTE body, a line's action from `extra` (column `m.extra`), placeholders. */
export interface ReportDialect {
  /** `SELECT s, e, h, d FROM …` over the calendar parameter. */
  calendar: string;
  /** The action of a workflow line, an expression over `m.extra`. */
  action: string;
  /** The calendar, range start and range end parameters, positional (1, 2, 3); `cal` is also the one parameter of
   * the cache's watermark statements (`report_steps.ts`). */
  cal: string;
  start: string;
  end: string;
}

// A user's message (events such as a follow are not messages); what went to the user (workflow lines and notes are
// not sent to anyone).
const USER_MESSAGE = "(m.direction = 'in' AND m.type <> 'event')";
const TO_USER = "(m.direction = 'out' AND m.type NOT IN ('system', 'note'))";
// Above every seq (2^53 - 1, a JS number as both engines read it back).
const MAX_SEQ = "9007199254740991";

/** Messages per local hour and per local day, by channel and direction. */
export function messagesSql(d: ReportDialect): string {
  return `
WITH cal AS MATERIALIZED (${d.calendar}),
-- The calendar first (SQLite keeps a CROSS JOIN's order): an index range of messages per hour. The range's bounds
-- as parameters too, so that PostgreSQL, which joins by hash, reads the range's part of the index only.
hm AS (
  SELECT c.h, c.d, m.channel, m.direction, count(*) AS n
  FROM cal c CROSS JOIN messages m
  WHERE m.send_time >= ${d.start} AND m.send_time < ${d.end} AND m.send_time >= c.s AND m.send_time < c.e
    AND (${USER_MESSAGE} OR ${TO_USER})
  GROUP BY c.h, c.d, m.channel, m.direction
)
SELECT 'hour' AS bucket, h AS k, channel, direction, n FROM hm
UNION ALL
SELECT 'day' AS bucket, d AS k, channel, direction, sum(n) AS n FROM hm GROUP BY d, channel, direction
ORDER BY 1, 2, 3, 4`;
}

/**
 * The facts of each day of the range, for `report_days.ts` to cache and combine: per local day, the durations of
 * each figure per agent (`agent_…`; queue waits have none) as a histogram (`metric`, `k`, `v`, `c`: c values v),
 * counts (`new_conversations` by channel, `unanswered`, `agent_replies`), and the contacts with a figure that later rows may still settle (`pending`: a
 * conversation neither answered nor resolved, a wait not ended). Every figure is anchored on a row of the range
 * (the days and their bounds are written into the statement, which has no parameter), each looking a few rows back or
 * forward in its conversation through the conversation index (`ORDER BY seq LIMIT 1`): the cost grows with the
 * range's rows, not with the contacts' whole histories, and no window function walks them (SQLite's cost ~5 µs a
 * row). A day's facts do not depend on the range they were computed in.
 */
export function factsSql(d: ReportDialect, days: readonly { d: string; s: number; e: number }[]): string {
  const nonNegative = (x: string) => `CASE WHEN ${x} < 0 THEN 0 ELSE ${x} END`;
  const action = (a: string) => d.action.replaceAll("m.extra", `${a}.extra`);
  // On the rows aliased `a`: a user's message; an agent's message to the user; a conversation resolved; a user
  // waiting for an agent (their message kept for nobody, or put back in the queue); an agent having the user.
  const user = (a: string) => `(${a}.direction = 'in' AND ${a}.type <> 'event')`;
  const reply = (a: string) =>
    `(${a}.direction = 'out' AND ${a}.type NOT IN ('system', 'note', 'event') AND ${a}.agent <> '')`;
  const resolved = (a: string) => `(${a}.type = 'system' AND ${action(a)} = 'resolved')`;
  const waiting = (a: string) =>
    `((${a}.direction = 'in' AND ${a}.agent = '') OR (${a}.type = 'system' AND ${action(a)} = 'queued'))`;
  const owned = (a: string) =>
    `(${a}.agent <> '' AND (${a}.direction = 'in' OR ${reply(a)} OR ` +
    `(${a}.type = 'system' AND ${action(a)} IN ('taken', 'assigned', 'transferred'))))`;
  // The time of the first user's message of r's conversation after r.prev_seq and before r.
  const after = (r: string) =>
    `(SELECT x.send_time FROM messages x WHERE x.contact = ${r}.contact AND x.seq > coalesce(${r}.prev_seq, 0) ` +
    `AND x.seq < ${r}.seq AND ${user("x")} ORDER BY x.seq LIMIT 1)`;
  // The range's rows, each with its local day: a binary search over the days' starts written out as nested CASEs (5
  // comparisons for 30 days) rather than a join, so that each engine reads the range as it sees fit (SQLite scans
  // the table for a month, reads `messages_time` for a day).
  const inDays = () => `messages m WHERE m.send_time >= ${S} AND m.send_time < ${E}`;
  const dayOf = (t: string, lo = 0, hi = days.length): string => {
    if (hi - lo === 1) return `'${days[lo].d}'`;
    const mid = (lo + hi) >> 1;
    return `CASE WHEN ${t} < ${days[mid].s} THEN ${dayOf(t, lo, mid)} ELSE ${dayOf(t, mid, hi)} END`;
  };
  for (const day of days) {
    // Written into the statement: only what the calendar makes.
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day.d) || !Number.isSafeInteger(day.s)) {
      throw new Error(`cannot compute a report: the day ${JSON.stringify(day)} is not a calendar day`);
    }
  }
  if (days.length === 0) throw new Error("cannot compute a report: no day in the range");
  const D = dayOf("m.send_time");
  const S = days[0].s;
  const E = days[days.length - 1].e;
  if (!Number.isSafeInteger(E)) throw new Error(`cannot compute a report: the range's end ${E} is not a time`);
  // The nearest row of m's conversation before (DESC) or after (ASC) it that is `what`.
  const near = (col: string, what: string, dir: "ASC" | "DESC", m: string, bound = "") =>
    `(SELECT ${col} FROM messages x WHERE x.contact = ${m}.contact AND x.seq ${dir === "ASC" ? ">" : "<"} ${m}.seq ` +
    `${bound} AND ${what} ORDER BY x.seq ${dir} LIMIT 1)`;
  return `
WITH
-- Conversations started in the range: a user's message whose previous user message or resolved line is none or a
-- resolved line.
starts AS (
  SELECT ${D} AS d, m.seq, m.contact, m.send_time AS t, m.channel FROM ${inDays()} AND ${user("m")}
    AND coalesce(${
    near(`CASE WHEN x.direction = 'in' THEN 0 ELSE 1 END`, `(${user("x")} OR ${resolved("x")})`, "DESC", "m")
  }, 1) = 1
),
conv0 AS (
  SELECT s.*, ${near("x.seq", resolved("x"), "ASC", "s")} AS resolve_seq FROM starts s
),
conv AS MATERIALIZED (
  SELECT c.d, c.contact, c.t AS start_t, c.channel, c.resolve_seq, rp.send_time AS reply_t, rp.agent AS reply_agent
  FROM conv0 c LEFT JOIN messages rp ON rp.seq = ${
    near("x.seq", reply("x"), "ASC", "c", `AND x.seq < coalesce(c.resolve_seq, ${MAX_SEQ})`)
  }
),
-- Conversations resolved in the range, from their first user message after the resolved line before.
res0 AS (
  SELECT ${D} AS d, m.seq, m.contact, m.send_time AS t, m.agent,
    ${near("x.seq", resolved("x"), "DESC", "m")} AS prev_seq
  FROM ${inDays()} AND ${resolved("m")}
),
res AS MATERIALIZED (
  SELECT r.d, r.agent, r.t - ${after("r")} AS v FROM res0 r
),
-- Agents' messages in the range; a response when a user's message came since the reply or resolved line before.
rep0 AS MATERIALIZED (
  SELECT ${D} AS d, m.seq, m.contact, m.send_time AS t, m.agent,
    coalesce(${near("x.seq", `(${reply("x")} OR ${resolved("x")})`, "DESC", "m")}, 0) AS prev_seq
  FROM ${inDays()} AND ${reply("m")}
),
resp AS MATERIALIZED (
  SELECT r.d, r.agent, r.t - ${after("r")} AS v FROM rep0 r
),
-- Waits begun in the range: a waiting row whose previous waiting-or-owned row is not waiting; it ends at the first
-- owned row after it.
wait0 AS (
  SELECT ${D} AS d, m.seq, m.contact, m.send_time AS t FROM ${inDays()} AND m.direction = 'in' AND m.agent = ''
  UNION ALL
  SELECT ${D} AS d, m.seq, m.contact, m.send_time FROM ${inDays()} AND m.type = 'system' AND ${action("m")} = 'queued'
),
waits AS MATERIALIZED (
  SELECT w.d, w.contact, w.t AS start_t, (SELECT e.send_time FROM messages e WHERE e.seq = ${
    near("x.seq", owned("x"), "ASC", "w")
  }) AS end_t
  FROM wait0 w
  WHERE coalesce(${
    near(`CASE WHEN ${waiting("x")} THEN 1 ELSE 0 END`, `(${waiting("x")} OR ${owned("x")})`, "DESC", "w")
  }, 0) = 0
),
-- Per agent only: a figure over everyone is the sum of its agents' histograms (report_days.ts), half the rows to group.
vals AS (
  SELECT d, 'agent_first_response' AS metric, reply_agent AS k, ${nonNegative("reply_t - start_t")} AS v FROM conv
    WHERE reply_t IS NOT NULL
  UNION ALL SELECT d, 'agent_resolution', agent, ${nonNegative("v")} FROM res WHERE v IS NOT NULL
  UNION ALL SELECT d, 'agent_response', agent, ${nonNegative("v")} FROM resp WHERE v IS NOT NULL
  UNION ALL SELECT d, 'queue_wait', '', ${nonNegative("end_t - start_t")} FROM waits WHERE end_t IS NOT NULL
)
-- Durations as a histogram: a month's ~1,000,000 values are ~150,000 distinct (metric, key, seconds).
SELECT d, metric, k, '' AS k2, v, count(*) AS c FROM vals GROUP BY d, metric, k, v
UNION ALL
SELECT d, 'new_conversations', d, channel, NULL, count(*) FROM conv GROUP BY d, channel
UNION ALL
SELECT d, 'unanswered', '', '', NULL, count(*) FROM conv WHERE reply_t IS NULL GROUP BY d
UNION ALL
SELECT d, 'agent_replies', agent, '', NULL, count(*) FROM rep0 GROUP BY d, agent
UNION ALL
SELECT d, 'pending', contact, '', NULL, count(*) FROM conv WHERE reply_t IS NULL AND resolve_seq IS NULL
  GROUP BY d, contact
UNION ALL
SELECT d, 'pending', contact, '', NULL, count(*) FROM waits WHERE end_t IS NULL GROUP BY d, contact`;
}

/** One row of {@link factsSql}: a day's histogram bucket (`v` not null) or count (`v` null). */
export interface DayFactRow {
  d: string;
  metric: string;
  k: string;
  k2: string;
  v: number | null;
  c: number;
}

/** A facts row as numbers. */
export function toDayFactRow(row: Record<string, unknown>): DayFactRow {
  return {
    d: String(row.d),
    metric: String(row.metric),
    k: String(row.k ?? ""),
    k2: String(row.k2 ?? ""),
    v: row.v === null || row.v === undefined ? null : Number(row.v),
    c: Number(row.c),
  };
}

/** A message count row as numbers. */
export function toMessageCount(row: Record<string, unknown>): MessageCount {
  return {
    bucket: row.bucket === "day" ? "day" : "hour",
    key: String(row.k),
    channel: String(row.channel),
    direction: row.direction === "out" ? "out" : "in",
    n: Number(row.n),
  };
}
