/**
 * The reports' cache of days (issue 22): each local day's facts (`factsSql`: its figures' durations as histograms,
 * its counts, its messages per hour), kept in the process once the day is over, so that a month's report reads the
 * database only for the days it has not seen (today) and combines ~30 small histograms in memory. Figures are exactly
 * those of one statement over the whole range: every fact is anchored on one row of its day, and the percentiles are
 * nearest-rank over the merged histograms.
 *
 * A kept day is dropped when the rows say it may have changed — checked at each report against the rows stored
 * since the cache last looked (`seq` above its watermark): a row whose `send_time` falls in the day (a late
 * message), or a row of a contact the day was waiting on (`pending`: a conversation neither answered nor resolved, a
 * wait not ended); and every day when rows at or below the watermark are gone (retention), seen by the count of
 * messages. Rows are never updated in what the figures read (direction, type, agent, send_time, contact, channel, a
 * workflow line's extra).
 *
 * @module
 */

import type { CalendarHour } from "../reports/calendar.ts";
import type { DayFactRow, MessageCount, ReportData, ReportFigure } from "./reports_sql.ts";

/** One local day of a report's calendar. */
export interface ReportDay {
  d: string;
  s: number;
  e: number;
  hours: CalendarHour[];
  /** The day and its hours' bounds and labels: two zones whose day is cut alike share it. */
  key: string;
}

/** What a day holds: its messages per hour, histograms by `metric\0key`, counts by `metric\0key\0key2`. */
export interface DayFacts {
  day: ReportDay;
  hourly: MessageCount[];
  /** Values and how many times each came, as arrays (a day at 33,000 messages: ~17,000 pairs, ~270 KB). */
  hist: Map<string, { v: Float64Array; c: Float64Array }>;
  counts: Map<string, number>;
  pending: Set<string>;
}

/** The most days kept (a quarter in two zones; ~0.3 MB a day at 33,000 messages); least recently used go first. */
export const MAX_CACHED_DAYS = 200;
/** More new rows than this since the cache last looked: start again rather than read them all into the process. */
export const MAX_NEW_ROWS = 200_000;

/** The report's hours as days, in order. */
export function reportDays(hours: readonly CalendarHour[]): ReportDay[] {
  const days: ReportDay[] = [];
  for (const h of hours) {
    const last = days[days.length - 1];
    if (last?.d === h.d) {
      last.hours.push(h);
      last.e = h.e;
    } else days.push({ d: h.d, s: h.s, e: h.e, hours: [h], key: "" });
  }
  for (const day of days) day.key = `${day.d} ${day.hours.map((h) => `${h.h.slice(11)}@${h.s}-${h.e}`).join(",")}`;
  return days;
}

/** Runs of consecutive days (the days not kept, computed by one statement each). */
export function runsOf(days: ReportDay[], all: ReportDay[]): ReportDay[][] {
  const runs: ReportDay[][] = [];
  let prev = -2;
  for (const day of days) {
    const i = all.indexOf(day);
    if (i === prev + 1) runs[runs.length - 1].push(day);
    else runs.push([day]);
    prev = i;
  }
  return runs;
}

/** The facts of the days of one statement's range, from its rows (`factsSql`, `messagesSql`'s hour rows). */
export function toDayFacts(days: ReportDay[], facts: DayFactRow[], messages: MessageCount[]): DayFacts[] {
  const byDay = new Map<string, DayFacts>();
  const hists = new Map<string, Map<string, Map<number, number>>>();
  for (const day of days) {
    byDay.set(day.d, { day, hourly: [], hist: new Map(), counts: new Map(), pending: new Set() });
    hists.set(day.d, new Map());
  }
  for (const m of messages) {
    if (m.bucket === "hour") byDay.get(m.key.slice(0, 10))?.hourly.push(m);
  }
  for (const r of facts) {
    const f = byDay.get(r.d);
    if (f === undefined) continue;
    if (r.metric === "pending") f.pending.add(r.k);
    else if (r.v === null) f.counts.set(`${r.metric}\0${r.k}\0${r.k2}`, r.c);
    else {
      const day = hists.get(r.d)!;
      // An agent's durations count in the figure over everyone too (`factsSql` answers them per agent only).
      const keys = [`${r.metric}\0${r.k}`];
      if (r.metric.startsWith("agent_")) keys.push(`${r.metric.slice("agent_".length)}\0`);
      for (const key of keys) {
        let h = day.get(key);
        if (h === undefined) day.set(key, h = new Map());
        h.set(r.v, (h.get(r.v) ?? 0) + r.c);
      }
    }
  }
  for (const [d, day] of hists) {
    const f = byDay.get(d)!;
    for (const [key, h] of day) {
      f.hist.set(key, { v: Float64Array.from(h.keys()), c: Float64Array.from(h.values()) });
    }
  }
  return [...byDay.values()];
}

