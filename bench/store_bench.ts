/**
 * Group commit on vs off: 10,000 inbound saves (acceptInbound: the contact found,
 * its owner decided, the message kept) into a fresh SQLite store, each awaited
 * until committed, under synchronous=NORMAL and FULL.
 *
 *     deno bench --allow-read --allow-write bench/store_bench.ts
 *
 * "all at once" issues the 10,000 saves together (load beyond what the store
 * takes); "100 in flight" keeps 100 outstanding, each answered request making
 * the next one, as 100 busy WeChat connections would.
 *
 * @module
 */

import type { Message } from "../src/core/message.ts";
import { SqliteStore, type SqliteStoreOptions } from "../src/store/sqlite_store.ts";
import { seedInbound } from "../tests/store/seed.ts";

const SAVES = 10_000;
const USERS = 1000;
const dir = Deno.makeTempDirSync({ prefix: "kefu_store_bench_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
let file = 0;
let msgId = 0;

function message(contact: string): Message {
  return {
    id: String(1_000_000_000_000_000n + BigInt(++msgId)),
    direction: "in",
    channel: "wx_official_account",
    contact,
    agent: "a1",
    company: "",
    account: "wx1",
    type: "text",
    content: "您好，请问我上周下的订单什么时候发货？单号 20240601",
    media: "",
    sendTime: 1_700_000_000 + msgId,
    name: contact,
    avatar: "",
  };
}

async function saves(b: Deno.BenchContext, options: Partial<SqliteStoreOptions>, inFlight: number): Promise<void> {
  const path = `${dir}/${++file}.db`;
  const store = new SqliteStore({ path, ...options });
  let left = SAVES;
  const next = async (): Promise<void> => {
    while (left-- > 0) {
      const user = `o${msgId % USERS}`;
      await seedInbound(store, message(user), { agent: "a1" });
    }
  };
  b.start();
  await Promise.all(Array.from({ length: inFlight }, next));
  b.end();
  await store.close();
  for (const f of [path, `${path}-wal`, `${path}-shm`]) await Deno.remove(f).catch(() => {});
}

const group = "10,000 inbound saves";
Deno.bench(
  "group commit on, NORMAL, all at once",
  { group, baseline: true, n: 10, warmup: 1 },
  async (b) => await saves(b, {}, SAVES),
);
Deno.bench(
  "group commit off, NORMAL, all at once",
  { group, n: 5, warmup: 1 },
  async (b) => await saves(b, { groupCommitMs: 0 }, SAVES),
);
Deno.bench("group commit on, NORMAL, 100 in flight", { group, n: 5, warmup: 1 }, async (b) => await saves(b, {}, 100));
Deno.bench(
  "group commit off, NORMAL, 100 in flight",
  { group, n: 5, warmup: 1 },
  async (b) => await saves(b, { groupCommitMs: 0 }, 100),
);
Deno.bench(
  "group commit on, FULL, all at once",
  { group, n: 10, warmup: 1 },
  async (b) => await saves(b, { synchronous: "FULL" }, SAVES),
);
Deno.bench(
  "group commit off, FULL, all at once",
  { group, n: 2, warmup: 1 },
  async (b) => await saves(b, { synchronous: "FULL", groupCommitMs: 0 }, SAVES),
);
