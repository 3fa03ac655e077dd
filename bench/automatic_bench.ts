/**
 * What automatic messages' timed work costs the store (issue 22): `idleContacts` (auto-resolve's pass, every 5 s on the
 * node holding the lease) over many open conversations, and `claimAutomatic` (one per automatic message), on SQLite
 * (a file; its reads run on the event loop) and PostgreSQL (a real server started here as the tests start it).
 *
 *     deno run --allow-all bench/automatic_bench.ts [--contacts 20000] [--messages 3] [--runs 20] [--engines sqlite,postgres]
 *
 * Every loop is bounded in count.
 *
 * @module
 */

import type { Message } from "../src/core/message.ts";
import { openPostgresStore } from "../src/store/postgres_store.ts";
import { SqliteStore } from "../src/store/sqlite_store.ts";
import type { Store } from "../src/store/store.ts";
import { startPostgres } from "../tests/support/postgres.ts";
import { nowMs, parseFlags, round } from "./lib.ts";

const flags = parseFlags(Deno.args);
const CONTACTS = Number(flags.get("contacts") ?? 20_000);
const MESSAGES = Number(flags.get("messages") ?? 3);
const RUNS = Number(flags.get("runs") ?? 20);
const ENGINES = (flags.get("engines") ?? "sqlite,postgres").split(",");
const CALLERS = 32;
const nobody = new Set<string>();

let n = 0;
function message(user: string): Message {
  return {
    id: `m${++n}`,
    direction: "in",
    channel: "wx_official_account",
    account: "wx1",
    contact: user,
    agent: "",
    company: "",
    type: "text",
    content: "hello",
    media: "",
    sendTime: Math.floor(Date.now() / 1000),
    name: user,
    avatar: "",
  };
}

async function seed(store: Store): Promise<void> {
  let next = 0;
  const total = CONTACTS * MESSAGES;
  await Promise.all(Array.from({ length: CALLERS }, async () => {
    while (next < total) {
      const i = next++;
      const user = `o${i % CONTACTS}`;
      await store.acceptInbound({ message: message(user), requested: `a${i % 50}`, online: [], away: nobody });
    }
  }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function measure(engine: string, store: Store): Promise<void> {
  const t0 = nowMs();
  await seed(store);
  const seeded = nowMs() - t0;
  // Every conversation idle (cutoff in the future): the pass reads its page of 200 out of all open ones.
  const idle: number[] = [];
  let found = 0;
  for (let r = 0; r < RUNS; r++) {
    const t = nowMs();
    found = (await store.idleContacts(Date.now() + 60_000, 200)).length;
    idle.push(nowMs() - t);
  }
  // None idle (cutoff before everything): what a pass costs when there is nothing to do.
  const none: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t = nowMs();
    await store.idleContacts(0, 200);
    none.push(nowMs() - t);
  }
  // A rule's scope (issue 22's pass asks per rule): its channel less a more specific rule's account; all in it idle.
  const scoped: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t = nowMs();
    await store.idleContacts(Date.now() + 60_000, 200, {
      channel: "wx_official_account",
      except: [{ account: "wx2" }],
    });
    scoped.push(nowMs() - t);
  }
  const claims: number[] = [];
  for (let r = 0; r < RUNS * 10; r++) {
    const t = nowMs();
    await store.claimAutomatic(`o${r}`, "please_wait", "1");
    claims.push(nowMs() - t);
  }
  console.log(JSON.stringify({
    engine,
    contacts: CONTACTS,
    messages: CONTACTS * MESSAGES,
    seed_s: round(seeded / 1000, 1),
    idle_page_ms_median: round(median(idle), 2),
    idle_page_ms_max: round(Math.max(...idle), 2),
    idle_found: found,
    idle_none_ms_median: round(median(none), 2),
    idle_scoped_ms_median: round(median(scoped), 2),
    claim_ms_median: round(median(claims), 3),
  }));
}

for (const engine of ENGINES) {
  if (engine === "sqlite") {
    const dir = await Deno.makeTempDir({ prefix: "kefu-automatic-bench-" });
    const store = new SqliteStore({ path: `${dir}/kefu.db` });
    try {
      await measure("sqlite", store);
    } finally {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    }
  } else if (engine === "postgres") {
    await using pg = await startPostgres();
    await using db = await pg.createDatabase();
    const store = await openPostgresStore({ url: db.url, max: CALLERS });
    try {
      await measure("postgres", store);
    } finally {
      await store.close();
    }
  } else {
    throw new Error(`--engines: unknown engine ${JSON.stringify(engine)} (sqlite, postgres)`);
  }
}