/** The report from its days' facts: messages per hour and day, the figures with nearest-rank percentiles. */
export function combineDays(days: DayFacts[]): ReportData {
  const messages: MessageCount[] = [];
  const daily = new Map<string, MessageCount>();
  const hist = new Map<string, Map<number, number>>();
  const counts = new Map<string, number>();
  for (const f of days) {
    for (const m of f.hourly) {
      messages.push(m);
      const key = `${f.day.d}\0${m.channel}\0${m.direction}`;
      const sum = daily.get(key);
      if (sum) sum.n += m.n;
      else daily.set(key, { bucket: "day", key: f.day.d, channel: m.channel, direction: m.direction, n: m.n });
    }
    for (const [key, h] of f.hist) {
      let all = hist.get(key);
      if (all === undefined) hist.set(key, all = new Map());
      for (let i = 0; i < h.v.length; i++) all.set(h.v[i], (all.get(h.v[i]) ?? 0) + h.c[i]);
    }
    for (const [key, n] of f.counts) counts.set(key, (counts.get(key) ?? 0) + n);
  }
  messages.push(...daily.values());
  const figures: ReportFigure[] = [];
  for (const [key, h] of hist) {
    const [metric, k] = key.split("\0");
    const values = [...h.keys()].sort((a, b) => a - b);
    let n = 0;
    for (const v of values) n += h.get(v)!;
    // Nearest rank: the ⌈n/2⌉-th and ⌈0.9·n⌉-th value.
    const medianRank = Math.floor((n + 1) / 2);
    const p90Rank = Math.floor((9 * n + 9) / 10);
    let median: number | null = null;
    let p90: number | null = null;
    let upto = 0;
    for (const v of values) {
      upto += h.get(v)!;
      if (median === null && upto >= medianRank) median = v;
      if (upto >= p90Rank) {
        p90 = v;
        break;
      }
    }
    figures.push({ metric, key: k, key2: "", n, median, p90 });
  }
  for (const [key, n] of counts) {
    const [metric, k, k2] = key.split("\0");
    figures.push({ metric, key: k, key2: k2, n, median: null, p90: null });
  }
  const cmp = (a: string, b: string) => a < b ? -1 : a > b ? 1 : 0;
  messages.sort((a, b) =>
    cmp(a.bucket, b.bucket) || cmp(a.key, b.key) || cmp(a.channel, b.channel) || cmp(a.direction, b.direction)
  );
  figures.sort((a, b) => cmp(a.metric, b.metric) || cmp(a.key, b.key) || cmp(a.key2, b.key2));
  return { messages, figures };
}

/** A row above the cache's watermark: its `seq`, time and contact. */
export interface NewRow {
  seq: number;
  t: number;
  contact: string;
}

/** The first of the sorted `xs` that is at least `x` (Infinity if none). */
function firstAtLeast(xs: number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo < xs.length ? xs[lo] : Infinity;
}

/**
 * How far below the newest `seq` the watermark stays: on PostgreSQL a transaction may commit a row below the newest
 * one seen (seqs are handed out before commit). The rows above the watermark are read at each report, and those not
 * seen at the last one are new.
 */
export const WATERMARK_LAG = 1_000;

/** What an engine read of the messages for {@link ReportDayCache.refresh}, in the report's snapshot. */
export interface Watermarks {
  /** How many messages there are. */
  total: number;
  /** The rows with a `seq` above {@link ReportDayCache.readFrom} (null: too many to read), and how many they are. */
  above: number;
  rows: NewRow[] | null;
  /** The next watermark ({@link ReportDayCache.nextSeq}), and how many messages have a `seq` above it. */
  next: number;
  aboveNext: number;
}

/** The days kept by one store (one per SQLite connection or PostgreSQL pool), with the watermark they are true at. */
export class ReportDayCache {
  #days = new Map<string, DayFacts>();
  /** The `seq` the kept days are true at, how many messages had a `seq` at or below it, and those above it seen. */
  #seq = 0;
  #count = 0;
  #seen = new Set<number>();
  /** Counts the refreshes: a report keeps the days it computed only if no other report refreshed the cache since. */
  #generation = 0;

  /** How many days are kept. */
  get size(): number {
    return this.#days.size;
  }

  /** The next watermark for a store whose newest `seq` is `top`. */
  nextSeq(top: number): number {
    return Math.max(this.#seq, top - WATERMARK_LAG);
  }

  /** The `seq` above which the engine reads the rows for {@link refresh}. */
  readFrom(next: number): number {
    return this.#days.size > 0 ? this.#seq : next;
  }

  /**
   * Brings the cache up to `w.next` and returns its generation (for {@link keep}): drops the days the rows not seen before may have changed (a row in the day, or
   * of a contact the day waits on), or every day when rows are gone (retention) or came in below the watermark, or
   * when the new rows were too many to read.
   */
  refresh(w: Watermarks): number {
    if (this.#days.size > 0) {
      const present = new Set(w.rows?.map((r) => r.seq));
      if (w.rows === null || w.total - w.above !== this.#count || [...this.#seen].some((s) => !present.has(s))) {
        this.#days.clear();
      } else {
        const fresh = w.rows.filter((r) => !this.#seen.has(r.seq));
        const contacts = new Set(fresh.map((r) => r.contact));
        const times = fresh.map((r) => r.t).sort((a, b) => a - b);
        for (const [key, f] of this.#days) {
          const touched = firstAtLeast(times, f.day.s) < f.day.e || [...f.pending].some((c) => contacts.has(c));
          if (touched) this.#days.delete(key);
        }
      }
    }
    this.#seq = w.next;
    this.#count = w.total - w.aboveNext;
    this.#seen = new Set((w.rows ?? []).filter((r) => r.seq > w.next).map((r) => r.seq));
    return ++this.#generation;
  }

  /** A kept day, or undefined. */
  get(day: ReportDay): DayFacts | undefined {
    const f = this.#days.get(day.key);
    if (f !== undefined) {
      // Most recently used last.
      this.#days.delete(day.key);
      this.#days.set(day.key, f);
    }
    return f;
  }

  /**
   * Keeps a day that is over at `nowS` (a day still going changes with every message), computed after the refresh
   * that returned `generation`: if another report (PostgreSQL: two at once) refreshed the cache since, the rows it
   * read may be newer than the day's snapshot, and the day is not kept.
   */
  keep(f: DayFacts, nowS: number, generation: number): void {
    if (f.day.e > nowS || generation !== this.#generation) return;
    this.#days.set(f.day.key, f);
    for (const key of this.#days.keys()) {
      if (this.#days.size <= MAX_CACHED_DAYS) break;
      this.#days.delete(key);
    }
  }
}
