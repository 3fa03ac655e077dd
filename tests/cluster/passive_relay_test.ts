/**
 * Passive replies among nodes over the memory engine: three {@link PassiveReplies}, each with a {@link PassiveRelay}
 * and a {@link Mailbox} on one {@link MemoryBroker} (what Redis is between processes). The races the three-process test
 * (passive_test.ts) cannot aim at: several nodes taking at once, a holder that never answers, a hold that ends.
 */

import assert from "node:assert/strict";
import { type Engine, MemoryBroker, memoryEngine } from "../../src/cluster/engine.ts";
import { Mailbox } from "../../src/cluster/mailbox.ts";
import { PassiveRelay } from "../../src/cluster/passive_relay.ts";
import { PassiveReplies } from "../../src/channels/wx_official/passive_reply.ts";
import { KefuError } from "../../src/core/errors.ts";
import { silentLogger } from "../../src/core/log.ts";
import type { Message } from "../../src/core/message.ts";

function reply(content: string): Message {
  return {
    id: content,
    direction: "out",
    channel: "wx_official_account",
    contact: "oU",
    agent: "a1",
    company: "",
    type: "text",
    content,
    media: "",
    sendTime: 1_700_000_000,
    name: "",
    avatar: "",
  };
}

interface TestNode {
  id: string;
  engine: Engine;
  mailbox: Mailbox;
  passive: PassiveReplies;
}

/** Nodes n1… on one broker; `deaf` nodes never read their topic (as a node that was killed). */
async function nodes(n: number, deaf: string[] = []) {
  const broker = new MemoryBroker();
  const list: TestNode[] = [];
  for (let i = 1; i <= n; i++) {
    const id = `n${i}`;
    const engine = memoryEngine(broker);
    const mailbox = new Mailbox(engine, id, silentLogger);
    await engine.start({ message: (_topic, data) => mailbox.receive(data), up() {}, down() {} });
    if (!deaf.includes(id)) await engine.subscribe(mailbox.topic);
    const relay = new PassiveRelay({ engine, mailbox, log: silentLogger, askMs: 200, graceMs: 50 });
    list.push({ id, engine, mailbox, passive: new PassiveReplies({ shared: relay }) });
  }
  return {
    broker,
    list,
    async [Symbol.asyncDispose]() {
      for (const x of list) {
        x.passive.close();
        x.mailbox.close();
        await x.engine.stop();
      }
    },
  };
}

/** A request of WeChat's for user oU taken by `node`: opened, recorded, held (as the webhook does). */
async function request(node: TestNode, holdMs: number, aliveMs: number): Promise<Message | undefined> {
  assert.ok(node.passive.open("acc", "oU", holdMs));
  await node.passive.share("acc", "oU", holdMs);
  return await node.passive.hold("acc", "oU", aliveMs);
}

Deno.test("passive relay: a reply written on another node goes into the holder's live request", async () => {
  await using c = await nodes(2);
  const [n1, n2] = c.list;
  const held = request(n1, 2000, 1500);
  await new Promise((r) => setTimeout(r, 0));
  await n2.passive.offer("acc", "oU", reply("hi"));
  assert.equal((await held)?.content, "hi");
  // Answered: no node holds the user's requests any more, so another reply is refused at once.
  assert.equal(await n2.passive.isOpen("acc", "oU"), false);
  await assert.rejects(n2.passive.offer("acc", "oU", reply("again")), (e) => {
    assert.ok(e instanceof KefuError && e.kind === "passive_window_closed");
    return true;
  });
});

Deno.test("passive relay: a reply left between retries goes into one retry's answer, whichever nodes race", async () => {
  await using c = await nodes(3);
  const [n1, n2, n3] = c.list;
  // n1's request is presumed dropped at once (alive 1 ms): the reply waits in the cluster.
  const first = request(n1, 3000, 1);
  await new Promise((r) => setTimeout(r, 20));
  const offered = n2.passive.offer("acc", "oU", reply("late"));
  await new Promise((r) => setTimeout(r, 20));
  // WeChat's retry reaches n3 and, at the same moment, another reaches n2: one answer carries it.
  const [a, b] = await Promise.all([
    request(n3, 3000, 2000).then((m) => m?.content),
    // n2 holds its request 300 ms: it answers with nothing then, unless it carried the reply.
    request(n2, 300, 300).then((m) => m?.content),
  ]);
  await offered;
  assert.deepEqual([a, b].filter((x) => x !== undefined), ["late"], "exactly one answer carried it");
  assert.equal(await first, undefined, "the dropped request carried nothing");
});

Deno.test("passive relay: the holder silent and no retry: the reply is taken back and refused when the hold ends", async () => {
  await using c = await nodes(2, ["n1"]);
  const [n1, n2] = c.list;
  // n1 holds a live request but never reads its topic (killed, as far as n2 can tell).
  const held = request(n1, 400, 400);
  await new Promise((r) => setTimeout(r, 0));
  await assert.rejects(n2.passive.offer("acc", "oU", reply("lost?")), (e) => {
    assert.ok(e instanceof KefuError && e.kind === "passive_window_closed");
    assert.match(e.message, /no retry/);
    return true;
  });
  // Not left behind for the user's next message either.
  assert.equal(await c.list[0].engine.get("passive-offer:acc\noU"), undefined);
  await held;
});

Deno.test("passive relay: a second reply while one waits is refused; the first still goes out", async () => {
  await using c = await nodes(2);
  const [n1, n2] = c.list;
  const first = request(n1, 3000, 1);
  await new Promise((r) => setTimeout(r, 20));
  const one = n2.passive.offer("acc", "oU", reply("one"));
  await new Promise((r) => setTimeout(r, 20));
  await assert.rejects(n1.passive.offer("acc", "oU", reply("two")), /already waiting/);
  assert.equal((await request(n1, 3000, 2000))?.content, "one");
  await one;
  assert.equal(await first, undefined);
});

Deno.test("mailbox: a request to a node that does not answer resolves undefined after its timeout", async () => {
  await using c = await nodes(2, ["n2"]);
  const [n1] = c.list;
  n1.mailbox.handle("ping", () => "pong");
  assert.equal(await n1.mailbox.request("n2", "ping", {}, 100), undefined);
  assert.equal(await n1.mailbox.request("n1", "ping", {}, 2000), "pong");
});

Deno.test("passive relay: the confirmation lost, the reply still counts as carried (it went into the answer)", async () => {
  // n2 never hears its topic: n1's "carried" does not reach it.
  await using c = await nodes(2, ["n2"]);
  const [n1, n2] = c.list;
  const held = request(n1, 400, 400);
  await new Promise((r) => setTimeout(r, 0));
  await n2.passive.offer("acc", "oU", reply("heard?"));
  assert.equal((await held)?.content, "heard?");
});

Deno.test("passive relay: a draining holder still carries a reply handed over, then answers the rest", async () => {
  await using c = await nodes(2);
  const [n1, n2] = c.list;
  const held = request(n1, 3000, 300);
  await new Promise((r) => setTimeout(r, 0));
  const drained = n1.passive.drain(5000);
  await n2.passive.offer("acc", "oU", reply("while draining"));
  assert.equal((await held)?.content, "while draining");
  await drained;
  // Drained: nothing is held on n1 any more.
  assert.equal(await n1.passive.hold("acc", "oU", 100), undefined);
});
