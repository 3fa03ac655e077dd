/**
 * The reports' SQL (issue 22), one text for both engines: each engine gives the calendar (the range's local hours,
 * `src/reports/calendar.ts`), how it reads a workflow line's action out of `extra`, and its placeholders. Everything
 * is computed in the database — counts, the conversations, the percentiles — so that a 30-day report reads no
 * message into the process. docs/reports.md defines each figure; the names here follow it.
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
  /** The calendar, range start and range end parameters. */
  cal: string;
  start: string;
  end: string;
}

// A user's message (events such as a follow are not messages); what went to the user (workflow lines and notes are
// not sent to anyone).
const USER_MESSAGE = "(m.direction = 'in' AND m.type <> 'event')";
const TO_USER = "(m.direction = 'out' AND m.type NOT IN ('system', 'note'))";

/** Messages per local hour and per local day, by channel and direction. */
export function messagesSql(d: ReportDialect): string {
  return `
WITH cal AS (${d.calendar}),
hm AS (
  SELECT c.h, c.d, m.channel, m.direction, count(*) AS n
  FROM cal c JOIN messages m ON m.send_time >= c.s AND m.send_time < c.e
  WHERE ${USER_MESSAGE} OR ${TO_USER}
  GROUP BY c.h, c.d, m.channel, m.direction
)
SELECT 'hour' AS bucket, h AS k, channel, direction, n FROM hm
UNION ALL
SELECT 'day' AS bucket, d AS k, channel, direction, sum(n) AS n FROM hm GROUP BY d, channel, direction
ORDER BY 1, 2, 3, 4`;
}

/**
 * Conversations, responses, resolutions and waits in the queue, each a duration, with their counts, medians and
 * 90th percentiles; conversations started per day and channel; replies per agent. A conversation is a contact's
 * rows between two `resolved` lines; every row of a contact with a row in the range takes part (a conversation may
 * have started before the range), through the conversation index.
 */
