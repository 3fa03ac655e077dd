import assert from "node:assert/strict";
import { KefuError } from "../../src/core/errors.ts";
import { Hub, type HubOptions } from "../../src/hub/hub.ts";
import type { Message } from "../../src/core/message.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import { Peer } from "./peer.ts";

/** A hub on a real (in-memory) SQLite store, closed when the test ends. */
function testHub(options: Omit<HubOptions, "store"> = {}) {
  const store = new SqliteStore({ path: ":memory:" });
  const hub = new Hub({ store, ...options });
  return { hub, store, [Symbol.asyncDispose]: () => store.close() };
}

// A test message names the agent it asks for in `agent`, as a channel's request would.
function accept(hub: Hub, m: Message) {
  return hub.accept({ ...m, agent: "" }, { agent: m.agent });
}

let seq = 0;
function msg(contact: string, agent = "", content = `m${++seq}`): Message {
  return {
    id: String(++seq),
    direction: "in",
    channel: "wx_official_account",
    contact,
    agent,
    company: "",
    type: "text",
    content,
    media: "",
    sendTime: 1700000000 + seq,
    name: contact,
    avatar: "",
  };
}

Deno.test("hub: a new user goes to the online agent with the fewest contacts, then sticks", async () => {
  await using t = testHub();
  const { hub } = t;
  const a = new Peer(), b = new Peer();
  await hub.connect("a", a);
  await hub.connect("b", b);
  const owners = [];
  for (const u of ["u1", "u2", "u3", "u4"]) owners.push((await accept(hub, msg(u))).agent);
  assert.deepEqual(owners, ["a", "b", "a", "b"]);
  assert.equal((await accept(hub, msg("u1"))).agent, "a");
  assert.equal((await accept(hub, msg("u2"))).agent, "b");
  assert.deepEqual(a.take().map((m) => m.contact), ["u1", "u3", "u1"]);
  assert.deepEqual(b.take().map((m) => m.contact), ["u2", "u4", "u2"]);
  assert.deepEqual(hub.contactsOf("a").map((c) => c.contact_id).sort(), ["u1", "u3"]);
});

Deno.test("hub: an explicit agent takes the contact, even from another agent", async () => {
  await using t = testHub();
  const { hub } = t;
  await hub.connect("a", new Peer());
  await hub.connect("b", new Peer());
  await accept(hub, msg("u1"));
  assert.equal((await accept(hub, msg("u1", "b"))).agent, "b");
  assert.deepEqual(hub.contactsOf("a"), []);
  assert.deepEqual(hub.contactsOf("b").map((c) => c.contact_id), ["u1"]);
  assert.equal((await accept(hub, msg("u1"))).agent, "b");
});

Deno.test("hub: messages for an offline agent are kept and delivered in order on connect", async () => {
  await using t = testHub();
  const { hub } = t;
  const results = [];
  for (const m of [msg("u1", "a", "one"), msg("u2", "a", "two"), msg("u1", "a", "three")]) {
    results.push(await accept(hub, m));
  }
  assert.deepEqual(results.map((r) => r.status), ["queued", "queued", "queued"]);
  assert.equal(hub.heldFor("a"), 3);
  const a = new Peer();
  await hub.connect("a", a);
  assert.deepEqual(a.take().map((m) => m.content), ["one", "two", "three"]);
  assert.equal(hub.heldFor("a"), 0);
  assert.equal((await accept(hub, msg("u1"))).status, "delivered");
});

Deno.test("hub: what an agent has not acknowledged comes again on its next connect, and only that", async () => {
  await using t = testHub();
  const { hub } = t;
  const a = new Peer();
  await hub.connect("a", a, { acks: true });
  const sent = [];
  for (const c of ["one", "two", "three"]) sent.push(await accept(hub, msg("u1", "", c)));
  assert.equal(a.take().length, 3);
  assert.equal(await hub.ack("a", [{ contact: "u1", id: sent[1].id }]), 1);
  // seed 003's receipt names only the id.
  assert.equal(await hub.ack("a", [{ contact: "", id: sent[2].id }]), 1);
  assert.equal(hub.contactsOf("a")[0].unread, 1, "both receipts count, also the one that named no contact");
  hub.disconnect("a", a);
  const again = new Peer();
  await hub.connect("a", again, { acks: true });
  assert.deepEqual(again.take().map((m) => m.content), ["one"]);
  // Another agent cannot acknowledge a's messages.
  assert.equal(await hub.ack("b", [{ contact: "u1", id: sent[0].id }]), 0);
});

