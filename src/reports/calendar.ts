/**
 * The hours of a report's date range in a time zone, as epoch-second intervals: the one place that knows about time
 * zones, so that both store engines bucket messages alike (SQLite has no time zones; PostgreSQL's would round a
 * repeated daylight-saving hour differently). The zone's rules are the runtime's (`Intl`), never kefu's own.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";

/** One local hour: `[s, e)` in epoch seconds, its label (`YYYY-MM-DD HH`) and its day (`YYYY-MM-DD`). */
export interface CalendarHour {
  s: number;
  e: number;
  h: string;
  d: string;
}

/** The default time zone of reports (the team works in China). */
export const DEFAULT_TIME_ZONE = "Asia/Shanghai";
/** The longest range a report covers, in days. */
export const MAX_REPORT_DAYS = 92;

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
// Every zone's offset is a multiple of 15 minutes (Nepal +5:45, Chatham +12:45): a label can change only there.
const STEP_S = 15 * 60;
// Farther than any zone is from UTC (+14:00, -12:00).
const MARGIN_S = 15 * 3600;

function dayOf(value: unknown, name: string): number {
  if (value === undefined || value === "") {
    throw new KefuError(
      "missing_field",
      `${name} is required: a date YYYY-MM-DD (the range's ${name === "from" ? "first" : "last"} day)`,
    );
  }
  const m = typeof value === "string" ? DATE_RE.exec(value) : null;
  const t = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : NaN;
  if (!m || Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== value) {
    throw new KefuError("wrong_type", `${name} must be a date YYYY-MM-DD, got ${quote(value)}`);
  }
  return t / 1000;
}

/** A formatter of `tz`'s local hour; a clear 400 for a zone the runtime does not know. */
function hourFormat(tz: string): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat("en-CA", {
      timeZone: tz,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      hourCycle: "h23",
    });
  } catch {
    throw new KefuError("wrong_type", `tz must be an IANA time zone such as "Asia/Shanghai", got ${quote(tz)}`);
  }
}

/**
 * The local hours from the start of day `from` to the end of day `to` (both `YYYY-MM-DD`, inclusive) in zone `tz`.
 * A 400 names what was wrong: a malformed date, `to` before `from`, more than {@link MAX_REPORT_DAYS} days, an
 * unknown zone.
 */
export function hourCalendar(from: unknown, to: unknown, tz: unknown = DEFAULT_TIME_ZONE): CalendarHour[] {
  const a = dayOf(from, "from");
  const b = dayOf(to, "to");
  if (b < a) throw new KefuError("invalid_range", `the range is empty: to ${quote(to)} is before from ${quote(from)}`);
  const days = (b - a) / 86400 + 1;
  if (days > MAX_REPORT_DAYS) {
    throw new KefuError(
      "invalid_range",
      `the range from ${quote(from)} to ${quote(to)} is ${days} days long; at most ${MAX_REPORT_DAYS} are reported`,
    );
  }
  if (typeof tz !== "string" || tz === "") {
    throw new KefuError("wrong_type", `tz must be an IANA time zone such as "Asia/Shanghai", got ${quote(tz)}`);
  }
  const format = hourFormat(tz);
  const label = (t: number) => {
    const p = Object.fromEntries(format.formatToParts(t * 1000).map((x) => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day} ${p.hour}`;
  };
  const hours: CalendarHour[] = [];
  let current: CalendarHour | undefined;
  const first = String(from);
  const last = String(to);
  for (let t = a - MARGIN_S; t <= b + 86400 + MARGIN_S; t += STEP_S) {
    const h = label(t);
    if (current?.h === h) continue;
    if (current) current.e = t;
    const d = h.slice(0, 10);
    current = d >= first && d <= last ? { s: t, e: t, h, d } : undefined;
    if (current) hours.push(current);
  }
  return hours;
}
