/**
 * What the shared replay memory costs a webhook (issue 19): every signed webhook request is remembered once before it
 * is accepted — in cluster mode a Redis round trip (`SharedNonces.remember`: one EVAL of the `SET NX PX` script), one
 * process's Map otherwise (`InMemoryNonces`). On a real redis-server this script starts (tests/support/redis.ts).
 *
 *   deno task bench:nonces                    # a few seconds
 *   deno task bench:nonces --ops 20000
 *
 * Per memory, bounded in count (--ops) and time (--max-secs): one request at a time (the latency a webhook waits) and
 * 64 at once (WeChat's bursts; node-redis pipelines commands in flight on its one connection). Numbers: ops/s, latency
 * p50/p99 (ms), CPU of this process per op (µs).
 *
 * @module
 */

import { cpuUsage } from "node:process";
import {
  bodyDigest,
  InMemoryNonces,
  type NonceMemory,
  SharedNonces,
} from "../src/channels/wx_official/nonce_memory.ts";
import { redisSharedState } from "../src/cluster/redis_shared_state.ts";
import { parseFlags, round, summarize } from "./lib.ts";
import { startRedis } from "../tests/support/redis.ts";

const flags = parseFlags(Deno.args);
const OPS = Number(flags.get("ops") ?? 10_000);
const MAX_SECS = Number(flags.get("max-secs") ?? 10);
const WARMUP = 500;

async function run(memory: NonceMemory, label: string, concurrency: number): Promise<void> {
  const samples = new Float64Array(OPS);
  const digest = bodyDigest("<xml>…</xml>");
  const key = (i: number) => `gh_account\u00001765000000\u0000${label}-${concurrency}-${i}`;
  for (let i = 0; i < WARMUP; i++) await memory.remember(key(-i - 1), digest, Date.now() + 300_000);
  let next = 0;
  let done = 0;
  const deadline = performance.now() + MAX_SECS * 1000;
  const cpu0 = cpuUsage();
  const t0 = performance.now();
  const worker = async () => {
    while (next < OPS && performance.now() < deadline) {
      const i = next++;
      const s = performance.now();
      const known = await memory.remember(key(i), digest, Date.now() + 300_000);
      if (known !== undefined) throw new Error(`nonce ${i} was already known`);
      samples[done++] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuUsage(cpu0);
  const lat = summarize(samples, done);
  console.log(
    `${label.padEnd(8)} ${String(concurrency).padStart(2)} in flight: ${round(done / secs, 0)} ops/s, ` +
      `p50 ${lat.p50} ms, p99 ${lat.p99} ms, CPU ${round((cpu.user + cpu.system) / done, 1)} µs/op (${done} ops)`,
  );
}

await using redis = await startRedis();
const state = redisSharedState({ url: redis.url });
await state.start();
try {
  for (const concurrency of [1, 64]) {
    await run(new InMemoryNonces(), "memory", concurrency);
    await run(new SharedNonces({ state }), "redis", concurrency);
  }
} finally {
  await state.stop();
}
