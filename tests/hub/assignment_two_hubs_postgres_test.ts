/**
 * Capacity and the queue with two hubs over one PostgreSQL database, as two kefu processes would be (issue 22): two
 * slots freeing at once, one in each process, assign each waiting user once; new users arriving at both at once
 * never put an agent over capacity. Sessions are joined by a bus of this test's own (what Redis does between nodes).
 */
import assert from "node:assert/strict";
import type { Message } from "../../src/core/message.ts";
import type { Delivery } from "../../src/hub/delivery.ts";
import { Hub } from "../../src/hub/hub.ts";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres_store.ts";
import { postgresTests } from "../support/postgres.ts";
import { Peer } from "./peer.ts";
import { userText } from "./fixtures.ts";
import { sharedBus } from "./shared_bus.ts";

function userMessage(user: string, id: string): Message {
  return userText(user, {
    id,
    channel: "test",
    account: "t1",
    content: `hello from ${user}`,
    sendTime: Math.floor(Date.now() / 1000),
  });
}

async function twoHubs(url: string, capacity: number) {
  const stores: PostgresStore[] = [await openPostgresStore({ url }), await openPostgresStore({ url })];
  const deliveries: Delivery[] = [];
  const hubs = stores.map((store) =>
    new Hub({ store, bus: sharedBus(deliveries), reassignAfterMs: 60_000, capacity: () => capacity })
  );
  return {
    hubs,
    stores,
    async [Symbol.asyncDispose]() {
      // Fills started in the background by the resolves end before the stores close.
      await Promise.all(hubs.map((h) => h.assignment.fill().catch(() => [])));
      await Promise.all(stores.map((s) => s.close()));
    },
  };
}

// Bounded: the background fills the resolves start are done within a few round trips.
async function settled(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`still not true after 5 s: ${what}`);
}

postgresTests("capacity and the queue over two hubs", {
  "two slots freeing at once, one in each process: each waiting user is assigned once": async (db) => {
    await using t = await twoHubs(db.url, 1);
    const [a, b] = t.hubs;
    const one = new Peer();
    const two = new Peer();
    await a.connect("agent1", one, { acks: true });
    await b.connect("agent2", two, { acks: true });
    const first = [await a.accept(userMessage("u1", "m1")), await b.accept(userMessage("u2", "m2"))];
    assert.deepEqual(first.map((r) => r.agent).sort(), ["agent1", "agent2"]);
    for (const [i, u] of ["w1", "w2", "w3"].entries()) {
      const r = await (i % 2 === 0 ? a : b).accept(userMessage(u, `w${i}`));
      assert.deepEqual([r.agent, r.status], ["", "queued"], `${u} waits: both agents are full`);
    }
    assert.deepEqual((await t.stores[0].queue()).map((q) => q.id), ["w1", "w2", "w3"]);
    const mine = (agent: string) => first.find((r) => r.agent === agent)!.contact;
    // Both resolve at once, each on its own process; both processes fill at once as well.
    await Promise.all([
      a.workflow.setStatus("agent1", mine("agent1"), "resolved"),
      b.workflow.setStatus("agent2", mine("agent2"), "resolved"),
      a.assignment.fill(),
      b.assignment.fill(),
    ]);
    await settled(async () => (await t.stores[1].queue()).length === 1, "two users left the queue");
    const owners = await Promise.all(["w1", "w2", "w3"].map(async (id) => (await t.stores[0].contact(id))?.agent));
    assert.deepEqual(owners.slice(0, 2).sort(), ["agent1", "agent2"], "the two longest-waiting, one each");
    assert.equal(owners[2], "", "the third still waits");
    assert.deepEqual(await t.stores[0].openCounts(["agent1", "agent2"]), new Map([["agent1", 1], ["agent2", 1]]));
    // Each agent's session got its new user's message, once, and heard of the assignment (106 `assigned`).
    const frames = (p: Peer) => p.sent.map((f) => JSON.parse(f));
    const messagesOf = (p: Peer) => frames(p).filter((f) => f.result.code === 1001).map((f) => f.data.contact_id);
    await settled(
      () => Promise.resolve([...messagesOf(one), ...messagesOf(two)].filter((c) => c.startsWith("w")).length === 2),
      "the waiting users' messages were handed over",
    );
    for (const [agent, p] of [["agent1", one], ["agent2", two]] as const) {
      const got = messagesOf(p).filter((c) => c.startsWith("w"));
      assert.deepEqual(got, [owners.indexOf(agent) === 0 ? "w1" : "w2"]);
      const assigned = frames(p).filter((f) => f.result.code === 106 && f.data.action === "assigned");
      assert.ok(assigned.some((f) => f.data.to_agent_id === agent), JSON.stringify(assigned));
    }
  },

  "new users arriving at both processes at once never put an agent over capacity": async (db) => {
    await using t = await twoHubs(db.url, 2);
    const [a, b] = t.hubs;
    await a.connect("agent1", new Peer(), { acks: true });
    await b.connect("agent2", new Peer(), { acks: true });
    const results = await Promise.all(
      ["n1", "n2", "n3", "n4", "n5", "n6", "n7"].map((u, i) => (i % 2 === 0 ? a : b).accept(userMessage(u, `x${i}`))),
    );
    const by = (agent: string) => results.filter((r) => r.agent === agent).length;
    assert.deepEqual([by("agent1"), by("agent2"), by("")], [2, 2, 3]);
    assert.deepEqual(await t.stores[0].openCounts(["agent1", "agent2"]), new Map([["agent1", 2], ["agent2", 2]]));
    assert.equal((await t.stores[1].queue()).length, 3);
  },
});
