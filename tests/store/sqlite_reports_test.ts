/**
 * The reports on a SQLite file (src/store/sqlite_reports.ts): computed on the store's background connection, whose
 * days kept must see the rows the store's own connection writes after them.
 */

import assert from "node:assert/strict";
import { hourCalendar } from "../../src/reports/calendar.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import type { Message } from "../../src/core/message.ts";

/** Epoch seconds of a local time in Asia/Shanghai (UTC+8) on 2026-03-`day`. */
const at = (day: number, hh: number) => Date.UTC(2026, 2, day, hh - 8) / 1000;

let counter = 0;
function inbound(user: string, sendTime: number): Message {
  return {
    id: `m${++counter}`,
    direction: "in",
    channel: "wx_official_account",
    account: "wx1",
    contact: user,
    agent: "",
    company: "",
    type: "text",
    content: `hello ${counter}`,
    media: "",
    sendTime,
    name: user,
    avatar: "",
  };
}

Deno.test("a report on the background connection counts what the store wrote after the days were kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kefu-sqlite-reports-" });
  // The default checkpoint interval: the store has its background connection (0 would turn it off).
  const store = new SqliteStore({ path: `${dir}/kefu.db` });
  try {
    const accept = async (user: string, t: number) => {
      const out = await store.acceptInbound({ online: [], away: new Set(), message: inbound(user, t) });
      assert.equal(out.status, "stored");
    };
    const newPerDay = async () => {
      const r = await store.report({ hours: hourCalendar("2026-03-01", "2026-03-02") });
      return r.figures.filter((f) => f.metric === "new_conversations").map((f) => [f.key, f.n]);
    };
    await accept("u1", at(1, 10));
    assert.deepEqual(await newPerDay(), [["2026-03-01", 1]]);
    assert.deepEqual(await newPerDay(), [["2026-03-01", 1]], "the same, from the days kept");
    // Late: a message of 03-01 stored now, and one of 03-02.
    await accept("u2", at(1, 11));
    await accept("u3", at(2, 9));
    assert.deepEqual(await newPerDay(), [["2026-03-01", 2], ["2026-03-02", 1]]);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
