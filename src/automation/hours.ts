/**
 * Business hours of one channel account: weekly opening ranges in an IANA time zone, with closed dates. All the
 * time-zone work is Temporal's (`Instant.toZonedDateTimeISO`); kefu only compares wall-clock times of the zone.
 *
 * A closed period is named by when it began (the local date and time the last opening range ended, e.g.
 * `2026-12-04T18:00`), so that "once per user per closed period" is a key the store can keep.
 *
 * @module
 */

/** Days of the week as CONFIG_FILE names them, Monday first (Temporal's `dayOfWeek` 1–7). */
export const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
/** A day of the week. */
export type Day = typeof DAYS[number];

/** One opening range on some days: `from` inclusive, `to` exclusive, minutes since local midnight. */
export interface OpenRange {
  days: readonly Day[];
  /** Minutes since midnight, 0–1439. */
  from: number;
  /** Minutes since midnight, 1–1440 (24:00 closes at the end of the day); after `from`. */
  to: number;
}

/** What {@link BusinessHours} is built from (as parsed from CONFIG_FILE). */
export interface HoursSpec {
  /** IANA name; checked by the parser with Temporal. */
  timeZone: string;
  ranges: readonly OpenRange[];
  /** Local dates (`YYYY-MM-DD`) closed all day (holidays). */
  closedDates: readonly string[];
}

// How far back a closed period's beginning is looked for: a year of holidays is the longest kefu assumes.
const LOOK_BACK_DAYS = 400;

/** Opening hours; see the module documentation. */
export class BusinessHours {
  readonly #spec: HoursSpec;
  readonly #closed: ReadonlySet<string>;

  constructor(spec: HoursSpec) {
    this.#spec = spec;
    this.#closed = new Set(spec.closedDates);
  }

  /** The time zone the hours are in. */
  get timeZone(): string {
    return this.#spec.timeZone;
  }

  /** Whether kefu's team is open at `ms` (epoch ms). */
  isOpen(ms: number): boolean {
    const z = this.#zoned(ms);
    const minute = z.hour * 60 + z.minute;
    return this.#rangesOf(z.toPlainDate()).some((r) => r.from <= minute && minute < r.to);
  }

  /**
   * The closed period `ms` falls in, named by when it began (`YYYY-MM-DDTHH:MM`, local; `closed` when no opening
   * range ended in the last 400 days); undefined while open.
   */
  closedPeriod(ms: number): string | undefined {
    if (this.isOpen(ms)) return undefined;
    const z = this.#zoned(ms);
    const minute = z.hour * 60 + z.minute;
    let date = z.toPlainDate();
    for (let i = 0; i < LOOK_BACK_DAYS; i++, date = date.subtract({ days: 1 })) {
      // Today only the ranges that have ended count; earlier days, the last of the day.
      const ends = this.#rangesOf(date).map((r) => r.to).filter((to) => i > 0 || to <= minute);
      if (ends.length > 0) return `${date.toString()}T${hhmm(Math.max(...ends))}`;
    }
    return "closed";
  }

  #zoned(ms: number): Temporal.ZonedDateTime {
    return Temporal.Instant.fromEpochMilliseconds(ms).toZonedDateTimeISO(this.#spec.timeZone);
  }

  #rangesOf(date: Temporal.PlainDate): OpenRange[] {
    if (this.#closed.has(date.toString())) return [];
    const day = DAYS[date.dayOfWeek - 1];
    return this.#spec.ranges.filter((r) => r.days.includes(day));
  }
}

/** Minutes since midnight as `HH:MM`. */
export function hhmm(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
}
