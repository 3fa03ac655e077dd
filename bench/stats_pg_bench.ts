/**
 * What `stats()` costs on PostgreSQL at scale (issue 19): /healthz and the metrics call it. A real server (started
 * here as the tests start it, fsync off), seeded with `--messages` rows (default 1,000,000) over 20,000 contacts by
 * `INSERT … SELECT generate_series` in batches, with 1% unread; then the exact counts kefu used to take and the store's
 * `stats()` are each timed `--runs` times (default 20), median and worst.
 *
 *     deno task bench:stats-pg [--messages 1000000] [--runs 20]
 *
 * Every loop is bounded in count and in time (`--seconds`, default 600, for the seeding).
 *
 * @module
 */

import postgres from "postgres";
import { openPostgresStore } from "../src/store/postgres_store.ts";
import { EXACT_BELOW_BYTES, STATS_SQL } from "../src/store/postgres_stats.ts";
import { startPostgres } from "../tests/support/postgres.ts";
import { nowMs, parseFlags, round } from "./lib.ts";

const flags = parseFlags(Deno.args);
const MESSAGES = Number(flags.get("messages") ?? 1_000_000);
const RUNS = Number(flags.get("runs") ?? 20);
const SECONDS = Number(flags.get("seconds") ?? 600);
const CONTACTS = 20_000;
const BATCH = 100_000;
// What stats() ran before issue 19: every figure an exact count.
const EXACT = "SELECT (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM contacts) AS contacts, " +
  "(SELECT count(*) FROM messages WHERE direction = 'in' AND state <> 'acked') AS unread, " +
  "pg_database_size(current_database()) AS bytes";

async function timed(label: string, runs: number, f: () => Promise<unknown>): Promise<void> {
  const ms: number[] = [];
  let last: unknown;
  for (let i = 0; i < runs; i++) {
    const t0 = nowMs();
    last = await f();
    ms.push(nowMs() - t0);
  }
  ms.sort((a, b) => a - b);
  console.log(
    `${label}: median ${round(ms[Math.floor(ms.length / 2)], 2)} ms, worst ${round(ms[ms.length - 1], 2)} ms ` +
      `(${runs} runs) → ${JSON.stringify(last)}`,
  );
}

await using pg = await startPostgres();
const deadline = Date.now() + SECONDS * 1000;
const store = await openPostgresStore({ url: pg.url });
const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
try {
  const t0 = nowMs();
  await sql.unsafe(
    "INSERT INTO contacts (id, channel, account, user_id, agent, name, avatar, company, status, created_at) " +
      "SELECT 'u' || i, 'wx_official_account', 'wx1', 'u' || i, 'a' || (i % 50), '', '', '', 'open', 0 " +
      `FROM generate_series(1, ${CONTACTS}) i`,
  );
  for (let from = 1; from <= MESSAGES; from += BATCH) {
    if (Date.now() > deadline) throw new Error(`out of time while seeding at ${from} messages`);
    const to = Math.min(MESSAGES, from + BATCH - 1);
    await sql.unsafe(
      "INSERT INTO messages (id, direction, channel, account, contact, agent, company, type, content, media, " +
        "send_time, name, avatar, state, stored_at) " +
        "SELECT 'm' || i, CASE WHEN i % 2 = 0 THEN 'in' ELSE 'out' END, 'wx_official_account', 'wx1', " +
        `'u' || (i % ${CONTACTS} + 1), 'a' || (i % 50), '', 'text', 'a message of some forty characters, say', '', ` +
        "1700000000 + i, '', '', CASE WHEN i % 2 = 0 AND i % 100 <> 0 THEN 'acked' WHEN i % 2 = 0 THEN 'accepted' " +
        `ELSE 'sent' END, 1700000000000 + i FROM generate_series(${from}, ${to}) i`,
    );
  }
  console.log(`seeded ${MESSAGES} messages, ${CONTACTS} contacts in ${round((nowMs() - t0) / 1000, 1)} s`);
  // As after the autovacuum that follows a bulk load; a fresh table without it is timed too, below.
  await sql.unsafe("VACUUM ANALYZE messages");
  await sql.unsafe("VACUUM ANALYZE contacts");
  await timed("exact counts (before)", RUNS, async () => (await sql.unsafe(EXACT))[0]);
  await timed("store.stats()", RUNS, () => store.stats());
  await timed(
    "unread alone (partial index)",
    RUNS,
    async () => (await sql.unsafe("SELECT count(*) AS n FROM messages WHERE direction = 'in' AND state <> 'acked'"))[0],
  );
  await timed(
    "pg_database_size alone",
    RUNS,
    async () => (await sql.unsafe("SELECT pg_database_size(current_database()) AS n"))[0],
  );
  // The large table's count(*) must not run at all: its InitPlan says "never executed".
  const plan = (await sql.unsafe(`EXPLAIN (ANALYZE, COSTS OFF) ${STATS_SQL}`, [EXACT_BELOW_BYTES]))
    .map((r) => r["QUERY PLAN"]).join("\n");
  console.log(`plan:\n${plan}`);
  const [{ size }] = await sql.unsafe("SELECT pg_size_pretty(pg_relation_size('messages')) AS size");
  console.log(`messages heap: ${size}`);
} finally {
  await sql.end();
  await store.close();
}
