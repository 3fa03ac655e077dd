/**
 * Two hubs over one PostgreSQL database, as two kefu processes would be: the store decides, so they never contradict
 * each other. Their agents' sessions are joined by a bus of this test's own (what Redis does between nodes), so that
 * either hub sees who is online anywhere.
 */
import assert from "node:assert/strict";
import type { ChannelAdapter } from "../../src/channels/channel.ts";
import { ReplyRouter } from "../../src/channels/channel.ts";
import { KefuError } from "../../src/core/errors.ts";
import { silentLogger } from "../../src/core/log.ts";
import type { Message } from "../../src/core/message.ts";
import type { Delivery } from "../../src/hub/delivery.ts";
import { Hub } from "../../src/hub/hub.ts";
import { ReplyService } from "../../src/hub/replies.ts";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres_store.ts";
import { postgresTests } from "../support/postgres.ts";
import { Peer } from "./peer.ts";
import { userText } from "./fixtures.ts";
import { sharedBus } from "./shared_bus.ts";

function userMessage(user: string, id: string, content = "hello"): Message {
  return userText(user, { id, channel: "test", account: "t1", content, sendTime: Math.floor(Date.now() / 1000) });
}

// A channel that counts replies against WeChat's message window (5 within 48 hours of the user's last message).
const windowed: ChannelAdapter = {
  name: "test",
  send: () => Promise.resolve("sent"),
  windowRules: () => [{ name: "message", opens: ["*"], ms: 48 * 3_600_000, quota: 5 }],
};

async function twoHubs(url: string) {
  const stores: PostgresStore[] = [await openPostgresStore({ url }), await openPostgresStore({ url })];
  const deliveries: Delivery[] = [];
  const hubs = stores.map((store) => new Hub({ store, bus: sharedBus(deliveries), reassignAfterMs: 60_000 }));
  const replies = stores.map((store) =>
    new ReplyService({ store, router: new ReplyRouter([windowed]), log: silentLogger })
  );
  return {
    hubs,
    stores,
    replies,
    async [Symbol.asyncDispose]() {
      await Promise.all(stores.map((s) => s.close()));
    },
  };
}

postgresTests("two hubs over one PostgreSQL database", {
  "the same message through both at once is stored once and delivered once": async (db) => {
    await using t = await twoHubs(db.url);
    const [a, b] = t.hubs;
    const peer = new Peer();
    await a.connect("agent1", peer, { acks: true });
    const results = await Promise.all([a.accept(userMessage("u1", "m1")), b.accept(userMessage("u1", "m1"))]);
    assert.deepEqual(results.map((r) => r.status).sort(), ["delivered", "duplicate"]);
    assert.deepEqual(peer.take().map((m) => m.id), ["m1"]);
    assert.equal((await t.stores[0].history("u1", { limit: 10 })).length, 1);
  },
  "a new user arriving at both at once gets one contact and one owner": async (db) => {
    await using t = await twoHubs(db.url);
    const [a, b] = t.hubs;
    await a.connect("agent1", new Peer(), { acks: true });
    await b.connect("agent2", new Peer(), { acks: true });
    const results = await Promise.all([a.accept(userMessage("new", "n1")), b.accept(userMessage("new", "n2"))]);
    assert.equal(new Set(results.map((r) => r.contact)).size, 1);
    assert.equal(new Set(results.map((r) => r.agent)).size, 1);
    const c = await t.stores[1].contact(results[0].contact);
    assert.equal(c?.agent, results[0].agent);
    assert.equal(c?.unread, 2);
  },
  "two takes of one waiting user at once: one wins, the other is told 409": async (db) => {
    await using t = await twoHubs(db.url);
    const [a, b] = t.hubs;
    const waiting = await a.accept(userMessage("q1", "w1"));
    assert.equal(waiting.agent, "");
    const outcomes = await Promise.allSettled([
      a.workflow.take("agent1", waiting.contact),
      b.workflow.take("agent2", waiting.contact),
    ]);
    assert.equal(outcomes.filter((o) => o.status === "fulfilled").length, 1);
    const lost = outcomes.find((o) => o.status === "rejected") as PromiseRejectedResult;
    assert.ok(lost.reason instanceof KefuError && lost.reason.status === 409, String(lost.reason));
  },
  "six replies to one user in one window from both hubs: five sent, one refused with the window's code": async (db) => {
    await using t = await twoHubs(db.url);
    const [a] = t.hubs;
    await a.connect("agent1", new Peer(), { acks: true });
    const got = await a.accept(userMessage("w1", "in1"));
    assert.equal(got.agent, "agent1");
    const reply = (i: number): Message => ({ ...userMessage(got.contact, `r${i}`, `reply ${i}`), direction: "out" });
    const outcomes = await Promise.allSettled(
      [0, 1, 2, 3, 4, 5].map((i) => t.replies[i % 2].reply("agent1", reply(i))),
    );
    assert.equal(outcomes.filter((o) => o.status === "fulfilled").length, 5);
    const refused = outcomes.filter((o) => o.status === "rejected") as PromiseRejectedResult[];
    assert.equal(refused.length, 1);
    assert.ok(refused[0].reason instanceof KefuError && refused[0].reason.kind === "reply_window_closed");
  },
});
