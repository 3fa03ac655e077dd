import assert from "node:assert/strict";
import type { Message } from "../../../src/core/message.ts";
import { interactionOf, ReplyWindows, WINDOW_RULES } from "../../../src/channels/wx_official/reply_window.ts";
import { SqliteStore } from "../../../src/store/sqlite_store.ts";

const H = 3_600_000;

function clock(start = 1_700_000_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

// The rules as the store applies them (ReplyService keeps every reply through saveReply with WINDOW_RULES): one
// user's conversation, with the user's messages and events and the agent's replies, on a clock the test moves.
function conversation() {
  const c = clock();
  const store = new SqliteStore({ path: ":memory:", now: c.now });
  let n = 0;
  const base = (type: string, direction: "in" | "out", extra?: Record<string, string>): Message => ({
    id: `m${++n}`,
    direction,
    channel: "wx_official_account",
    account: "acc",
    contact: "u",
    agent: "a",
    company: "",
    type,
    content: type === "text" ? "hi" : "",
    media: "",
    sendTime: Math.floor(c.t / 1000),
    name: "u",
    avatar: "",
    extra,
  });
  return {
    clock: c,
    store,
    /** The user writes, or does something: "follow", "click", "scan", "unfollow" (WeChat's events). */
    async user(what: "message" | "follow" | "click" | "scan" | "unfollow") {
      const event = { follow: "subscribe", click: "CLICK", scan: "SCAN", unfollow: "unsubscribe" }[what as string];
      const m = what === "message" ? base("text", "in") : base("event", "in", { Event: event! });
      await store.acceptInbound({ message: m, requested: "a", online: [], away: new Set() });
    },
    /** One reply: true when kept (allowed), false when the windows refused it. */
    async reply(): Promise<boolean> {
      const kept = await store.saveReply(base("text", "out"), WINDOW_RULES);
      return !("refused" in kept);
    },
    async replies(k: number): Promise<boolean[]> {
      const out = [];
      for (let i = 0; i < k; i++) out.push(await this.reply());
      return out;
    },
    [Symbol.asyncDispose]: () => store.close(),
  };
}

Deno.test("windows: 5 replies within 48 hours of the user's message; a new message restores the quota", async () => {
  await using u = conversation();
  assert.deepEqual(await u.replies(1), [false], "the user has not written");
  await u.user("message");
  assert.deepEqual(await u.replies(6), [true, true, true, true, true, false]);
  await u.user("message");
  assert.deepEqual(await u.replies(1), [true]);
  u.clock.t += 48 * H - 1000;
  assert.deepEqual(await u.replies(1), [true]);
  u.clock.t += 1000;
  assert.deepEqual(await u.replies(1), [false], "48 hours have passed");
});

Deno.test("windows: 3 replies within a minute of a follow, click or scan; an unfollow closes every window", async () => {
  await using u = conversation();
  await u.user("follow");
  assert.deepEqual(await u.replies(4), [true, true, true, false]);
  await u.user("click");
  u.clock.t += 60_000;
  assert.deepEqual(await u.replies(1), [false], "the click was a minute ago");
  // A message, then a scan: the scan's three first, and every reply since the message counts against its five
  // (kefu never spends more than five since a message: WeChat's own count is not told).
  await u.user("message");
  await u.user("scan");
  assert.deepEqual(await u.replies(6), [true, true, true, true, true, false]);
  await u.user("message");
  await u.user("unfollow");
  assert.deepEqual(await u.replies(1), [false], "the user unfollowed");
});

Deno.test("windows: typing needs an exchange within 30 s and lasts 15 s; sweep forgets closed windows", () => {
  const c = clock();
  const w = new ReplyWindows({ now: c.now });
  assert.match(w.typingRefusal("acc", "u"), /30 seconds/);
  w.record("acc", "u", "message");
  assert.equal(w.typingRefusal("acc", "u"), "");
  w.typingShown("acc", "u");
  assert.match(w.typingRefusal("acc", "u"), /already/);
  c.t += 15_000;
  assert.equal(w.typingRefusal("acc", "u"), "");
  c.t += 16_000;
  assert.match(w.typingRefusal("acc", "u"), /30 seconds/);
  w.sent("acc", "u");
  assert.equal(w.typingRefusal("acc", "u"), "");
  w.record("acc", "gone", "message", c.t - 49 * H);
  assert.equal(w.size, 2);
  assert.equal(w.sweep(), 1);
  assert.equal(w.size, 1);
});

Deno.test("windows: which WeChat messages and events open a window", () => {
  assert.equal(interactionOf("text"), "message");
  assert.equal(interactionOf("image"), "message");
  assert.equal(interactionOf("event", "subscribe"), "follow");
  assert.equal(interactionOf("event", "SCAN"), "scan");
  assert.equal(interactionOf("event", "CLICK"), "click");
  assert.equal(interactionOf("event", "unsubscribe"), "unfollow");
  assert.equal(interactionOf("event", "VIEW"), undefined);
  assert.equal(interactionOf("event", "LOCATION"), undefined);
  assert.equal(interactionOf("event", "TEMPLATESENDJOBFINISH"), undefined);
});

Deno.test("windows: the view agents see says until when each window is open and what is left, by the same rules", () => {
  const HOUR = 3_600_000;
  let now = 1_700_000_000_000;
  const w = new ReplyWindows({ now: () => now });
  assert.deepEqual(w.view("wx1", "oUnknown"), { message_until: 0, message_left: 0, event_until: 0, event_left: 0 });

  // The user wrote 47 h 59 min ago: one minute left, all five replies.
  w.record("wx1", "o1", "message", now - 47 * HOUR - 59 * 60_000);
  assert.deepEqual(w.view("wx1", "o1"), {
    message_until: (now + 60_000) / 1000,
    message_left: 5,
    event_until: 0,
    event_left: 0,
  });
  w.sent("wx1", "o1");
  assert.equal(w.view("wx1", "o1").message_left, 4);
  // A minute later it closed: nothing left.
  now += 60_000;
  assert.equal(w.view("wx1", "o1").message_left, 0);

  // A follow: three replies for a minute, spent before the 48-hour quota.
  w.record("wx1", "o2", "follow", now);
  assert.deepEqual(w.view("wx1", "o2"), {
    message_until: 0,
    message_left: 0,
    event_until: now / 1000 + 60,
    event_left: 3,
  });
  w.sent("wx1", "o2");
  assert.equal(w.view("wx1", "o2").event_left, 2);
});
