/**
 * Which npm Redis client the cluster mode (issue 19) uses: `ioredis` against `redis` (node-redis), on a real
 * redis-server that this script starts (tests/support/redis.ts: Debian's package, a temp dir, 127.0.0.1).
 *
 *   deno task bench:redis                      # about half a minute
 *   deno task bench:redis --ops 2000 --rounds 3
 *
 * Per client, bounded in count (--ops) and time (--max-secs):
 * - lease: `SET key owner NX PX 15000` (taking a lease), one at a time and 16 at once;
 * - pub/sub: PUBLISH on one connection until the SUBSCRIBEd other gets it, one message in flight;
 * - stream: XADD on one connection until a blocking XREAD on another returns it, one entry in flight;
 * - restart: Redis restarted under a subscription: how long until a PUBLISH reaches the subscriber again (does the
 *   client reconnect and subscribe again by itself?).
 * Numbers: ops/s, latency p50/p99 (ms), CPU of this process per op (µs).
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- compared only here: not a dependency of kefu
import { Redis } from "npm:ioredis@6.1.0";
import { createClient } from "redis";
import { cpuUsage } from "node:process";
import { parseFlags, round, summarize } from "./lib.ts";
import { type RedisServer, startRedis } from "../tests/support/redis.ts";

const flags = parseFlags(Deno.args);
const OPS = Number(flags.get("ops") ?? 3000);
const MAX_SECS = Number(flags.get("max-secs") ?? 10);
const ROUNDS = Number(flags.get("rounds") ?? 1);
const CONC = 16;
const WARMUP = 300;

/** What a client must do for the scenarios; `subscribe` and `read` use connections of their own. */
interface Client {
  lease(key: string): Promise<boolean>;
  publish(channel: string, message: string): Promise<unknown>;
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
  xadd(stream: string, value: string): Promise<string>;
  /** Blocking XREAD after `id`; the entries' ids and values. */
  xread(stream: string, id: string): Promise<Array<{ id: string; value: string }>>;
  close(): Promise<void>;
}

function ioredis(url: string): Client {
  const opts = { maxRetriesPerRequest: null, retryStrategy: () => 50 };
  const cmd = new Redis(url, opts);
  const sub = new Redis(url, opts);
  const blocking = new Redis(url, opts);
  // An 'error' event with no listener would throw: a restart is expected here, and the clients reconnect.
  for (const c of [cmd, sub, blocking]) c.on("error", () => {});
  return {
    lease: async (key) => (await cmd.set(key, "node-a", "PX", 15000, "NX")) === "OK",
    publish: (channel, message) => cmd.publish(channel, message),
    async subscribe(channel, onMessage) {
      sub.on("message", (_ch: string, message: string) => onMessage(message));
      await sub.subscribe(channel);
    },
    xadd: async (stream, value) => (await cmd.xadd(stream, "*", "v", value))!,
    async xread(stream, id) {
      const res = await blocking.xread("BLOCK", 5000, "STREAMS", stream, id);
      return (res?.[0]?.[1] ?? []).map(([entryId, fields]) => ({ id: entryId, value: fields[1] }));
    },
    async close() {
      await Promise.all([cmd.quit(), sub.quit(), blocking.quit()]);
    },
  };
}

async function nodeRedis(url: string): Promise<Client> {
  const cmd = createClient({ url, socket: { reconnectStrategy: () => 50 } });
  cmd.on("error", () => {});
  await cmd.connect();
  const sub = cmd.duplicate();
  const blocking = cmd.duplicate();
  for (const c of [sub, blocking]) c.on("error", () => {});
  await Promise.all([sub.connect(), blocking.connect()]);
  return {
    lease: async (key) =>
      (await cmd.set(key, "node-a", { condition: "NX", expiration: { type: "PX", value: 15000 } })) === "OK",
    publish: (channel, message) => cmd.publish(channel, message),
    subscribe: (channel, onMessage) => sub.subscribe(channel, (message) => onMessage(message)),
    xadd: (stream, value) => cmd.xAdd(stream, "*", { v: value }),
    async xread(stream, id) {
      const res = await blocking.xRead({ key: stream, id }, { BLOCK: 5000 }) as
        | Array<{ messages: Array<{ id: string; message: Record<string, string> }> }>
        | null;
      return (res?.[0]?.messages ?? []).map((m) => ({ id: m.id, value: m.message.v }));
    },
    async close() {
      await Promise.all([cmd.close(), sub.close(), blocking.close()]);
    },
  };
}

const CLIENTS: Record<string, (url: string) => Client | Promise<Client>> = {
  "ioredis@6.1.0": ioredis,
  "redis@6.4.0": nodeRedis,
};

/** One measured scenario. */
interface Row {
  client: string;
  scenario: string;
  ops: number;
  opsPerSec: number;
  p50: number | null;
  p99: number | null;
  clientCpuUs: number;
}

