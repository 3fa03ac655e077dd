/**
 * Passive replies across nodes (issue 19), measured on a real redis-server started here: what handing a reply to
 * the node that holds WeChat's request costs, against one node writing it into its own held request. Three nodes in
 * this process, each with its own two Redis connections (commands and subscriber), as three processes have.
 *
 * - `local`: the agent's node holds the request (no Redis on the way).
 * - `handed over`: the request is held on n1, the reply written on n2 (left in Redis, n1 asked over its topic).
 * - `left for a retry`: the reply waits in Redis; WeChat's retry reaches n3, which takes it as it starts holding.
 *
 * Each time is from the reply (or the retry) to the held request's answer. Every loop is bounded by `--rounds`.
 *
 *     deno run -A bench/passive_relay_bench.ts [--rounds 300]
 *
 * @module
 */

import { PassiveReplies } from "../src/channels/wx_official/passive_reply.ts";
import type { Engine } from "../src/cluster/engine.ts";
import { Mailbox } from "../src/cluster/mailbox.ts";
import { PassiveRelay } from "../src/cluster/passive_relay.ts";
import { redisEngine } from "../src/cluster/redis_engine.ts";
import { silentLogger } from "../src/core/log.ts";
import type { Message } from "../src/core/message.ts";
import { startRedis } from "../tests/support/redis.ts";
import { parseFlags, summarize } from "./lib.ts";

const flags = parseFlags(Deno.args);
const ROUNDS = Number(flags.get("rounds") ?? 300);

function reply(i: number): Message {
  return {
    id: `r${i}`,
    direction: "out",
    channel: "wx_official_account",
    contact: "u",
    agent: "a1",
    company: "",
    type: "text",
    content: `reply ${i}`,
    media: "",
    sendTime: 0,
    name: "",
    avatar: "",
  };
}

interface BenchNode {
  engine: Engine;
  mailbox: Mailbox;
  passive: PassiveReplies;
}

await using redis = await startRedis();
const nodes: BenchNode[] = [];
for (const id of ["n1", "n2", "n3"]) {
  const engine = redisEngine({ url: redis.url });
  const mailbox = new Mailbox(engine, id, silentLogger);
  await engine.start({ message: (_t, data) => mailbox.receive(data), up() {}, down() {} });
  await engine.subscribe(mailbox.topic);
  const relay = new PassiveRelay({ engine, mailbox, log: silentLogger });
  nodes.push({ engine, mailbox, passive: new PassiveReplies({ shared: relay }) });
}
const [n1, n2, n3] = nodes;

// Wrapped: an async function returning the hold's promise would wait for it.
async function held(
  node: BenchNode,
  user: string,
  aliveMs: number,
): Promise<{ answer: Promise<unknown> }> {
  node.passive.open("acc", user, 10_000);
  await node.passive.share("acc", user, 10_000);
  return { answer: node.passive.hold("acc", user, aliveMs) };
}

const results: Record<string, Float64Array> = {
  local: new Float64Array(ROUNDS),
  "handed over": new Float64Array(ROUNDS),
  "left for a retry": new Float64Array(ROUNDS),
};
for (let i = 0; i < ROUNDS; i++) {
  // local
  let { answer } = await held(n1, `l${i}`, 5000);
  let t0 = performance.now();
  await n1.passive.offer("acc", `l${i}`, reply(i));
  await answer;
  results.local[i] = performance.now() - t0;
  // handed over
  ({ answer } = await held(n1, `h${i}`, 5000));
  t0 = performance.now();
  await Promise.all([n2.passive.offer("acc", `h${i}`, reply(i)), answer]);
  results["handed over"][i] = performance.now() - t0;
  // left for a retry: n1's request is presumed dropped at once, the reply waits; the retry reaches n3.
  void await held(n1, `r${i}`, 0);
  const offered = n2.passive.offer("acc", `r${i}`, reply(i));
  // The reply is in Redis once n2 left it (bounded wait).
  for (let k = 0; k < 1000 && await n2.engine.get(`passive-offer:acc\nr${i}`) === undefined; k++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  t0 = performance.now();
  ({ answer } = await held(n3, `r${i}`, 5000));
  await answer;
  results["left for a retry"][i] = performance.now() - t0;
  await offered;
}

console.log(`rounds: ${ROUNDS}; redis-server on 127.0.0.1, three nodes in one process (six connections)`);
console.log("path               p50 ms   p90 ms   p99 ms   max ms");
for (const [name, samples] of Object.entries(results)) {
  const s = summarize(samples, ROUNDS);
  console.log(
    `${name.padEnd(18)} ${String(s.p50).padEnd(8)} ${String(s.p90).padEnd(8)} ${String(s.p99).padEnd(8)} ${s.max}`,
  );
}
for (const n of nodes) {
  n.passive.close();
  n.mailbox.close();
  await n.engine.stop();
}
