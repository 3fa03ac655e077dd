/**
 * The store contract for issue 22's reports, on every engine (SQLite in memory and a real PostgreSQL;
 * `STORE_ENGINES` picks): `Store.report` over a small fixture of three days, three agents and two channels, each
 * figure computed by hand below. The definitions are docs/reports.md's.
 */

import assert from "node:assert/strict";
import { hourCalendar } from "../../src/reports/calendar.ts";
import { shapeReport } from "../../src/reports/reports.ts";
import type { Message } from "../../src/core/message.ts";
import { type StoreCase, storeTests } from "./store_fixtures.ts";

/** Epoch seconds of a local time in Asia/Shanghai (UTC+8) on 2026-03-`day`. */
const at = (day: number, hh: number, mm: number, ss = 0) => Date.UTC(2026, 2, day, hh - 8, mm, ss) / 1000;
/** Epoch seconds of a UTC time on 2026-03-`day`. */
const utc = (day: number, hh: number, mm: number) => Date.UTC(2026, 2, day, hh, mm) / 1000;

const HP = { channel: "http_push", account: "" } as const;

async function userSays(c: StoreCase, user: string, t: number, agent: string, fields: Partial<Message> = {}) {
  const out = await c.accept(user, agent === "" ? {} : { requested: agent }, { sendTime: t, ...fields });
  assert.equal(out.status, "stored");
  return out.contact.id;
}

async function agentSays(c: StoreCase, contact: string, agent: string, t: number, fields: Partial<Message> = {}) {
  await c.store.saveOutbound(c.reply(contact, agent, { sendTime: t, ...fields }), "sent");
}

async function line(c: StoreCase, contact: string, agent: string, t: number, action: string, fields = {}) {
  const extra = { action, by: agent, from_agent_id: "", to_agent_id: "", note: "" };
  await c.store.saveOutbound(
    c.reply(contact, agent, { sendTime: t, type: "system", content: `${agent} ${action}`, extra, ...fields }),
    "sent",
  );
}

/**
 * The fixture (local times are Asia/Shanghai, UTC+8; days D1..D3 = 2026-03-01..03):
 * - u1 (wx): D1 09:00:00, 09:00:30 in → a1 09:02 (first response 120 s, response 120 s); in 09:05 → a1 09:06
 *   (response 60 s); resolved by a1 09:10 (resolution 600 s). D2 10:00 in (a new conversation) → a2 10:10 (first
 *   response 600 s, response 600 s). D4 01:00 in: outside the range.
 * - u2 (http_push): 2026-03-01 23:30 UTC in, nobody online (waits) — that is D2 07:30 local, so D2's; taken by a2 at
 *   23:40 UTC (queue wait 600 s); a2 23:45 UTC (first response 900 s, response 900 s); resolved by a2 00:00 UTC
 *   (resolution 1800 s).
 * - u3 (wx): D3 12:00 in; an event 12:01 (not a message); resolved by a1 12:30 unanswered (resolution 1800 s).
 * - u4 (wx): D3 14:00 and 14:20 in while waiting; taken by a1 14:25 (queue wait 1500 s); a1 14:30 (first response
 *   1800 s, response 1800 s); put back in the queue by a1 14:40; taken by a3 15:00 (queue wait 1200 s).
 * - u5 (http_push): 2026-02-28 23:59 local in (before the range) → a1 D1 00:01 (response 120 s, in the range; its
 *   conversation started before the range: no first response, not new); resolved by a1 D1 00:30 (resolution 1860 s:
 *   counted, the resolve is in the range).
 */
async function fixture(c: StoreCase): Promise<void> {
  const u1 = await userSays(c, "u1", at(1, 9, 0), "a1");
  await userSays(c, "u1", at(1, 9, 0, 30), "a1");
  await agentSays(c, u1, "a1", at(1, 9, 2));
  await userSays(c, "u1", at(1, 9, 5), "a1");
  await agentSays(c, u1, "a1", at(1, 9, 6));
  await line(c, u1, "a1", at(1, 9, 10), "resolved");
  await userSays(c, "u1", at(2, 10, 0), "a1");
  await agentSays(c, u1, "a2", at(2, 10, 10));
  await userSays(c, "u1", at(4, 1, 0), "a1");

  const u2 = await userSays(c, "u2", utc(1, 23, 30), "", HP);
  await line(c, u2, "a2", utc(1, 23, 40), "taken", HP);
  await agentSays(c, u2, "a2", utc(1, 23, 45), HP);
  await line(c, u2, "a2", utc(2, 0, 0), "resolved", HP);

  const u3 = await userSays(c, "u3", at(3, 12, 0), "a1");
  await userSays(c, "u3", at(3, 12, 1), "a1", { type: "event", content: "", extra: { Event: "VIEW" } });
  await line(c, u3, "a1", at(3, 12, 30), "resolved");

  const u4 = await userSays(c, "u4", at(3, 14, 0), "");
  await userSays(c, "u4", at(3, 14, 20), "");
  await line(c, u4, "a1", at(3, 14, 25), "taken");
  await agentSays(c, u4, "a1", at(3, 14, 30));
  await line(c, u4, "a1", at(3, 14, 40), "queued");
  await line(c, u4, "a3", at(3, 15, 0), "taken");

  const u5 = await userSays(c, "u5", at(0, 23, 59), "a1", HP);
  await agentSays(c, u5, "a1", at(1, 0, 1), HP);
  await line(c, u5, "a1", at(1, 0, 30), "resolved", HP);
}

