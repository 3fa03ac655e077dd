/**
 * Several kefu nodes on one PostgreSQL and one Redis (issue 19), each a child process on 127.0.0.1: messages taken by
 * any node reach their agent on any node once; replies and transfers work across nodes; a node killed with SIGKILL
 * loses nothing accepted and its agents count as offline (their users move on); a Redis restart loses nothing and
 * delivery resumes; a SIGTERM drains a node with the close code that makes the page reconnect at once.
 */

import assert from "node:assert/strict";
import { Close } from "../../src/envelope/protocol.ts";
import { startPostgres } from "../support/postgres.ts";
import { startRedis } from "../support/redis.ts";
import { eventually } from "../helpers.ts";
import { Agent, gotAll, load, missing, onlineOn, push, type Sent, startNodes } from "./cluster_support.ts";

// Bounded: every loop below sends at most this many messages.
const MESSAGES = 90;

Deno.test("cluster: three nodes on PostgreSQL and Redis", async (t) => {
  await using pg = await startPostgres();

  await t.step("messages taken by any node reach their agent once; a reply and a transfer cross nodes", async () => {
    await using db = await pg.createDatabase();
    await using redis = await startRedis();
    // Replies to pushed users go to PUSH_REPLY_URL: a server of this test's own counts them.
    const replies: unknown[] = [];
    await using replyServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      replies.push(await req.json());
      return Response.json({ ok: true });
    });
    const replyUrl = `http://127.0.0.1:${replyServer.addr.port}/reply`;
    await using nodes = await startNodes(3, { databaseUrl: db.url, redisUrl: redis.url }, {
      PUSH_REPLY_URL: replyUrl,
    });
    await using a = new Agent("A");
    await using b = new Agent("B", { acks: false }); // the seed's protocol: no read receipts
    await using c = new Agent("C");
    await a.connect(nodes[0]);
    await b.connect(nodes[1]);
    await c.connect(nodes[2]);
    // Each node knows all three are online before traffic starts (presence travels by notice and heartbeat).
    for (const node of nodes) {
      await eventually(`${node.id} sees A, B and C online`, async () => {
        const online = await onlineOn(node);
        return ["A", "B", "C"].every((x) => online.get(x) === true);
      }, 10_000);
    }

    const agents = [a, b, c];
    const sent = new Map<Agent, string[]>(agents.map((x) => [x, []]));
    for (let i = 0; i < MESSAGES; i++) {
      const to = agents[i % 3];
      // The node is chosen apart from the agent: most messages are taken by a node the agent is not on.
      const id = await push(nodes[Math.floor(i / 3) % 3], `u${i % 9}-${to.id}`, to.id, `m${i}`);
      assert.ok(id, `message m${i} was accepted`);
      sent.get(to)!.push(id);
    }
    for (const x of agents) {
      await eventually(`${x.id} got its ${sent.get(x)!.length} messages`, () => gotAll(x, sent.get(x)!), 15_000);
    }
    // A little while for a second copy, if any were coming.
    await new Promise((r) => setTimeout(r, 500));
    for (const x of agents) {
      assert.deepEqual(x.duplicates(), [], `${x.id}: every message once`);
      assert.deepEqual([...x.got.keys()].sort(), [...sent.get(x)!].sort(), `${x.id}: only its own messages`);
    }

    // B (no receipts, on n2) read what it was written, whichever node took it: nothing of B's is unread.
    const bContact = await contactOf(nodes[0], "B", "u1-B");
    assert.equal(bContact.unread, 0, "B's messages are read once written to its socket on another node");

    // A reply by B on n2 to a user whose messages n1 took: sent, confirmed to B (103).
    b.socket!.send(JSON.stringify({
      data: { id: "reply-1", msg_type: "text", contact_id: "u1-B", msg: { content: "hello from n2" } },
    }));
    await eventually("B's reply was confirmed (103)", () => b.withCode(103).some((e) => e.data.id === "reply-1"));
    assert.equal(replies.length, 1, "the reply went out once");

    // A transfer asked of n1 (A is on n1): C on n3 gets the contact (106) and its unread messages.
    await push(nodes[1], "vip-A", "A", "vip-1");
    await eventually("A got vip-1", () => a.got.has("vip-1"));
    a.socket!.close(); // A reads no more: vip-2 stays unread and goes along with the transfer
    await a.closed;
    await push(nodes[2], "vip-A", "A", "vip-2");
    const moved = await fetch(
      `${nodes[0].http}/im_component/wx_official_account/contacts/vip-A/transfer?userid=A`,
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ to_agent_id: "C" }) },
    );
    assert.equal(moved.status, 200, await moved.text());
    await eventually(
      "C heard of the transfer (106) on n3",
      () => c.withCode(106).some((e) => e.data.action === "transferred" && e.data.contact.contact_id === "vip-A"),
    );
    await eventually("C got the unread message that went along", () => c.got.has("vip-2"));

    // SIGTERM on n3: C's socket closes with the code that makes the page reconnect at once; n3 exits cleanly and
    // its agents are offline for the other nodes at once.
    const [closed, code] = await Promise.all([c.closed, nodes[2].terminate()]);
    assert.equal(closed.code, Close.reconnect);
    assert.equal(code, 0);
    await eventually("n1 sees C offline after n3 drained", async () => (await onlineOn(nodes[0])).get("C") === false);
  });

  await t.step(
    "SIGKILL of a node while messages flow: nothing accepted is lost; its offline agent's user moves",
    async () => {
      await using db = await pg.createDatabase();
      await using redis = await startRedis();
      await using nodes = await startNodes(3, { databaseUrl: db.url, redisUrl: redis.url }, {
        REASSIGN_AFTER_SECONDS: "2",
      });
      await using a = new Agent("A"); // on n1, reconnects to another node at once after the kill
      await using b = new Agent("B"); // on n2
      await using d = new Agent("D"); // on n1, does not come back
      await a.connect(nodes[0]);
      await b.connect(nodes[1]);
      await d.connect(nodes[0]);
      for (const node of nodes) {
        await eventually(`${node.id} sees A, B and D online`, async () => {
          const online = await onlineOn(node);
          return ["A", "B", "D"].every((x) => online.get(x) === true);
        }, 10_000);
      }
      // D's user, whose next message comes while D is gone.
      assert.ok(await push(nodes[1], "ud", "D", "d-1"));
      await eventually("D got d-1", () => d.got.has("d-1"));

      // Messages keep flowing to all three nodes (several in flight) while n1 dies: n1 is killed once a third of
      // them went; A's tab reconnects at once through the load balancer, to a node that is up.
      a.follow(() => nodes[1]);
      let killedAt = 0;
      const outcomes: Sent[] = [];
      const driver = (async () => {
        await eventually("a third of the load went", () => outcomes.length >= MESSAGES / 3, 60_000);
        const t0 = Date.now();
        await nodes[0].kill();
        killedAt = t0;
      })();
      await load({ count: MESSAGES, concurrency: 4, paceMs: 20, ms: 60_000 }, async (i) => {
        const to = i % 2 === 0 ? a : b;
        const node = nodes[i % 3];
        const id = await push(node, `k${i % 6}-${to.id}`, to.id, `k${i}`);
        return { id: `k${i}`, node: node.id, ok: id !== undefined };
      }, outcomes);
      await driver;
      const accepted = new Map<Agent, string[]>([[a, []], [b, []]]);
      for (const o of outcomes) if (o.ok) accepted.get(Number(o.id.slice(1)) % 2 === 0 ? a : b)!.push(o.id);
      assert.ok(outcomes.filter((o) => o.ok).length > MESSAGES / 2, "most messages were accepted");
      assert.ok(outcomes.some((o) => o.ok && o.start > killedAt), "messages were accepted after the kill");
      for (const x of [a, b]) {
        await eventually(`${x.id} got every accepted message`, () => gotAll(x, accepted.get(x)!), 20_000).catch((e) => {
          throw new Error(`${e.message}; missing: ${missing(x, accepted.get(x)!).join(",")}`);
        });
      }
      assert.deepEqual(a.closeCodes.length, 1, "A's socket closed once (the kill), then A was on n2");
      assert.deepEqual(b.duplicates(), [], "B, on a node that stayed, got each message once");
      // A may get again on its new socket what its old one got but had not yet acknowledged; never twice on one.
      assert.deepEqual(a.sameSocketDuplicates, [], "A: nothing twice on one socket");

      // D never came back: offline for the other nodes once n1's announcement expired.
      const offlineAfter: number[] = [];
      await Promise.all([nodes[1], nodes[2]].map((node) =>
        eventually(`${node.id} sees D offline`, async () => {
          if ((await onlineOn(node)).get("D") !== false) return false;
          offlineAfter.push(Date.now() - killedAt);
          return true;
        }, 15_000)
      ));
      // D's user writes again: the message waits for D (in the grace period), then goes to an online agent.
      assert.ok(await push(nodes[2], "ud", "D", "d-2"));
      await eventually(
        "ud's waiting message moved to an online agent",
        () => a.got.has("d-2") || b.got.has("d-2"),
        15_000,
      );
      console.log(
        `cluster: D offline on n2 and n3 ${offlineAfter.join(" and ")} ms after the SIGKILL of n1; A reconnected ` +
          `in ${a.reconnectMs.join(",")} ms; ${outcomes.filter((o) => o.ok).length} of ${outcomes.length} accepted`,
      );
    },
  );

  await t.step("Redis restarted while messages flow: nothing accepted is lost, delivery resumes", async () => {
    await using db = await pg.createDatabase();
    await using redis = await startRedis();
    await using nodes = await startNodes(3, { databaseUrl: db.url, redisUrl: redis.url });
    await using a = new Agent("A");
    await using b = new Agent("B", { acks: false });
    await a.connect(nodes[0]);
    await b.connect(nodes[1]);
    for (const node of nodes) {
      await eventually(`${node.id} sees A and B online`, async () => {
        const online = await onlineOn(node);
        return online.get("A") === true && online.get("B") === true;
      }, 10_000);
    }
    const accepted = new Map<Agent, string[]>([[a, []], [b, []]]);
    let stoppedAt = 0;
    let backAt = 0;
    for (let i = 0; i < MESSAGES; i++) {
      if (i === MESSAGES / 3) {
        await redis.stop();
        stoppedAt = Date.now();
      }
      if (i === (2 * MESSAGES) / 3) {
        // Away 3 s at least: longer than a heartbeat, so that every node noticed (the outage, not a blip).
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, 3_000 - (Date.now() - stoppedAt))));
        await redis.restart();
        backAt = Date.now();
      }
      const to = i % 2 === 0 ? a : b;
      // n3 has no agent: everything it takes crosses Redis (or waits in the store while Redis is away).
      const id = await push(nodes[i % 3], `r${i % 6}-${to.id}`, to.id, `r${i}`);
      assert.ok(id, `r${i} was accepted (the store takes it with Redis away)`);
      accepted.get(to)!.push(id);
    }
    for (const x of [a, b]) {
      await eventually(`${x.id} got every accepted message`, () => gotAll(x, accepted.get(x)!), 20_000).catch((e) => {
        throw new Error(`${e.message}; missing: ${missing(x, accepted.get(x)!).join(",")}`);
      });
    }
    const allAfter = Date.now() - backAt;
    // Delivery across nodes works again (live, not by a resync).
    const t0 = Date.now();
    assert.ok(await push(nodes[2], "after-A", "A", "after-1"));
    await eventually("A got a message taken by n3 after the restart", () => a.got.has("after-1"));
    console.log(
      `cluster: Redis away ${backAt - stoppedAt} ms (every message accepted meanwhile); all delivered ` +
        `${allAfter} ms after its return; a message across nodes then took ${Date.now() - t0} ms`,
    );
  });
});

// deno-lint-ignore no-explicit-any
async function contactOf(node: { http: string }, agent: string, id: string): Promise<any> {
  const res = await fetch(`${node.http}/im_component/wx_official_account/contacts?userid=${agent}`);
  const body = await res.json();
  // deno-lint-ignore no-explicit-any
  return body.data.contacts.find((c: any) => c.contact_id === id);
}
