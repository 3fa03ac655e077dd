/**
 * The rules behind the store's decisions (src/store/decisions.ts), the same for every engine: who owns a user's
 * message, which id a new contact gets, whether a reply window allows one more reply. What the old in-memory Routing
 * decided (tests/hub/routing_test.ts before issue 18) is decided here now, by pure functions.
 */

import assert from "node:assert/strict";
import {
  CLOSES_WINDOWS,
  contactIds,
  decideOwner,
  decideWindow,
  opensWindow,
  pickFewest,
  windowType,
} from "../../src/store/decisions.ts";
import type { ContactStatus, WindowRule } from "../../src/store/store.ts";

// The first id of `contactIds` no contact has, as an engine allocates it (and then it is taken).
function allocate(taken: Set<string>, channel: string, account: string, user: string): string {
  for (const id of contactIds(user, channel, account)) {
    if (!taken.has(id)) {
      taken.add(id);
      return id;
    }
  }
  throw new Error("unreachable: contactIds never ends");
}

Deno.test("decisions: contact ids are the user id, then user@account (user@channel), then numbered", () => {
  const taken = new Set<string>();
  assert.equal(allocate(taken, "wx_official_account", "wx1", "o1"), "o1");
  assert.equal(allocate(taken, "wx_official_account", "wx2", "o1"), "o1@wx2");
  assert.equal(allocate(taken, "http_push", "", "o1"), "o1@http_push", "no account: qualified by the channel");
  // Someone whose own id is a qualified one: the next clash is numbered.
  assert.equal(allocate(taken, "test", "", "o1@wx2"), "o1@wx2@test");
  assert.equal(allocate(taken, "x", "wx2", "o1"), "o1@wx2#2");
  assert.equal(allocate(taken, "y", "wx2", "o1"), "o1@wx2#3");
  assert.equal(taken.size, 6);
  // The order of candidates, lazily: the generator never ends.
  const ids = contactIds("u", "ch", "acct");
  assert.deepEqual([0, 1, 2, 3].map(() => ids.next().value), ["u", "u@acct", "u@acct#2", "u@acct#3"]);
});

Deno.test("decisions: pickFewest takes the online agent with the fewest open contacts, ties to the earlier", () => {
  const open = new Map([["a", 2], ["b", 1], ["c", 1]]);
  assert.equal(pickFewest(["a", "b", "c"], open), "b");
  assert.equal(pickFewest(["c", "b", "a"], open), "c", "a tie goes to the earlier in `online`");
  assert.equal(pickFewest(["a", "d"], open), "d", "an agent with no contacts counts 0");
  assert.equal(pickFewest(["a"], open), "a");
  assert.equal(pickFewest([], open), "", "nobody online: nobody");
});

Deno.test("decisions: the owner is the requested agent, then the owner, then the fewest; nobody online waits", () => {
  const away = (...agents: string[]) => ({ has: (a: string) => agents.includes(a) });
  const c = (agent: string, status: ContactStatus = "open") => ({ agent, status });
  let asked = 0;
  const fewest = (who: string) => () => (asked++, who);
  const online = ["a", "b"];

  // A new user: the requested agent, else the fewest.
  assert.equal(decideOwner(undefined, { requested: "z", online, away: away() }, fewest("b")), "z");
  assert.equal(decideOwner(undefined, { requested: "", online, away: away() }, fewest("b")), "b");
  assert.equal(decideOwner(undefined, { online: [], away: away() }, fewest("")), "", "nobody online: unassigned");
  // The owner keeps the contact (sticky), but a channel may ask for another agent.
  asked = 0;
  assert.equal(decideOwner(c("a"), { online, away: away() }, fewest("b")), "a");
  assert.equal(decideOwner(c("a", "resolved"), { online, away: away() }, fewest("b")), "a");
  assert.equal(asked, 0, "the fewest is not even counted for a sticky user");
  assert.equal(decideOwner(c("a"), { requested: "b", online, away: away() }, fewest("a")), "b");
  // An unassigned user goes to the fewest; one put back in the queue stays there.
  assert.equal(decideOwner(c(""), { online, away: away() }, fewest("b")), "b");
  assert.equal(decideOwner(c("", "queued"), { online, away: away() }, fewest("b")), "");
  assert.equal(decideOwner(c("", "queued"), { requested: "a", online, away: away() }, fewest("b")), "a");
  // The owner is away (past the grace period): someone online takes over; nobody online, the user waits for them.
  assert.equal(decideOwner(c("a"), { online: ["b"], away: away("a") }, fewest("b")), "b");
  assert.equal(decideOwner(c("a"), { online: [], away: away("a") }, fewest("")), "a", "nobody to take over");
});