export function figuresSql(d: ReportDialect): string {
  const S = d.start;
  const E = d.end;
  const nonNegative = (x: string) => `CASE WHEN ${x} < 0 THEN 0 ELSE ${x} END`;
  return `
WITH cal AS (${d.calendar}),
days AS (SELECT d, min(s) AS s, max(e) AS e FROM cal GROUP BY d),
act AS (SELECT DISTINCT contact FROM messages WHERE send_time >= ${S} AND send_time < ${E}),
r0 AS (
  SELECT m.contact, m.seq, m.send_time AS t, m.agent, m.channel, m.direction, m.type,
    CASE WHEN m.type = 'system' THEN coalesce(${d.action}, '') ELSE '' END AS action,
    CASE WHEN ${USER_MESSAGE} THEN 1 ELSE 0 END AS is_in,
    CASE WHEN ${TO_USER} AND m.agent <> '' THEN 1 ELSE 0 END AS is_reply
  FROM messages m WHERE m.contact IN (SELECT contact FROM act)
),
r AS (
  SELECT r0.*,
    CASE WHEN action = 'resolved' THEN 1 ELSE 0 END AS is_resolve,
    CASE WHEN (direction = 'in' AND agent = '') OR action = 'queued' THEN 1 ELSE 0 END AS is_wait,
    CASE WHEN agent <> '' AND action <> 'queued'
      AND (direction = 'in' OR is_reply = 1 OR action IN ('taken', 'assigned', 'transferred')) THEN 1 ELSE 0 END
      AS is_owned
  FROM r0
),
rc AS (
  SELECT r.*,
    sum(is_resolve) OVER w - is_resolve AS conv,
    sum(is_reply + is_resolve) OVER w - (is_reply + is_resolve) AS grp
  FROM r WINDOW w AS (PARTITION BY contact ORDER BY seq ROWS UNBOUNDED PRECEDING)
),
rs AS (SELECT rc.*, min(CASE WHEN is_in = 1 THEN seq END) OVER (PARTITION BY contact, conv) AS start_seq FROM rc),
rf AS (
  SELECT rs.*, min(CASE WHEN is_reply = 1 AND seq > start_seq THEN seq END) OVER (PARTITION BY contact, conv)
    AS reply_seq
  FROM rs
),
conv AS (
  SELECT contact, conv,
    max(CASE WHEN seq = start_seq THEN t END) AS start_t,
    max(CASE WHEN seq = start_seq THEN channel END) AS channel,
    max(CASE WHEN seq = reply_seq THEN t END) AS reply_t,
    max(CASE WHEN seq = reply_seq THEN agent END) AS reply_agent,
    max(CASE WHEN is_resolve = 1 THEN t END) AS resolve_t,
    max(CASE WHEN is_resolve = 1 THEN agent END) AS resolve_agent
  FROM rf GROUP BY contact, conv
),
resp AS (
  SELECT min(CASE WHEN is_in = 1 THEN t END) AS in_t, max(CASE WHEN is_reply = 1 THEN t END) AS reply_t,
    max(CASE WHEN is_reply = 1 THEN agent END) AS agent
  FROM rc GROUP BY contact, grp
),
rq AS (
  SELECT t, is_wait, lag(is_wait) OVER (PARTITION BY contact ORDER BY seq) AS prev_wait,
    min(CASE WHEN is_owned = 1 THEN t END)
      OVER (PARTITION BY contact ORDER BY seq ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS end_t
  FROM rc WHERE is_wait = 1 OR is_owned = 1
),
vals AS (
  SELECT 'first_response' AS metric, '' AS k, ${nonNegative("reply_t - start_t")} AS v FROM conv
    WHERE start_t >= ${S} AND start_t < ${E} AND reply_t IS NOT NULL
  UNION ALL SELECT 'agent_first_response', reply_agent, ${nonNegative("reply_t - start_t")} FROM conv
    WHERE start_t >= ${S} AND start_t < ${E} AND reply_t IS NOT NULL
  UNION ALL SELECT 'resolution', '', ${nonNegative("resolve_t - start_t")} FROM conv
    WHERE resolve_t >= ${S} AND resolve_t < ${E} AND start_t IS NOT NULL
  UNION ALL SELECT 'agent_resolution', resolve_agent, ${nonNegative("resolve_t - start_t")} FROM conv
    WHERE resolve_t >= ${S} AND resolve_t < ${E} AND start_t IS NOT NULL
  UNION ALL SELECT 'response', '', ${nonNegative("reply_t - in_t")} FROM resp
    WHERE reply_t >= ${S} AND reply_t < ${E} AND in_t IS NOT NULL
  UNION ALL SELECT 'agent_response', agent, ${nonNegative("reply_t - in_t")} FROM resp
    WHERE reply_t >= ${S} AND reply_t < ${E} AND in_t IS NOT NULL
  UNION ALL SELECT 'queue_wait', '', ${nonNegative("end_t - t")} FROM rq
    WHERE is_wait = 1 AND (prev_wait IS NULL OR prev_wait = 0) AND end_t >= ${S} AND end_t < ${E}
),
pct AS (
  SELECT metric, k, v, row_number() OVER (PARTITION BY metric, k ORDER BY v) AS rn,
    count(*) OVER (PARTITION BY metric, k) AS n
  FROM vals
)
SELECT metric, k, '' AS k2, max(n) AS n, max(CASE WHEN rn = (n + 1) / 2 THEN v END) AS median,
  max(CASE WHEN rn = (9 * n + 9) / 10 THEN v END) AS p90
FROM pct GROUP BY metric, k
UNION ALL
SELECT 'new_conversations', days.d, conv.channel, count(*), NULL, NULL
FROM conv JOIN days ON conv.start_t >= days.s AND conv.start_t < days.e GROUP BY days.d, conv.channel
UNION ALL
SELECT 'unanswered', '', '', count(*), NULL, NULL FROM conv
WHERE start_t >= ${S} AND start_t < ${E} AND reply_t IS NULL
UNION ALL
SELECT 'agent_replies', agent, '', count(*), NULL, NULL FROM r
WHERE is_reply = 1 AND t >= ${S} AND t < ${E} GROUP BY agent
ORDER BY 1, 2, 3`;
}

/** The figures' rows as the engines return them, as numbers. */
export function toFigure(row: Record<string, unknown>): ReportFigure {
  const num = (x: unknown) => x === null || x === undefined ? null : Number(x);
  return {
    metric: String(row.metric),
    key: String(row.k ?? ""),
    key2: String(row.k2 ?? ""),
    n: Number(row.n),
    median: num(row.median),
    p90: num(row.p90),
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
