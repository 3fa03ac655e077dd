/**
 * The reports' days combined in the process (src/store/report_days.ts): a range's figures from its days' histograms
 * are those of all its values at once (nearest rank), whatever the days the values fall on.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { hourCalendar } from "../../src/reports/calendar.ts";
import { combineDays, reportDays, toDayFacts } from "../../src/store/report_days.ts";
import type { DayFactRow } from "../../src/store/reports_sql.ts";

/** The nearest-rank median and p90 of `values`, as docs/reports.md defines them. */
function nearestRank(values: number[]): { n: number; median: number | null; p90: number | null } {
  const xs = [...values].sort((a, b) => a - b);
  const n = xs.length;
  if (n === 0) return { n, median: null, p90: null };
  return { n, median: xs[Math.ceil(n / 2) - 1], p90: xs[Math.ceil(0.9 * n) - 1] };
}

Deno.test("a range's percentiles from its days' histograms are those of all its values", () => {
  const days = reportDays(hourCalendar("2026-03-01", "2026-03-05"));
  assert.equal(days.length, 5);
  const value = fc.record({ day: fc.integer({ min: 0, max: 4 }), v: fc.integer({ min: 0, max: 40 }) });
  fc.assert(
    fc.property(fc.array(value, { minLength: 1, maxLength: 200 }), (values) => {
      const rows: DayFactRow[] = values.map(({ day, v }) => ({
        d: days[day].d,
        metric: "response",
        k: "",
        k2: "",
        v,
        c: 1,
      }));
      const figures = combineDays(toDayFacts(days, rows, [])).figures;
      assert.equal(figures.length, 1);
      const { n, median, p90 } = figures[0];
      assert.deepEqual({ n, median, p90 }, nearestRank(values.map((x) => x.v)));
    }),
    { numRuns: 200 },
  );
});

Deno.test("a day's counts, agents' durations and messages per hour add up over the range; a zone's day is its own", () => {
  const shanghai = reportDays(hourCalendar("2026-03-01", "2026-03-02"));
  const utc = reportDays(hourCalendar("2026-03-01", "2026-03-02", "UTC"));
  assert.notEqual(shanghai[0].key, utc[0].key, "the same date, other hours");
  const rows: DayFactRow[] = [
    { d: "2026-03-01", metric: "agent_replies", k: "a1", k2: "", v: null, c: 2 },
    { d: "2026-03-02", metric: "agent_replies", k: "a1", k2: "", v: null, c: 3 },
    { d: "2026-03-02", metric: "pending", k: "u1", k2: "", v: null, c: 1 },
    { d: "2026-03-01", metric: "agent_response", k: "a1", k2: "", v: 30, c: 2 },
    { d: "2026-03-02", metric: "agent_response", k: "a2", k2: "", v: 90, c: 1 },
  ];
  const hour = (key: string, n: number) => ({
    bucket: "hour" as const,
    key,
    channel: "wxbot",
    direction: "in" as const,
    n,
  });
  const facts = toDayFacts(shanghai, rows, [hour("2026-03-01 09", 4), hour("2026-03-01 10", 1)]);
  assert.deepEqual([...facts[1].pending], ["u1"]);
  const r = combineDays(facts);
  assert.deepEqual(r.figures, [
    { metric: "agent_replies", key: "a1", key2: "", n: 5, median: null, p90: null },
    { metric: "agent_response", key: "a1", key2: "", n: 2, median: 30, p90: 30 },
    { metric: "agent_response", key: "a2", key2: "", n: 1, median: 90, p90: 90 },
    // Everyone's: the agents' together ([30, 30, 90]).
    { metric: "response", key: "", key2: "", n: 3, median: 30, p90: 90 },
  ]);
  assert.deepEqual(r.messages.filter((m) => m.bucket === "day"), [
    { bucket: "day", key: "2026-03-01", channel: "wxbot", direction: "in", n: 5 },
  ]);
});