Deno.test("hub: a socket without read receipts (the seed's protocol) reads what is written to it", async () => {
  await using t = testHub();
  const { hub } = t;
  const a = new Peer();
  await hub.connect("a", a);
  await accept(hub, msg("u1", "", "seen"));
  hub.disconnect("a", a);
  await accept(hub, msg("u1", "", "while away"));
  const b = new Peer();
  await hub.connect("a", b);
  assert.deepEqual(b.take().map((m) => m.content), ["while away"]);
  hub.disconnect("a", b);
  // Sent on connect, so read: not sent a third time.
  const c = new Peer();
  await hub.connect("a", c);
  assert.deepEqual(c.take(), []);
});

Deno.test("hub: with no agent online, new users wait and go to the first agent that connects", async () => {
  await using t = testHub();
  const { hub } = t;
  await accept(hub, msg("u1", "", "x"));
  await accept(hub, msg("u2", "", "y"));
  await accept(hub, msg("u1", "", "z"));
  assert.equal(hub.heldFor(""), 3);
  const a = new Peer();
  await hub.connect("a", a);
  assert.deepEqual(a.take().map((m) => m.content), ["x", "y", "z"]);
  assert.deepEqual(hub.contactsOf("a").map((c) => c.contact_id).sort(), ["u1", "u2"]);
  assert.equal(hub.heldFor(""), 0);
});

Deno.test("hub: a sticky user's messages wait for their own agent, not another one", async () => {
  await using t = testHub();
  const { hub } = t;
  const a = new Peer(), b = new Peer();
  await hub.connect("a", a);
  await accept(hub, msg("u1"));
  hub.disconnect("a", a);
  await hub.connect("b", b);
  assert.equal((await accept(hub, msg("u1", "", "later"))).status, "queued");
  assert.deepEqual(b.take(), []);
  const a2 = new Peer();
  await hub.connect("a", a2);
  assert.deepEqual(a2.take().map((m) => m.content).at(-1), "later");
});

Deno.test("hub: a user whose agent stays away goes to an online agent, with the messages that waited", async () => {
  const clock = { t: 1_000_000 };
  await using t = testHub({ reassignAfterMs: 30_000, now: () => clock.t });
  const { hub } = t;
  const a = new Peer(), b = new Peer();
  await hub.connect("a", a);
  await accept(hub, msg("u1", "", "hello"));
  hub.disconnect("a", a);
  await hub.connect("b", b);
  // Within the grace period (a reload): the user waits for a.
  clock.t += 10_000;
  assert.equal((await accept(hub, msg("u1", "", "are you there"))).status, "queued");
  assert.deepEqual(b.take(), []);
  // Past it: b takes the user, the waiting message first.
  clock.t += 20_000;
  const r = await accept(hub, msg("u1", "", "hello?"));
  assert.deepEqual([r.status, r.agent], ["delivered", "b"]);
  assert.deepEqual(b.take().map((m) => m.content), ["are you there", "hello?"]);
  assert.deepEqual(hub.contactsOf("b").map((c) => c.contact_id), ["u1"]);
  assert.equal(hub.heldFor("a"), 0);
  // With nobody online the user waits for their own agent, however long.
  hub.disconnect("b", b);
  clock.t += 3_600_000;
  assert.deepEqual(await accept(hub, msg("u1", "", "x")).then((r) => [r.status, r.agent]), ["queued", "b"]);
});

Deno.test("hub: waiting messages are bounded; a full queue refuses with 503 and keeps nothing", async () => {
  await using t = testHub({ maxHeldPerAgent: 2, maxHeldTotal: 3 });
  const { hub } = t;
  await accept(hub, msg("u1", "a"));
  await accept(hub, msg("u1", "a"));
  await assert.rejects(
    accept(hub, msg("u1", "a")),
    (e) => e instanceof KefuError && e.status === 503 && e.kind === "queue_full",
  );
  await accept(hub, msg("u2", "b"));
  await assert.rejects(accept(hub, msg("u2", "b")), /3 in all/);
  const retry = msg("u3", "c");
  await assert.rejects(accept(hub, { ...retry }), /3 in all/);
  const a = new Peer();
  await hub.connect("a", a);
  assert.equal(a.take().length, 2);
  // The refused message was not remembered as seen: its retry is accepted.
  assert.equal((await accept(hub, { ...retry })).status, "queued");
});

