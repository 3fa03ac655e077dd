/** The reports' calendar: a date range's local hours in a time zone, and a clear 400 for what is wrong. */

import assert from "node:assert/strict";
import { hourCalendar, MAX_REPORT_DAYS } from "../../src/reports/calendar.ts";
import { KefuError } from "../../src/core/errors.ts";

Deno.test("a day in Shanghai is 24 hours from 16:00 UTC the day before", () => {
  const hours = hourCalendar("2026-03-02", "2026-03-02");
  assert.equal(hours.length, 24);
  assert.deepEqual(hours[0], {
    s: Date.UTC(2026, 2, 1, 16) / 1000,
    e: Date.UTC(2026, 2, 1, 17) / 1000,
    h: "2026-03-02 00",
    d: "2026-03-02",
  });
  assert.equal(hours[23].e, Date.UTC(2026, 2, 2, 16) / 1000);
  // Contiguous: each hour ends where the next begins.
  for (let i = 1; i < hours.length; i++) assert.equal(hours[i].s, hours[i - 1].e);
});

Deno.test("a daylight-saving day has 23 hours, a half-hour zone's hours start at :30 UTC", () => {
  const ny = hourCalendar("2026-03-08", "2026-03-08", "America/New_York");
  assert.equal(ny.length, 23);
  assert.equal(ny.at(-1)!.e - ny[0].s, 23 * 3600);
  assert.ok(!ny.some((h) => h.h.endsWith(" 02")), "02:00 does not exist that night");
  const india = hourCalendar("2026-03-02", "2026-03-02", "Asia/Kolkata");
  assert.equal(india.length, 24);
  assert.equal(india[0].s, Date.UTC(2026, 2, 1, 18, 30) / 1000);
});

Deno.test("a bad range or zone is a 400 naming what was wrong", () => {
  const refused = (from: unknown, to: unknown, tz: unknown, text: RegExp) =>
    assert.throws(
      () => hourCalendar(from, to, tz),
      (e) => e instanceof KefuError && e.status === 400 && text.test(e.message),
    );
  refused("2026-3-1", "2026-03-02", "UTC", /^from must be a date YYYY-MM-DD, got "2026-3-1"$/);
  refused("2026-02-30", "2026-03-02", "UTC", /from must be a date/);
  refused("2026-03-01", "03/02/2026", "UTC", /^to must be a date YYYY-MM-DD, got "03\/02\/2026"$/);
  refused("2026-03-01", undefined, "UTC", /^to is required: a date YYYY-MM-DD \(the range's last day\)$/);
  refused("2026-03-02", "2026-03-01", "UTC", /^the range is empty: to "2026-03-01" is before from "2026-03-02"$/);
  refused("2026-01-01", "2026-12-31", "UTC", new RegExp(`is 365 days long; at most ${MAX_REPORT_DAYS} are reported`));
  refused("2026-03-01", "2026-03-02", "Mars/Olympus", /^tz must be an IANA time zone .*got "Mars\/Olympus"$/);
});
