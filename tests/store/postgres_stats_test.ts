/**
 * The PostgreSQL store's counters (src/store/postgres_stats.ts) on a real server: small tables counted, a table at
 * the size limit estimated (and named so), `unread` always counted. The limit is the function's parameter here, so
 * that a few thousand rows stand for the millions it is meant for.
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { openPostgresStore } from "../../src/store/postgres_store.ts";
import { readStats } from "../../src/store/postgres_stats.ts";
import { eventually } from "../helpers.ts";
import { postgresTests } from "../support/postgres.ts";

const CONTACTS = 300;

/** `n` messages from `first` over the 300 contacts: even ones inbound, one inbound in ten unread. */
async function seed(sql: postgres.Sql, first: number, n: number): Promise<void> {
  await sql.unsafe(
    "INSERT INTO contacts (id, channel, account, user_id, agent, name, avatar, company, status, created_at) " +
      "SELECT 'u' || i, 'wx_official_account', 'wx1', 'u' || i, 'a1', '', '', '', 'open', 0 " +
      `FROM generate_series(1, ${CONTACTS}) i ON CONFLICT DO NOTHING`,
  );
  await sql.unsafe(
    "INSERT INTO messages (id, direction, channel, account, contact, agent, company, type, content, media, " +
      "send_time, name, avatar, state, stored_at) " +
      "SELECT 'm' || i, CASE WHEN i % 2 = 0 THEN 'in' ELSE 'out' END, 'wx_official_account', 'wx1', " +
      `'u' || (i % ${CONTACTS} + 1), 'a1', '', 'text', 'some forty characters of a message, say', '', i, '', '', ` +
      "CASE WHEN i % 20 = 0 THEN 'accepted' WHEN i % 2 = 0 THEN 'acked' ELSE 'sent' END, i " +
      `FROM generate_series(${first}, ${first + n - 1}) i`,
  );
}

async function counts(sql: postgres.Sql): Promise<{ messages: number; contacts: number; unread: number }> {
  const [r] = await sql.unsafe(
    "SELECT (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM contacts) AS contacts, " +
      "(SELECT count(*) FROM messages WHERE direction = 'in' AND state <> 'acked') AS unread",
  );
  return { messages: Number(r.messages), contacts: Number(r.contacts), unread: Number(r.unread) };
}

postgresTests("postgres stats", {
  "small tables are counted exactly, and the store says no figure is an estimate": async (db) => {
    const store = await openPostgresStore({ url: db.url });
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await seed(sql, 1, 2000);
      const s = await store.stats();
      assert.deepEqual([s.messages, s.contacts, s.unread, s.estimates], [2000, 300, 100, []]);
      await sql.unsafe("UPDATE messages SET state = 'acked' WHERE direction = 'in' AND seq <= 1000");
      assert.deepEqual(await counts(sql), { messages: 2000, contacts: 300, unread: 50 });
      assert.equal((await store.stats()).unread, 50);
    } finally {
      await sql.end();
      await store.close();
    }
  },

  "at the size limit, messages and contacts are PostgreSQL's estimate, named so; unread stays a count": async (db) => {
    await (await openPostgresStore({ url: db.url })).close();
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await seed(sql, 1, 5000);
      // VACUUM (as autovacuum does after a bulk load) records each table's exact rows and pages.
      await sql.unsafe("VACUUM ANALYZE messages");
      await sql.unsafe("VACUUM ANALYZE contacts");
      const exact = await counts(sql);
      assert.deepEqual(exact, { messages: 5000, contacts: 300, unread: 250 });
      const estimated = await readStats(sql, 0);
      assert.deepEqual(estimated.estimates, ["messages", "contacts"]);
      assert.deepEqual([estimated.messages, estimated.contacts, estimated.unread], [5000, 300, 250]);
      // Rows added since: the density of the last VACUUM times the pages now, near the count, not stale at 5000.
      await seed(sql, 5001, 5000);
      const grown = await readStats(sql, 0);
      assert.ok(Math.abs(grown.messages - 10_000) <= 1000, `estimate ${grown.messages} for 10000 rows`);
      assert.equal(grown.unread, 500, "counted, not estimated");
      // Under the limit again, each is counted.
      const counted = await readStats(sql, 1 << 30);
      assert.deepEqual([counted.messages, counted.contacts, counted.estimates], [10_000, 300, []]);
      assert.ok(counted.bytes > 0);
    } finally {
      await sql.end();
    }
  },

  "a table never vacuumed nor analyzed is estimated from the statistics' live rows": async (db) => {
    await (await openPostgresStore({ url: db.url })).close();
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await seed(sql, 1, 3000);
      // The inserting session reports its rows to the statistics when it is idle (within a second or so).
      await eventually("the live-row estimate reaches the 3000 rows", async () => {
        const s = await readStats(sql, 0);
        assert.deepEqual(s.estimates, ["messages", "contacts"]);
        return s.messages === 3000 && s.contacts === 300;
      }, 30_000);
    } finally {
      await sql.end();
    }
  },
});
