import assert from "node:assert/strict";
import { KefuError } from "../../src/core/errors.ts";
import { Hub } from "../../src/hub/hub.ts";
import { LocalBus } from "../../src/hub/bus.ts";
import type { Delivery } from "../../src/hub/delivery.ts";
import { ReplyService } from "../../src/hub/replies.ts";
import { ReplyRouter } from "../../src/channels/channel.ts";
import { silentLogger } from "../../src/core/log.ts";
import type { Message } from "../../src/core/message.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import type { WindowRule } from "../../src/store/store.ts";
import { Peer } from "./peer.ts";
import { testHub, userText } from "./fixtures.ts";

// A test message names the agent it asks for in `agent`, as a channel's request would.
function accept(hub: Hub, m: Message) {
  return hub.accept({ ...m, agent: "" }, { agent: m.agent });
}

function msg(contact: string, agent = "", content?: string): Message {
  return userText(contact, content === undefined ? { agent } : { agent, content });
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
  assert.deepEqual((await hub.contactsOf("a")).map((c) => c.contact_id).sort(), ["u1", "u3"]);
  assert.deepEqual((await hub.contactsOf("b")).map((c) => c.contact_id).sort(), ["u2", "u4"]);
});

Deno.test("hub: an explicit agent takes the contact, even from another agent", async () => {
  await using t = testHub();
  const { hub } = t;
  await hub.connect("a", new Peer());
  await hub.connect("b", new Peer());
  await accept(hub, msg("u1"));
  assert.equal((await accept(hub, msg("u1", "b"))).agent, "b");
  assert.deepEqual(await hub.contactsOf("a"), []);
  assert.deepEqual((await hub.contactsOf("b")).map((c) => c.contact_id), ["u1"]);
  assert.equal((await t.store.contact("u1"))?.agent, "b", "the store's row says so");
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
  assert.equal(await hub.waiting(), 3);
  assert.deepEqual((await hub.contactsOf("a")).map((c) => [c.contact_id, c.unread]).sort(), [["u1", 2], ["u2", 1]]);
  const a = new Peer();
  await hub.connect("a", a);
  assert.deepEqual(a.take().map((m) => m.content), ["one", "two", "three"]);
  // Written to a socket without read receipts: read.
  assert.equal(await hub.waiting(), 0);
  assert.deepEqual((await hub.contactsOf("a")).map((c) => c.unread), [0, 0]);
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
  assert.equal((await hub.contactsOf("a"))[0].unread, 1, "both receipts count, also the one that named no contact");
  assert.equal(await hub.waiting(), 1);
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
  assert.equal(await hub.waiting(), 3);
  assert.deepEqual((await t.store.contactsOf("")).map((c) => [c.id, c.unread]).sort(), [["u1", 2], ["u2", 1]]);
  assert.deepEqual(await hub.contactsOf(""), [], "nobody's contacts are no agent's list");
  const a = new Peer();
  await hub.connect("a", a);
  assert.deepEqual(a.take().map((m) => m.content), ["x", "y", "z"]);
  assert.deepEqual((await hub.contactsOf("a")).map((c) => c.contact_id).sort(), ["u1", "u2"]);
  assert.deepEqual(await t.store.contactsOf(""), []);
  assert.equal(await hub.waiting(), 0);
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
  assert.deepEqual((await hub.contactsOf("b")).map((c) => c.contact_id), ["u1"]);
  assert.deepEqual(await hub.contactsOf("a"), []);
  assert.equal(await hub.waiting(), 0, "b's socket (no read receipts) read both");
  // With nobody online the user waits for their own agent, however long.
  hub.disconnect("b", b);
  clock.t += 3_600_000;
  assert.deepEqual(await accept(hub, msg("u1", "", "x")).then((r) => [r.status, r.agent]), ["queued", "b"]);
});

Deno.test("hub: no cap on waiting: with nobody online every message is kept, and all reach the first agent", async () => {
  await using t = testHub({ redeliverPage: 256 });
  const { hub } = t;
  // More than the 1,000 the in-memory queue used to take before refusing with 503 queue_full.
  const n = 1_100;
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => accept(hub, msg(`user${i}`, "", `hello ${i}`))),
  );
  assert.deepEqual(new Set(results.map((r) => [r.status, r.agent].join())), new Set(["queued,"]));
  assert.equal(await hub.waiting(), n);
  assert.equal((await hub.stats()).held, n);
  const a = new Peer();
  await hub.connect("a", a);
  const got = a.take().map((m) => m.content);
  assert.equal(got.length, n, "every page of the backlog is sent");
  assert.deepEqual(got.slice(0, 2), ["hello 0", "hello 1"]);
  assert.equal(got.at(-1), `hello ${n - 1}`);
  assert.equal(await hub.waiting(), 0);
  assert.equal((await hub.contactsOf("a")).length, n);
});

