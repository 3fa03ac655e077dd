// Times as agents read them, in this browser's time zone: clocks, day separators (今天/昨天/date), the contact
// list's relative times (刚刚, 5分钟前, 昨天…) and what is left of a reply window.

import { t } from "./i18n.js";
import { el } from "./dom.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

export function pad(n) {
  return String(n).padStart(2, "0");
}

/** HH:MM:SS */
export function clock(d) {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** HH:MM */
export function hoursMinutes(d) {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** YYYY-MM-DD */
export function dayOf(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function yesterdayOf(now) {
  return new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
}

/** A full time: today's clock, else the date and the hour. */
export function formatTime(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0) return "";
  const d = new Date(seconds * 1000);
  if (d.toDateString() === new Date().toDateString()) return clock(d);
  return `${dayOf(d)} ${hoursMinutes(d)}`;
}

/** The day separator's label: today and yesterday by name, an older day by its date and weekday. */
export function dayLabel(seconds, now = new Date()) {
  const d = new Date(seconds * 1000);
  if (dayOf(d) === dayOf(now)) return t("day.today");
  if (dayOf(d) === dayOf(yesterdayOf(now))) return t("day.yesterday");
  return `${dayOf(d)} ${t(`weekday.${d.getDay()}`)}`;
}

/**
 * The page's clock for relative times: one reading, moved on each minute (tickClock), so that a time in the list
 * and the same time in search results read the same whenever each was drawn.
 */
let clockMs = Date.now();

export function tickClock(nowMs = Date.now()) {
  clockMs = nowMs;
}

/** The contact list's time (and the queue's, and search's): 刚刚, N分钟前, today's clock, 昨天, a day, the date. */
export function relativeTime(seconds, nowMs = clockMs) {
  if (!Number.isFinite(seconds) || seconds <= 0) return "";
  const ms = seconds * 1000;
  const ago = nowMs - ms;
  // A time a little ahead (another machine's clock) is "just now", not a date.
  if (ago < MINUTE) return t("time.justNow");
  if (ago < HOUR) return t("time.minutesAgo", { n: Math.floor(ago / MINUTE) });
  const d = new Date(ms);
  const now = new Date(nowMs);
  if (dayOf(d) === dayOf(now)) return hoursMinutes(d);
  if (dayOf(d) === dayOf(yesterdayOf(now))) return t("time.yesterday");
  if (d.getFullYear() === now.getFullYear()) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return dayOf(d);
}

/** A relative time ("5分钟前") as a <time> that ages with the page's clock (refreshTimes). */
export function agoElement(seconds) {
  const node = timeElement(seconds, relativeTime(seconds));
  node.dataset.seconds = String(seconds);
  return node;
}

/** A <time> with the full date as its tooltip. */
export function timeElement(seconds, label) {
  const node = el("time", "", label);
  if (Number.isFinite(seconds) && seconds > 0) {
    const d = new Date(seconds * 1000);
    node.dateTime = d.toISOString();
    node.title = `${dayOf(d)} ${clock(d)}`;
  }
  return node;
}

/** "0:02", "12:05", "1:02:03": a voice note's or a video's length. */
export function formatDuration(seconds) {
  const s = Math.round(seconds);
  const [h, m] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60)];
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** What is left of a window: "47小时59分", "12分", "40秒". Rounded down: never more than WeChat allows. */
export function formatLeft(ms) {
  if (ms < MINUTE) return t("left.seconds", { s: Math.max(0, Math.floor(ms / 1000)) });
  const h = Math.floor(ms / HOUR);
  const m = Math.floor((ms % HOUR) / MINUTE);
  return h > 0 ? t("left.hoursMinutes", { h, m }) : t("left.minutes", { m });
}