Deno.test("hub: a repeated id from the same user is a duplicate and is not delivered again", async () => {
  await using t = testHub();
  const { hub } = t;
  const a = new Peer();
  await hub.connect("a", a);
  const m = msg("u1");
  // Concurrent repeats too (a retry while the first is being committed).
  const [first, second] = await Promise.all([accept(hub, { ...m }), accept(hub, { ...m })]);
  assert.deepEqual([first.status, second.status], ["delivered", "duplicate"]);
  assert.equal((await accept(hub, { ...m })).status, "duplicate");
  assert.equal((await accept(hub, { ...m, contact: "u2" })).status, "delivered");
  assert.equal(a.take().length, 2);
});

Deno.test("hub: the store's memory of ids outlives the hub's window (a restart)", async () => {
  await using t = testHub({ dedupeWindow: 0 });
  const { hub } = t;
  const m = msg("u1", "a");
  assert.equal((await accept(hub, { ...m })).status, "queued");
  assert.equal((await accept(hub, { ...m })).status, "duplicate");
  assert.equal(hub.heldFor("a"), 1);
});

Deno.test("hub: every socket of an agent gets its messages; past the limit the oldest is closed", async () => {
  await using t = testHub({ maxSocketsPerAgent: 2 });
  const { hub } = t;
  const t1 = new Peer(), t2 = new Peer(), t3 = new Peer();
  await hub.connect("a", t1);
  await hub.connect("a", t2);
  assert.equal((await accept(hub, msg("u1"))).sockets, 2);
  assert.equal(t1.take().length, 1);
  assert.equal(t2.take().length, 1);
  await hub.connect("a", t3);
  assert.equal(t1.closed?.code, 4000);
  assert.match(t1.closed?.reason ?? "", /more than 2 sockets/);
  assert.equal((await accept(hub, msg("u1"))).sockets, 2);
  assert.equal(t1.take().length, 0);
});

Deno.test("hub: a socket that does not read is closed with 4001; its messages stay for the next connect", async () => {
  await using t = testHub({ maxBufferedBytes: 1000 });
  const { hub } = t;
  const slow = new Peer();
  await hub.connect("a", slow);
  await accept(hub, msg("u1", "", "read"));
  slow.bufferedAmount = 5000;
  const r = await accept(hub, msg("u1", "", "stuck"));
  assert.equal(r.status, "queued");
  assert.equal(slow.closed?.code, 4001);
  hub.disconnect("a", slow);
  const next = new Peer();
  await hub.connect("a", next);
  assert.deepEqual(next.take().map((m) => m.content), ["read", "stuck"]);
});

Deno.test("hub: replies are accepted only for the agent's own contacts", async () => {
  await using t = testHub();
  const { hub } = t;
  await hub.connect("a", new Peer());
  await hub.connect("b", new Peer());
  await accept(hub, msg("u1", "a"));
  const reply = { ...msg("u1"), direction: "out" as const };
  assert.equal(hub.reply("a", reply).agent, "a");
  const refusals = [["b", "u1", 403, "not_your_contact", /another agent/], [
    "a",
    "nobody",
    404,
    "not_found",
    /no such/,
  ]];
  for (const [agent, contact, status, kind, why] of refusals as [string, string, number, string, RegExp][]) {
    assert.throws(
      () => hub.reply(agent, { ...reply, contact }),
      (e) => e instanceof KefuError && e.status === status && e.kind === kind && why.test(e.message),
    );
  }
});

Deno.test("hub: heartbeat reaches every open socket; closeAll closes them", async () => {
  await using t = testHub();
  const { hub } = t;
  const a = new Peer(), b = new Peer();
  await hub.connect("a", a);
  await hub.connect("b", b);
  hub.heartbeat();
  assert.deepEqual(JSON.parse(a.sent[0]).result, { code: 101, message: "heartbeat" });
  assert.equal(b.sent.length, 1);
  hub.closeAll(1001, "bye");
  assert.deepEqual([a.closed, b.closed], [{ code: 1001, reason: "bye" }, { code: 1001, reason: "bye" }]);
  assert.equal(hub.stats().sockets, 0);
});
