import assert from "node:assert/strict";
import { KefuError } from "../../../src/core/errors.ts";
import { interactionOf, ReplyWindows } from "../../../src/channels/wx_official/reply_window.ts";

const H = 3_600_000;

function clock(start = 1_700_000_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

function refusal(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KefuError);
    assert.equal(e.kind, "reply_window_closed");
    assert.equal(e.status, 403);
    return e.message;
  }
  assert.fail("expected a refusal");
}

Deno.test("windows: 5 replies within 48 hours of the user's message; a new message restores the quota", () => {
  const c = clock();
  const w = new ReplyWindows({ now: c.now });
  assert.match(refusal(() => w.check("acc", "u")), /has not written/);
  w.record("acc", "u", "message");
  for (let i = 0; i < 5; i++) {
    w.check("acc", "u");
    w.sent("acc", "u");
  }
  assert.match(refusal(() => w.check("acc", "u")), /5 replies/);
  w.record("acc", "u", "message");
  w.check("acc", "u");
  c.t += 48 * H - 1;
  w.check("acc", "u");
  c.t += 1;
  assert.match(refusal(() => w.check("acc", "u")), /48 h ago/);
  // Windows are per account.
  assert.match(refusal(() => w.check("other", "u")), /has not written/);
});

Deno.test("windows: 3 replies within a minute of a follow, click or scan, spent before the 48-hour quota", () => {
  const c = clock();
  const w = new ReplyWindows({ now: c.now });
  w.record("acc", "u", "follow");
  for (let i = 0; i < 3; i++) {
    w.check("acc", "u");
    w.sent("acc", "u");
  }
  assert.match(refusal(() => w.check("acc", "u")), /3 replies/);
  w.record("acc", "u", "click");
  c.t += 60_000;
  assert.match(refusal(() => w.check("acc", "u")), /more than a minute ago/);
  // A message within an event window: the event quota goes first, then the message's 5.
  w.record("acc", "v", "message");
  w.record("acc", "v", "scan");
  for (let i = 0; i < 8; i++) {
    w.check("acc", "v");
    w.sent("acc", "v");
  }
  assert.match(refusal(() => w.check("acc", "v")), /replies/);
  w.record("acc", "v", "unfollow");
  assert.match(refusal(() => w.check("acc", "v")), /has not written/);
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
  // A minute later it closed: nothing left, and check() refuses as the view says.
  now += 60_000;
  assert.equal(w.view("wx1", "o1").message_left, 0);
  assert.throws(() => w.check("wx1", "o1"), (e) => e instanceof KefuError && e.kind === "reply_window_closed");

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