Deno.test("hub: a message the store failed to keep is refused with 503, and its retry is accepted", async () => {
  await using t = testHub();
  const { hub, store } = t;
  const acceptInbound = store.acceptInbound.bind(store);
  let failures = 1;
  store.acceptInbound = (input) => failures-- > 0 ? Promise.reject(new Error("disk full")) : acceptInbound(input);
  const m = msg("u1", "a");
  await assert.rejects(
    accept(hub, { ...m }),
    (e) => e instanceof KefuError && e.status === 503 && e.kind === "store_failed" && /try again/.test(e.message),
  );
  assert.equal(await hub.waiting(), 0);
  // Not remembered as seen: the retry is kept, once.
  assert.equal((await accept(hub, { ...m })).status, "queued");
  assert.equal((await accept(hub, { ...m })).status, "duplicate");
  assert.equal(await hub.waiting(), 1);
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

Deno.test("hub: ids are remembered by the store, not the hub: a repeat after a restart is a duplicate", async () => {
  await using t = testHub();
  const m = msg("u1", "a");
  assert.equal((await accept(t.hub, { ...m })).status, "queued");
  // A new hub over the same store (a restart; two hubs at once over one SQLite file are not supported).
  const hub = new Hub({ store: t.store });
  assert.equal((await accept(hub, { ...m })).status, "duplicate");
  assert.equal(await hub.waiting(), 1);
  const a = new Peer();
  await hub.connect("a", a);
  assert.deepEqual(a.take().map((x) => x.id), [m.id], "delivered once");
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

// A reply service over the test store with one channel (wx_official_account) that records what it sends.
function replies(store: SqliteStore, rules: WindowRule[] = []) {
  const sent: { contact: string; content: string }[] = [];
  const router = new ReplyRouter([{
    name: "wx_official_account",
    send: (reply, contact) => {
      sent.push({ contact: contact.id, content: reply.content });
      return Promise.resolve("sent");
    },
    windowRules: () => rules,
  }]);
  return { service: new ReplyService({ store, router, log: silentLogger }), sent };
}

Deno.test("hub: replies are accepted only for the agent's own contacts", async () => {
  await using t = testHub();
  const { hub, store } = t;
  await hub.connect("a", new Peer());
  await hub.connect("b", new Peer());
  await accept(hub, msg("u1", "a"));
  const { service, sent } = replies(store);
  const reply = { ...msg("u1"), direction: "out" as const };
  assert.deepEqual(await service.reply("a", { ...reply }), { status: "sent" });
  assert.deepEqual(sent, [{ contact: "u1", content: reply.content }]);
  const refusals = [["b", "u1", 403, "not_your_contact", /another agent/], [
    "a",
    "nobody",
    404,
    "not_found",
    /no such/,
  ]];
  for (const [agent, contact, status, kind, why] of refusals as [string, string, number, string, RegExp][]) {
    await assert.rejects(
      service.reply(agent, { ...reply, id: `r-${agent}-${contact}`, contact }),
      (e) => e instanceof KefuError && e.status === status && e.kind === kind && why.test(e.message),
    );
  }
  assert.equal(sent.length, 1, "nothing refused was sent");
  // The reply is kept in the conversation, sent, with the agent who wrote it.
  const [kept] = (await hub.history("a", "u1", undefined, 10)).filter((m) => m.direction === "out");
  assert.deepEqual([kept.id, kept.agent, kept.state], [reply.id, "a", "sent"]);
});

Deno.test("hub: replies are counted against the channel's window in the store; one too many is refused", async () => {
  await using t = testHub();
  const { hub, store } = t;
  await accept(hub, { ...msg("u1", "a"), sendTime: Math.floor(Date.now() / 1000) });
  const { service, sent } = replies(store, [{ name: "message", opens: ["*"], ms: 48 * 3_600_000, quota: 2 }]);
  const reply = (i: number) => ({ ...msg("u1"), id: `r${i}`, direction: "out" as const });
  // Three at once: replies to one user are counted one at a time.
  const outcomes = await Promise.allSettled([1, 2, 3].map((i) => service.reply("a", reply(i))));
  assert.deepEqual(outcomes.map((o) => o.status), ["fulfilled", "fulfilled", "rejected"]);
  const refused = (outcomes[2] as PromiseRejectedResult).reason;
  assert.ok(refused instanceof KefuError && refused.status === 403 && refused.kind === "reply_window_closed");
  assert.match(refused.message, /2 replies were already sent/);
  assert.equal(sent.length, 2);
  const kept = (await hub.history("a", "u1", undefined, 10)).filter((m) => m.direction === "out");
  assert.deepEqual(kept.map((m) => m.id).sort(), ["r1", "r2"], "the refused reply was not kept");
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
  assert.deepEqual(await hub.stats(), { agents_online: 0, sockets: 0, contacts: 0, held: 0 });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("hub: the reassign job moves a user whose agent left to an online agent, with no new message", async () => {
  // The hub's clock, moved by the test: the grace period must not end by itself while a slow machine runs the test.
  const clock = { t: Date.now() };
  await using t = testHub({ reassignAfterMs: 50, now: () => clock.t });
  const { hub, store } = t;
  // The user writes once to a, who does not read it (a session with read receipts, none sent) and leaves.
  const a = new Peer();
  await hub.connect("a", a, { acks: true });
  const first = await accept(hub, msg("u1", "", "anyone there?"));
  assert.deepEqual([first.status, first.agent], ["delivered", "a"]);
  hub.disconnect("a", a);
  const b = new Peer();
  await hub.connect("b", b);
  assert.deepEqual(b.take(), [], "not b's user (yet)");
  // Within the grace period (a reload): nothing moves.
  assert.equal(await hub.reassignAway(), 0);
  assert.equal((await store.contact("u1"))?.agent, "a");
  clock.t += 60;
  // Past it: b gets the user and the message that waited, though the user wrote nothing new.
  assert.equal(await hub.reassignAway(), 1);
  assert.deepEqual(b.contactEvents(), [{ action: "assigned", contact: "u1", by: "", from: "a", to: "b" }]);
  assert.deepEqual(b.take().map((m) => [m.contact, m.content]), [["u1", "anyone there?"]]);
  assert.equal((await store.contact("u1"))?.agent, "b");
  // The history says so: a workflow line by kefu, from a to b.
  const line = (await store.history("u1", { limit: 10 })).find((m) => m.type === "system");
  assert.deepEqual([line?.agent, line?.extra?.action, line?.extra?.from_agent_id, line?.extra?.to_agent_id], [
    "kefu",
    "assigned",
    "a",
    "b",
  ]);
  assert.deepEqual((await hub.contactsOf("b")).map((c) => c.contact_id), ["u1"]);
  assert.deepEqual(await hub.contactsOf("a"), []);
  assert.equal(await hub.waiting(), 0, "b's socket (no read receipts) read it");
  // Done once: the next pass finds nobody waiting for an away agent.
  assert.equal(await hub.reassignAway(), 0);
  assert.deepEqual(b.take(), []);
});

Deno.test("hub: with nobody online the reassign job moves nothing: the user waits for their own agent", async () => {
  await using t = testHub({ reassignAfterMs: 50 });
  const { hub, store } = t;
  const a = new Peer();
  await hub.connect("a", a, { acks: true });
  await accept(hub, msg("u1", "", "hello"));
  hub.disconnect("a", a);
  await sleep(60);
  assert.equal(await hub.reassignAway(), 0);
  assert.equal((await store.contact("u1"))?.agent, "a");
  assert.equal(await hub.waiting(), 1);
  // Their agent comes back: the message is there.
  const again = new Peer();
  await hub.connect("a", again, { acks: true });
  assert.deepEqual(again.take().map((m) => m.content), ["hello"]);
});

Deno.test("hub: two agents take one queued user at once: exactly one wins, the other gets 409", async () => {
  await using t = testHub();
  const { hub, store } = t;
  await hub.connect("a", new Peer());
  await hub.connect("b", new Peer());
  await hub.connect("c", new Peer());
  await accept(hub, msg("u1", "a", "help"));
  await hub.workflow.transfer("a", "u1", "", "");
  assert.deepEqual((await hub.workflow.queue()).map((c) => c.contact_id), ["u1"]);
  const outcomes = await Promise.allSettled([hub.workflow.take("b", "u1"), hub.workflow.take("c", "u1")]);
  const won = outcomes.filter((o) => o.status === "fulfilled");
  const lost = outcomes.filter((o) => o.status === "rejected");
  assert.equal(won.length, 1);
  assert.equal(lost.length, 1);
  const e = lost[0].reason;
  assert.ok(e instanceof KefuError && e.status === 409 && e.kind === "already_taken", String(e));
  const winner = won[0].value.agent_id;
  assert.ok(winner === "b" || winner === "c");
  const kept = await store.contact("u1");
  assert.deepEqual([kept?.agent, kept?.status], [winner, "open"]);
  assert.deepEqual(await hub.workflow.queue(), []);
  // One "took" line in the conversation: the loser's was not kept.
  const lines = (await hub.history(winner, "u1", undefined, 50)).filter((m) => m.extra?.action === "taken");
  assert.deepEqual(lines.map((m) => m.extra?.by), [winner]);
});

Deno.test("hub: a message the backlog sent is not written again when it comes live afterwards (from another node)", async () => {
  // Another node committed it before this session's backlog was read, and its publish arrives after the catch-up.
  let local: Delivery | undefined;
  const store = new SqliteStore({ path: ":memory:" });
  const hub = new Hub({ store, bus: (d) => new LocalBus(local = d) });
  try {
    const late = msg("u1", "a", "late");
    await accept(hub, late);
    const peer = new Peer();
    await hub.connect("a", peer, { acks: true });
    assert.deepEqual(peer.take().map((m) => m.content), ["late"]);
    const report = local!.message("a", { ...late, agent: "a" });
    assert.deepEqual(peer.take(), [], "not twice on one socket");
    assert.deepEqual(report, { sockets: 1, needsAck: true }, "it counts as delivered to that socket");
    // A new message still goes live.
    await accept(hub, msg("u1", "a", "next"));
    assert.deepEqual(peer.take().map((m) => m.content), ["next"]);
  } finally {
    await store.close();
  }
});