async function report(c: StoreCase, from: string, to: string, tz = "Asia/Shanghai") {
  const hours = hourCalendar(from, to, tz);
  return shapeReport(await c.store.report({ hours }), { from, to, tz, hours: hours.map((h) => h.h) });
}

const d = (count: number, median_s: number | null, p90_s: number | null) => ({ count, median_s, p90_s });

storeTests("store contract: reports", {
  "reports": {
    "messages per hour and per day by channel, in the time zone's days": async (c) => {
      await fixture(c);
      const r = await report(c, "2026-03-01", "2026-03-03");
      assert.equal(r.hours.length, 72);
      assert.deepEqual(r.days, ["2026-03-01", "2026-03-02", "2026-03-03"]);
      assert.deepEqual(r.channels, ["http_push", "wx_official_account"]);
      const wx = "wx_official_account";
      // Events and workflow lines are not messages; u1's D4 message and u5's first are outside the range.
      assert.deepEqual(r.messages.daily, [
        { key: "2026-03-01", channel: "http_push", inbound: 0, outbound: 1 },
        { key: "2026-03-01", channel: wx, inbound: 3, outbound: 2 },
        // u2's message of 23:30 UTC on 03-01 is 07:30 on 03-02 in Shanghai.
        { key: "2026-03-02", channel: "http_push", inbound: 1, outbound: 1 },
        { key: "2026-03-02", channel: wx, inbound: 1, outbound: 1 },
        { key: "2026-03-03", channel: wx, inbound: 3, outbound: 1 },
      ]);
      assert.deepEqual(r.messages.hourly, [
        { key: "2026-03-01 00", channel: "http_push", inbound: 0, outbound: 1 },
        { key: "2026-03-01 09", channel: wx, inbound: 3, outbound: 2 },
        { key: "2026-03-02 07", channel: "http_push", inbound: 1, outbound: 1 },
        { key: "2026-03-02 10", channel: wx, inbound: 1, outbound: 1 },
        { key: "2026-03-03 12", channel: wx, inbound: 1, outbound: 0 },
        { key: "2026-03-03 14", channel: wx, inbound: 2, outbound: 1 },
      ]);
    },

    "the same messages in UTC fall on other days": async (c) => {
      await fixture(c);
      const r = await report(c, "2026-03-01", "2026-03-01", "UTC");
      // In UTC, 03-01 holds u1's D1 morning (01:00–01:10 UTC), u2's 23:30/23:45, and u5's reply (02-28 16:01 UTC:
      // not in it); u1's D2 10:00 local is 02:00 UTC on 03-02.
      assert.deepEqual(r.messages.daily, [
        { key: "2026-03-01", channel: "http_push", inbound: 1, outbound: 1 },
        { key: "2026-03-01", channel: "wx_official_account", inbound: 3, outbound: 2 },
      ]);
      assert.deepEqual(r.conversations.daily, [
        { day: "2026-03-01", channel: "http_push", new: 1 },
        { day: "2026-03-01", channel: "wx_official_account", new: 1 },
      ]);
    },

    "conversations, first responses, resolutions, responses and queue waits": async (c) => {
      await fixture(c);
      const r = await report(c, "2026-03-01", "2026-03-03");
      assert.deepEqual(r.conversations.daily, [
        { day: "2026-03-01", channel: "wx_official_account", new: 1 },
        { day: "2026-03-02", channel: "http_push", new: 1 },
        { day: "2026-03-02", channel: "wx_official_account", new: 1 },
        { day: "2026-03-03", channel: "wx_official_account", new: 2 },
      ]);
      // First responses [120, 600, 900, 1800]: the median is the 2nd (nearest rank ⌈0.5·4⌉), p90 the 4th (⌈3.6⌉).
      assert.deepEqual(r.conversations.first_response, d(4, 600, 1800));
      assert.equal(r.conversations.unanswered, 1, "u3's");
      // Resolutions [600, 1800, 1800, 1860]: the 2nd and the 4th.
      assert.deepEqual(r.conversations.resolution, d(4, 1800, 1860));
      // Responses [60, 120, 120, 600, 900, 1800]: 3rd and 6th.
      assert.deepEqual(r.conversations.response, d(6, 120, 1800));
      // Queue waits [600, 1200, 1500].
      assert.deepEqual(r.queue.wait, d(3, 1200, 1500));
      assert.deepEqual(r.agents, [
        // a1: replies u1 ×2, u4, u5; responses [60, 120, 120, 1800]; first responses [120, 1800]; resolved u1 (600),
        // u3 (1800), u5 (1860).
        {
          agent: "a1",
          replies: 4,
          response: d(4, 120, 1800),
          first_response: d(2, 120, 1800),
          resolution: d(3, 1800, 1860),
        },
        {
          agent: "a2",
          replies: 2,
          response: d(2, 600, 900),
          first_response: d(2, 600, 900),
          resolution: d(1, 1800, 1800),
        },
      ]);
    },

    // The days kept between reports (src/store/report_days.ts): each case asks once, changes the rows, asks again.
    "a late message in a day already reported is counted, in each time zone's days": async (c) => {
      await fixture(c);
      const before = await report(c, "2026-03-01", "2026-03-03");
      const beforeUtc = await report(c, "2026-03-01", "2026-03-03", "UTC");
      assert.deepEqual(await report(c, "2026-03-01", "2026-03-03"), before, "the same again");
      assert.equal(before.conversations.unanswered, 1);
      // u6's message of D2 12:00 local (04:00 UTC on 03-02) comes in now, after both reports.
      await userSays(c, "u6", at(2, 12, 0), "a1");
      const after = await report(c, "2026-03-01", "2026-03-03");
      assert.deepEqual(after.conversations.daily, [
        { day: "2026-03-01", channel: "wx_official_account", new: 1 },
        { day: "2026-03-02", channel: "http_push", new: 1 },
        { day: "2026-03-02", channel: "wx_official_account", new: 2 },
        { day: "2026-03-03", channel: "wx_official_account", new: 2 },
      ]);
      assert.equal(after.conversations.unanswered, 2);
      assert.deepEqual(after.messages.daily.find((m) => m.key === "2026-03-02" && m.channel !== "http_push"), {
        key: "2026-03-02",
        channel: "wx_official_account",
        inbound: 2,
        outbound: 1,
      });
      const afterUtc = await report(c, "2026-03-01", "2026-03-03", "UTC");
      assert.deepEqual(
        afterUtc.conversations.daily.filter((d) => d.day === "2026-03-02"),
        [{ day: "2026-03-02", channel: "wx_official_account", new: 2 }],
        "u1's D2 10:00 local and u6's, both on 03-02 in UTC",
      );
      assert.equal(afterUtc.conversations.unanswered, beforeUtc.conversations.unanswered + 1);
    },

    "a conversation of a day already reported answered days later": async (c) => {
      await fixture(c);
      const u6 = await userSays(c, "u6", at(2, 12, 0), "a1");
      const before = await report(c, "2026-03-01", "2026-03-03");
      assert.equal(before.conversations.unanswered, 2, "u3's and u6's");
      assert.deepEqual(before.conversations.first_response, d(4, 600, 1800));
      // Answered on D4 (outside the range): u6's D2 conversation has its first response, 45 h after it began.
      await agentSays(c, u6, "a2", at(4, 9, 0));
      const after = await report(c, "2026-03-01", "2026-03-03");
      assert.equal(after.conversations.unanswered, 1);
      // [120, 600, 900, 1800, 162000]: the 3rd and the 5th.
      assert.deepEqual(after.conversations.first_response, d(5, 900, 162000));
      assert.deepEqual(after.agents.find((a) => a.agent === "a2")?.first_response, d(3, 900, 162000));
      assert.equal(after.agents.find((a) => a.agent === "a2")?.replies, 2, "the reply is outside the range");
    },

    "a day already reported loses what retention swept": async (c) => {
      await fixture(c);
      const before = await report(c, "2026-03-01", "2026-03-03");
      assert.deepEqual(before.conversations.resolution, d(4, 1800, 1860));
      // Every reply and workflow line is sent and old; the users' messages are unread, so kept.
      c.clock.ms += 3_600_000;
      assert.ok(await c.store.sweep(c.clock.ms - 1) > 0);
      const after = await report(c, "2026-03-01", "2026-03-03");
      assert.deepEqual(after.conversations.resolution, d(0, null, null));
      assert.deepEqual(after.conversations.first_response, d(0, null, null));
      assert.deepEqual(after.agents, []);
      // With no resolved line left, u1's D2 message continues its D1 conversation.
      assert.deepEqual(after.conversations.daily, [
        { day: "2026-03-01", channel: "wx_official_account", new: 1 },
        { day: "2026-03-02", channel: "http_push", new: 1 },
        { day: "2026-03-03", channel: "wx_official_account", new: 2 },
      ]);
      assert.equal(after.conversations.unanswered, 4);
      assert.ok(after.messages.daily.every((m) => m.outbound === 0));
    },

    "a range with nothing in it": async (c) => {
      await fixture(c);
      const r = await report(c, "2026-04-01", "2026-04-02");
      assert.equal(r.hours.length, 48);
      assert.deepEqual(r.messages, { hourly: [], daily: [] });
      assert.deepEqual(r.conversations.first_response, d(0, null, null));
      assert.deepEqual(r.queue.wait, d(0, null, null));
      assert.deepEqual(r.agents, []);
    },
  },
});
