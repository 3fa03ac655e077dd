/**
 * A rolling restart of all three nodes under load (issue 19): each node in turn gets SIGTERM, drains, exits 0 and is
 * started again (same NODE_ID, as systemd does) before the next. Its agents' sockets close with 4002 and reconnect at
 * once to a node that is up (as the agent page does); nothing accepted is lost (for a socket without read receipts
 * too), and no socket that sends read receipts gets a message twice.
 */

import assert from "node:assert/strict";
import { Close } from "../../src/envelope/protocol.ts";
import { startPostgres } from "../support/postgres.ts";
import { startRedis } from "../support/redis.ts";
import { eventually } from "../helpers.ts";
import { Agent, allOnline, gotAll, load, missing, push, type Sent, startNode, startNodes } from "./cluster_support.ts";

// Bounds of the load: at most this many sends, for at most this long.
const COUNT = 3000;
const LOAD_MS = 240_000;

Deno.test("cluster: a rolling restart of three nodes under load loses nothing and duplicates nothing", async () => {
  await using pg = await startPostgres();
  await using db = await pg.createDatabase();
  await using redis = await startRedis();
  const cluster = { databaseUrl: db.url, redisUrl: redis.url };
  await using nodes = await startNodes(3, cluster);
  // The node being restarted is out of the load balancer from its SIGTERM until it is up again.
  let restarting = -1;
  const up = () => nodes.filter((_, i) => i !== restarting);
  // Two agents on each node; each follows a close to the next node up, as the load balancer would send it. F speaks
  // the seed's protocol without read receipts: what was written to its socket counts as read.
  const agents = ["A", "B", "C", "D", "E", "F"].map((id) => new Agent(id, { acks: id !== "F" }));
  await using _agents = { [Symbol.asyncDispose]: () => Promise.all(agents.map((x) => x.disconnect())).then(() => {}) };
  let turn = 0;
  for (const [i, x] of agents.entries()) {
    await x.connect(nodes[i % 3]);
    x.follow(() => up()[turn++ % up().length]);
  }
  await allOnline(nodes, agents.map((x) => x.id));

  const outcomes: Sent[] = [];
  const drains: { node: string; drainMs: number; startMs: number; at: number }[] = [];
  const t00 = Date.now();
  let done = false;
  const driver = (async () => {
    for (let i = 0; i < 3; i++) {
      // Some load on the cluster as it is before each step.
      const before = outcomes.filter((o) => o.ok).length;
      await eventually("the load goes on", () => outcomes.filter((o) => o.ok).length >= before + 30, 60_000);
      restarting = i;
      const node = nodes[i];
      const t0 = Date.now();
      const code = await node.terminate();
      const drainMs = Date.now() - t0;
      assert.equal(code, 0, `${node.id} drained and exited 0`);
      await node[Symbol.asyncDispose]();
      const t1 = Date.now();
      nodes[i] = await startNode(node.id, cluster, { MEDIA_DIR: nodes.mediaDir });
      drains.push({ node: node.id, drainMs, startMs: Date.now() - t1, at: t0 - t00 });
      restarting = -1;
    }
    // Load on the restarted cluster too.
    const before = outcomes.filter((o) => o.ok).length;
    await eventually("the load goes on after the restart", () => outcomes.filter((o) => o.ok).length >= before + 30);
  })().finally(() => done = true);
  await load({ count: COUNT, concurrency: 4, paceMs: 40, ms: LOAD_MS, stop: () => done }, async (i) => {
    const to = agents[i % agents.length];
    // Sent to every node in turn, the one draining included (a request it takes must not be lost).
    const node = nodes[i % 3];
    const id = `rr${i}`;
    return { id, node: node.id, ok: (await push(node, `u${i % 12}-${to.id}`, to.id, id)) !== undefined };
  }, outcomes);
  await driver;
  await Promise.all(agents.map((x) => x.settled()));

  const accepted = new Map(agents.map((x) => [x, [] as string[]]));
  for (const o of outcomes) if (o.ok) accepted.get(agents[Number(o.id.slice(2)) % agents.length])!.push(o.id);
  for (const x of agents) {
    await eventually(`${x.id} got every accepted message`, () => gotAll(x, accepted.get(x)!), 30_000).catch((e) => {
      // Where and when each missing one was accepted, against the drains: what a rare failure needs to be read.
      const lost = missing(x, accepted.get(x)!).map((id) => {
        const o = outcomes.find((o) => o.id === id)!;
        return `${id} (accepted by ${o.node} at ${o.start - t00}–${o.end - t00} ms)`;
      });
      const steps = drains.map((d) => `${d.node} SIGTERM at ${d.at} ms, drained in ${d.drainMs} ms`).join("; ");
      throw new Error(`${e.message}; missing: ${lost.join(", ")}; ${steps}; closes: ${x.closeCodes.join(",")}`);
    });
  }
  const seen = agents.map((x) =>
    `${x.id}: closes ${x.closeCodes.join(",")}, twice ${x.sameSocketDuplicates.join(",")}`
  );
  console.log(`cluster: rolling restart — ${seen.join("; ")}`);
  for (const x of agents) {
    if (x.id !== "F") assert.deepEqual(x.sameSocketDuplicates, [], `${x.id}: no socket got a message twice`);
    // Every close the agents saw was a drain's: the page reconnects at once on it.
    assert.ok(x.closeCodes.length >= 1, `${x.id} was moved at least once`);
    assert.deepEqual(x.closeCodes.filter((c) => c !== Close.reconnect), [], `${x.id}: closed with 4002 only`);
  }
  await allOnline(nodes, agents.map((x) => x.id));
  const reconnects = agents.flatMap((x) => x.reconnectMs).sort((a, b) => a - b);
  const refused = outcomes.filter((o) => !o.ok).length;
  console.log(
    `cluster: rolling restart — ${
      drains.map((d) => `${d.node} drained in ${d.drainMs} ms, up in ${d.startMs} ms`)
        .join("; ")
    }; ${reconnects.length} reconnects, ${reconnects[0]}–${reconnects.at(-1)} ms (median ${
      reconnects[Math.floor(reconnects.length / 2)]
    }); ${outcomes.length} sends, ${refused} refused (sent to a node draining or down), ${
      outcomes.length - refused
    } accepted and delivered`,
  );
});
