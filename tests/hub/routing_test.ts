import assert from "node:assert/strict";
import type { Message } from "../../src/core/message.ts";
import { Routing, UNASSIGNED } from "../../src/hub/routing.ts";

function presence(online: string[]) {
  return { isOnline: (a: string) => online.includes(a), online: () => online };
}

function from(channel: string, account: string, user: string): Message {
  return {
    id: "1",
    direction: "in",
    channel,
    account,
    contact: user,
    agent: "",
    company: "",
    type: "text",
    content: "x",
    media: "",
    sendTime: 1,
    name: user,
    avatar: "",
  };
}

Deno.test("routing: contact identity is (channel, account, user); a taken id is qualified, never reused", () => {
  const r = new Routing({ presence: presence(["a"]), reassignAfterMs: 30_000 });
  const own = (channel: string, account: string, user: string) =>
    r.own(from(channel, account, user), r.find(channel, account, user), "a");
  assert.equal(own("wx_official_account", "wx1", "o1").id, "o1");
  assert.equal(own("wx_official_account", "wx2", "o1").id, "o1@wx2");
  assert.equal(own("http_push", "", "o1").id, "o1@http_push");
  // Someone whose own id is a qualified one: the next clash is numbered.
  assert.equal(own("test", "", "o1@wx2").id, "o1@wx2@test");
  assert.equal(own("x", "wx2", "o1").id, "o1@wx2#2");
  // The same identity finds the same contact.
  assert.equal(r.find("wx_official_account", "wx2", "o1")?.id, "o1@wx2");
  assert.equal(own("wx_official_account", "wx2", "o1").id, "o1@wx2");
  assert.equal(r.size, 5);
});

Deno.test("routing: assignment asks, then sticks, then picks the fewest; nobody online means unassigned", () => {
  let now = 0;
  const online = ["a", "b"];
  const r = new Routing({ presence: presence(online), reassignAfterMs: 1000, now: () => now });
  assert.deepEqual(r.assign(undefined), { agent: "a", moved: false, previous: "" });
  const c = r.own(from("ch", "", "u1"), undefined, "a");
  assert.equal(r.assign(c).agent, "a", "the owner keeps the contact");
  assert.equal(r.assign(undefined).agent, "b", "a new contact goes to the agent with the fewest");
  assert.equal(r.assign(c, "b").agent, "b", "a channel may ask for an agent");
  // The owner goes away: within the grace period the contact waits, after it the contact moves.
  online.splice(0, 1);
  r.disconnected("a");
  assert.deepEqual(r.assign(c), { agent: "a", moved: false, previous: "" });
  now = 1000;
  assert.deepEqual(r.assign(c), { agent: "b", moved: true, previous: "a" });
  online.length = 0;
  assert.deepEqual(r.assign(c), { agent: "a", moved: false, previous: "" }, "nobody to take over: it waits");
  assert.equal(r.assign(undefined).agent, UNASSIGNED);
  assert.throws(() => r.ownedBy("b", c.id, "reply to"), /belongs to another agent/);
  assert.throws(() => r.ownedBy("a", "nobody", "reply to"), /no such contact/);
});