Deno.test("decisions: window types name events by their Event; `*` opens on any type that is not an event", () => {
  assert.equal(windowType("text", undefined), "text");
  assert.equal(windowType("image", { Event: "ignored" }), "image");
  assert.equal(windowType("event", { Event: "subscribe" }), "event:subscribe");
  assert.equal(windowType("event", null), "event:");
  assert.equal(windowType("event", { Event: "unsubscribe" }), CLOSES_WINDOWS);

  assert.ok(opensWindow(["*"], "text"));
  assert.ok(opensWindow(["*"], "voice"));
  assert.ok(!opensWindow(["*"], "event:subscribe"), "`*` is not an event");
  assert.ok(opensWindow(["event:subscribe", "event:CLICK"], "event:CLICK"));
  assert.ok(!opensWindow(["event:subscribe"], "event:unsubscribe"));
  assert.ok(!opensWindow([], "text"));
});

Deno.test("decisions: a reply goes in the first open window with replies left, else the refusal says why", () => {
  const H = 3_600_000;
  // WeChat's: 5 replies for 48 h after a message, 3 for a minute after an action.
  const rules: WindowRule[] = [
    { name: "message", opens: ["*"], ms: 48 * H, quota: 5 },
    { name: "event", opens: ["event:subscribe"], ms: 60_000, quota: 3 },
  ];
  const now = 100 * H;
  const never = { openedAt: -Infinity, used: 0 };
  // (The store asks only with rules: no rules means no limit, and it does not ask.)
  assert.deepEqual(decideWindow([], [], now), { refused: true, windows: [] });
  assert.equal(decideWindow(rules, [{ openedAt: now - H, used: 0 }, never], now), 0);
  assert.equal(decideWindow(rules, [{ openedAt: now - H, used: 4 }, never], now), 0, "the fifth still goes");
  // Message window used up, an action opened the short one.
  assert.equal(decideWindow(rules, [{ openedAt: now - H, used: 5 }, { openedAt: now - 1000, used: 0 }], now), 1);
  // Both used up.
  const full = decideWindow(rules, [{ openedAt: now - H, used: 5 }, { openedAt: now - 1000, used: 3 }], now);
  assert.deepEqual(full, {
    refused: true,
    windows: [
      { name: "message", openedAt: now - H, used: 5, quota: 5, ms: 48 * H },
      { name: "event", openedAt: now - 1000, used: 3, quota: 3, ms: 60_000 },
    ],
  });
  // Closed by time: exactly 48 h after is closed, a moment before is open.
  assert.equal(typeof decideWindow(rules, [{ openedAt: now - 48 * H, used: 0 }, never], now), "object");
  assert.equal(decideWindow(rules, [{ openedAt: now - 48 * H + 1, used: 0 }, never], now), 0);
  // Never opened.
  const none = decideWindow(rules, [never, never], now);
  assert.ok(typeof none === "object" && none.refused);
  assert.deepEqual(none.windows.map((w) => [w.name, w.openedAt, w.used]), [
    ["message", -Infinity, 0],
    ["event", -Infinity, 0],
  ]);
});
