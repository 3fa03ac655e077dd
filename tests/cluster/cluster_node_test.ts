/**
 * The cluster node over the memory engine: two hubs on one store, as two kefu nodes on one database, joined by a
 * {@link MemoryBroker} (what Redis is between processes). Fast and without servers; the same paths with Redis and
 * child processes are in cluster_test.ts.
 */

import assert from "node:assert/strict";
import { ClusterNode } from "../../src/cluster/cluster_node.ts";
import { type Engine, MemoryBroker, memoryEngine } from "../../src/cluster/engine.ts";
import { createLogger, type Logger, silentLogger } from "../../src/core/log.ts";
import type { Message } from "../../src/core/message.ts";
import { Hub } from "../../src/hub/hub.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import { Peer } from "../hub/peer.ts";
import { eventually } from "../helpers.ts";

const HEARTBEAT_MS = 20;

function message(user: string, id: string): Message {
  return {
    id,
    direction: "in",
    channel: "test",
    account: "t1",
    contact: user,
    agent: "",
    company: "",
    type: "text",
    content: `text ${id}`,
    media: "",
    sendTime: 1_700_000_000,
    name: user,
    avatar: "",
  };
}

async function twoNodes(options: { engineB?: (e: Engine) => Engine } = {}) {
  const store = new SqliteStore({ path: ":memory:" });
  const broker = new MemoryBroker();
  const engines = [memoryEngine(broker), (options.engineB ?? ((e) => e))(memoryEngine(broker))];
  const nodes = engines.map((engine, i) =>
    new ClusterNode({ nodeId: `n${i + 1}`, engine, store, log: silentLogger, heartbeatMs: HEARTBEAT_MS })
  );
  const hubs = nodes.map((node) => new Hub({ store, bus: node.bus, reassignAfterMs: 100 }));
  for (const node of nodes) await node.start();
  return {
    store,
    nodes,
    hubs,
    async [Symbol.asyncDispose]() {
      await Promise.all(nodes.map((n) => n.stop()));
      await store.close();
    },
  };
}

Deno.test("cluster node: a message taken by one node reaches the agent's session on the other, once", async () => {
  await using t = await twoNodes();
  const [a, b] = t.hubs;
  const legacy = new Peer(); // no read receipts: read once written
  await b.connect("agent1", legacy);
  assert.equal(a.isOnline("agent1"), true, "the other node knows at once (the join is announced)");
  const r = await a.accept(message("u1", "m1"), { agent: "agent1" });
  assert.equal(r.status, "delivered");
  await eventually("the session on n2 got m1", () => legacy.sent.length > 0);
  assert.deepEqual(legacy.take().map((m) => m.id), ["m1"]);
  await eventually(
    "m1 is read (its session has no receipts)",
    async () => (await t.store.unacked("agent1")).length === 0,
  );

  const page = new Peer(); // read receipts: unread until the agent says so
  await b.connect("agent2", page, { acks: true });
  await a.accept(message("u2", "m2"), { agent: "agent2" });
  await eventually("the page on n2 got m2", () => page.sent.length > 0);
  assert.deepEqual(page.take().map((m) => m.id), ["m2"]);
  assert.deepEqual((await t.store.unacked("agent2")).map((m) => m.id), ["m2"]);
});

Deno.test("cluster node: a node that stops announcing has its agents offline, and their waiting users move", async () => {
  let dead = false;
  // n2 "killed": every call to the broker fails from then on, as for a process that is gone.
  const killable = (e: Engine): Engine => {
    const guard = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => (...a: A): Promise<R> =>
      dead ? Promise.reject(new Error("killed")) : f(...a);
    return {
      ...e,
      publish: guard(e.publish),
      subscribe: guard(e.subscribe),
      announce: guard(e.announce),
      nodes: guard(e.nodes),
      withdraw: guard(e.withdraw),
    };
  };
  await using t = await twoNodes({ engineB: killable });
  const [a, b] = t.hubs;
  const online = new Peer();
  const gone = new Peer();
  await a.connect("here", online, { acks: true });
  await b.connect("gone", gone, { acks: true });
  const first = await a.accept(message("u1", "w1"), { agent: "gone" });
  assert.equal(first.agent, "gone");
  dead = true;
  await eventually("n1 sees 'gone' offline once n2's announcement expired", () => !a.isOnline("gone"), 2000);
  // The grace period (100 ms here) starts when n1 saw it offline; then the user moves with the unread message.
  await eventually("the waiting user moved to the agent online", async () => (await a.reassignAway()) > 0, 2000);
  assert.deepEqual(online.take().map((m) => m.id), ["w1"]);
});

