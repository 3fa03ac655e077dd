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
 * p50/p99 (ms), CPU of this process per op (µs). Then the same for whole webhook requests (signed plaintext text
 * messages through the webhook's Hono app, in process; the accept path answers at once, so the store's commit — the
 * larger part of a real webhook — is left out and the share of the replay check is its largest).
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
import { wechatRoutes } from "../src/channels/wx_official/webhook.ts";
import { signature } from "../src/channels/wx_official/crypto.ts";
import { ReplyWindows } from "../src/channels/wx_official/reply_window.ts";
import { PassiveReplies } from "../src/channels/wx_official/passive_reply.ts";
import { silentLogger } from "../src/core/log.ts";

const flags = parseFlags(Deno.args);
const OPS = Number(flags.get("ops") ?? 10_000);
const MAX_SECS = Number(flags.get("max-secs") ?? 10);
const WARMUP = 500;

/** One step of a measurement: resolves once operation `i` is done. */
type Op = (i: number) => Promise<void>;

async function run(memory: NonceMemory, label: string, concurrency: number): Promise<void> {
  const digest = bodyDigest("<xml>…</xml>");
  const key = (i: number) => `gh_account\u00001765000000\u0000${label}-${concurrency}-${i}`;
  await measure(`remember ${label}`, concurrency, async (i) => {
    const known = await memory.remember(key(i), digest, Date.now() + 300_000);
    if (known !== undefined) throw new Error(`nonce ${i} was already known`);
  });
}

/** Whole webhook requests, signed, each with a nonce of its own, through the webhook's app. */
async function webhook(memory: NonceMemory, label: string, concurrency: number): Promise<void> {
  const token = "bench-token";
  const app = wechatRoutes({
    accept: (m) => Promise.resolve({ status: "delivered", id: m.id, agent: "a", contact: m.contact, sockets: 1 }),
    log: silentLogger,
    accounts: [{
      appId: "",
      appSecret: "",
      token,
      encodingAesKey: "",
      companyId: "",
      apiBase: "http://127.0.0.1:9",
      tokenMode: "token",
      path: "/wechat",
      maxSkewSeconds: 300,
      autoReply: "",
      replyMode: "custom",
      passiveHoldMs: 14_000,
      passiveAttemptMs: 4_500,
    }],
    maxBodyBytes: 1 << 20,
    windows: new ReplyWindows(),
    passive: new PassiveReplies(),
    nonces: memory,
  });
  await measure(`webhook ${label}`, concurrency, async (i) => {
    const ts = String(Math.floor(Date.now() / 1000));
    const nonce = `${label}-${concurrency}-${i}`;
    const body = `<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oU${i % 100}]]></FromUserName>` +
      `<CreateTime>${ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello ${i}]]></Content>` +
      `<MsgId>${i}</MsgId></xml>`;
    const url = `http://kefu/wechat?signature=${signature(token, ts, nonce)}&timestamp=${ts}&nonce=${nonce}`;
    const res = await app.fetch(new Request(url, { method: "POST", body }));
    const text = await res.text();
    if (text !== "success") throw new Error(`webhook ${i}: HTTP ${res.status} ${text}`);
  });
}

async function measure(label: string, concurrency: number, op: Op): Promise<void> {
  const samples = new Float64Array(OPS);
  for (let i = 0; i < WARMUP; i++) await op(-i - 1);
  let next = 0;
  let done = 0;
  const deadline = performance.now() + MAX_SECS * 1000;
  const cpu0 = cpuUsage();
  const t0 = performance.now();
  const worker = async () => {
    while (next < OPS && performance.now() < deadline) {
      const i = next++;
      const s = performance.now();
      await op(i);
      samples[done++] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuUsage(cpu0);
  const lat = summarize(samples, done);
  console.log(
    `${label.padEnd(16)} ${String(concurrency).padStart(2)} in flight: ${round(done / secs, 0)} ops/s, ` +
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
  for (const concurrency of [1, 64]) {
    await webhook(new InMemoryNonces(), "memory", concurrency);
    await webhook(new SharedNonces({ state }), "redis", concurrency);
  }
} finally {
  await state.stop();
}