async function measure(
  client: string,
  scenario: string,
  conc: number,
  ops: number,
  op: (i: number) => Promise<unknown>,
): Promise<Row> {
  const lat = new Float64Array(ops);
  let next = 0;
  let done = 0;
  const deadline = performance.now() + MAX_SECS * 1000;
  const cpu0 = cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < ops && performance.now() < deadline) {
      const i = next++;
      const s = performance.now();
      await op(i);
      lat[done++] = performance.now() - s;
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuUsage(cpu0);
  const l = summarize(lat, done);
  return {
    client,
    scenario,
    ops: done,
    opsPerSec: Math.round(done / secs),
    p50: l.p50,
    p99: l.p99,
    clientCpuUs: Math.round((cpu.user + cpu.system) / done),
  };
}

/** Resolves when `predicate` holds, checked on every call of the returned `poke`; rejects after `ms`. */
function waiter(ms: number, what: string) {
  let wake = () => {};
  const poke = () => wake();
  const until = async (predicate: () => boolean) => {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, 50);
      });
      clearTimeout(timer);
    }
  };
  return { poke, until };
}

async function benchClient(redis: RedisServer, name: string, r: number): Promise<Row[]> {
  const rows: Row[] = [];
  const client = await CLIENTS[name](redis.url);
  try {
    let leases = 0;
    const lease = () => client.lease(`lease:${r}:${name}:${leases++}`);
    for (let i = 0; i < WARMUP; i++) await lease();
    rows.push(await measure(name, "SET NX PX, 1", 1, OPS, lease));
    rows.push(await measure(name, "SET NX PX, 16", CONC, OPS * 4, lease));

    let received = -1;
    const pubsub = waiter(5000, `${name}: a published message`);
    const channel = `ch:${r}:${name}`;
    await client.subscribe(channel, (m) => {
      received = Number(m);
      pubsub.poke();
    });
    const roundTrip = async (i: number) => {
      await client.publish(channel, String(i));
      await pubsub.until(() => received >= i);
    };
    for (let i = 0; i < WARMUP; i++) await roundTrip(i);
    rows.push(await measure(name, "PUBLISH → subscriber", 1, OPS, (i) => roundTrip(WARMUP + i)));

    const stream = `st:${r}:${name}`;
    let last = "0-0";
    const streamRoundTrip = async (i: number) => {
      const [, entries] = await Promise.all([client.xadd(stream, String(i)), client.xread(stream, last)]);
      if (entries.at(-1)?.value !== String(i)) {
        throw new Error(`${name}: XREAD gave ${JSON.stringify(entries)}, not ${i}`);
      }
      last = entries.at(-1)!.id;
    };
    for (let i = 0; i < WARMUP; i++) await streamRoundTrip(i);
    rows.push(await measure(name, "XADD → XREAD BLOCK", 1, OPS, streamRoundTrip));

    // Redis restarted (from the stop on): publish every 50 ms until the subscriber hears one again (bounded: 15 s).
    const t0 = performance.now();
    await redis.restart();
    const mark = 1e9;
    let recovered: number | null = null;
    for (let i = 0; performance.now() - t0 < 15_000; i++) {
      await client.publish(channel, String(mark + i)).catch(() => {});
      if (received >= mark) {
        recovered = performance.now() - t0;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    rows.push({
      client: name,
      scenario: "restart → subscriber hears again (ms)",
      ops: recovered === null ? 0 : 1,
      opsPerSec: 0,
      p50: recovered === null ? null : round(recovered, 0),
      p99: null,
      clientCpuUs: 0,
    });
  } finally {
    await client.close();
  }
  return rows;
}

const redis = await startRedis();
try {
  console.log(
    `Redis ${await redis.cli("INFO", "server").then((s) =>
      s.match(/redis_version:(\S+)/)?.[1]
    )}, Deno ${Deno.version.deno}`,
  );
  const rows: Row[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const names = Object.keys(CLIENTS);
    for (let k = 0; k < names.length; k++) rows.push(...await benchClient(redis, names[(k + r) % names.length], r));
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  console.log(
    `\n| scenario | client | ops/s | p50 ms | p99 ms | client CPU µs/op |\n| --- | --- | --: | --: | --: | --: |`,
  );
  for (const [k, g] of Map.groupBy(rows, (row) => `${row.scenario}\t${row.client}`)) {
    const [scenario, client] = k.split("\t");
    const m = (f: (row: Row) => number | null) => median(g.map((row) => f(row) ?? NaN));
    console.log(
      `| ${scenario} | ${client} | ${m((x) => x.opsPerSec)} | ${m((x) => x.p50)} | ${m((x) => x.p99)} | ${
        m((x) => x.clientCpuUs)
      } |`,
    );
  }
} finally {
  await redis.close();
}