/** The store with its `ack` held at a gate (as a slow database's): counts the calls and what each marked read. */
function gatedAcks(store: SqliteStore) {
  const calls: number[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => open = resolve);
  return {
    calls,
    open,
    store: {
      unacked: store.unacked.bind(store),
      ack: async (agent: string, refs: readonly Message[]) => {
        calls.push(refs.length);
        await gate;
        return await store.ack(agent, refs);
      },
    },
  };
}

async function gatedNodes(
  gated: ReturnType<typeof gatedAcks>["store"],
  store: SqliteStore,
  options: { drainAcksMs?: number; log?: Logger } = {},
) {
  const broker = new MemoryBroker();
  const nodes = [0, 1].map((i) =>
    new ClusterNode({
      nodeId: `n${i + 1}`,
      engine: memoryEngine(broker),
      store: i === 1 ? gated : store,
      log: options.log ?? silentLogger,
      heartbeatMs: HEARTBEAT_MS,
      drainAcksMs: options.drainAcksMs,
    })
  );
  const hubs = nodes.map((node) => new Hub({ store, bus: node.bus }));
  for (const node of nodes) await node.start();
  return { nodes, hubs };
}

Deno.test("cluster node: messages written while an acknowledgement is under way are marked read together", async () => {
  const store = new SqliteStore({ path: ":memory:" });
  const gated = gatedAcks(store);
  const { nodes, hubs: [a, b] } = await gatedNodes(gated.store, store);
  try {
    const legacy = new Peer(); // no read receipts: read once written
    await b.connect("agent1", legacy);
    await a.accept(message("u0", "m0"), { agent: "agent1" });
    await eventually("the first acknowledgement is under way", () => gated.calls.length === 1);
    const ids = Array.from({ length: 30 }, (_, i) => `m${i + 1}`);
    for (const id of ids) await a.accept(message(`u${id}`, id), { agent: "agent1" });
    await eventually("the session on n2 got all 31", () => legacy.sent.length === 31);
    gated.open();
    await eventually("all 31 are read", async () => (await store.unacked("agent1")).length === 0);
    assert.deepEqual(gated.calls, [1, 30], "one acknowledgement for the 30 written meanwhile, not 30");
  } finally {
    gated.open();
    await Promise.all(nodes.map((n) => n.stop()));
    await store.close();
  }
});

Deno.test("cluster node: stop waits for the acknowledgements under way, so the store can close after it", async () => {
  const store = new SqliteStore({ path: ":memory:" });
  const gated = gatedAcks(store);
  const { nodes, hubs: [a, b] } = await gatedNodes(gated.store, store);
  try {
    const legacy = new Peer();
    await b.connect("agent1", legacy);
    await a.accept(message("u1", "m1"), { agent: "agent1" });
    await eventually("the acknowledgement is under way", () => gated.calls.length === 1);
    let stopped = false;
    const stopping = nodes[1].stop().then(() => stopped = true);
    // Let the stop run as far as it can on its own (bounded: a few turns of the event loop).
    for (let i = 0; i < 20 && !stopped; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(stopped, false, "stop returned with an acknowledgement under way");
    gated.open();
    await stopping;
    assert.deepEqual(await store.unacked("agent1"), [], "m1 is read before the store could close");
  } finally {
    gated.open();
    await Promise.all(nodes.map((n) => n.stop()));
    await store.close();
  }
});

Deno.test("cluster node: stop waits for a stuck acknowledgement only so long, and says so", async () => {
  const store = new SqliteStore({ path: ":memory:" });
  const gated = gatedAcks(store);
  const lines: string[] = [];
  const log = createLogger({ level: "warn", write: (line) => lines.push(line) });
  const { nodes, hubs: [a, b] } = await gatedNodes(gated.store, store, { drainAcksMs: 50, log });
  try {
    const legacy = new Peer();
    await b.connect("agent1", legacy);
    await a.accept(message("u1", "m1"), { agent: "agent1" });
    await eventually("the acknowledgement is under way", () => gated.calls.length === 1);
    await nodes[1].stop();
    assert.ok(lines.some((l) => l.includes('"event":"ack_drain_timeout"')), lines.join("\n"));
    assert.deepEqual((await store.unacked("agent1")).map((m) => m.id), ["m1"], "unread: it comes again next time");
  } finally {
    gated.open();
    await Promise.all(nodes.map((n) => n.stop()));
    await eventually("the stuck acknowledgement ended", async () => (await store.unacked("agent1")).length === 0);
    await store.close();
  }
});
