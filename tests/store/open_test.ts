/**
 * `openStore` (src/store/open.ts) as the service calls it, from the configuration read from an environment, on a real
 * PostgreSQL: DATABASE_POOL_SIZE bounds the connections one process opens, and a DATABASE_URL may name the server's
 * Unix socket instead of a TCP host.
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { parseConfig } from "../../src/config/config.ts";
import type { Message } from "../../src/core/message.ts";
import { openStore } from "../../src/store/open.ts";
import { eventually } from "../helpers.ts";
import { postgresTests } from "../support/postgres.ts";

/** A user's text message. */
function message(user: string): Message {
  return {
    id: `m-${user}`,
    direction: "in",
    channel: "wx_official_account",
    account: "wx1",
    contact: user,
    agent: "",
    company: "",
    type: "text",
    content: "hello",
    media: "",
    sendTime: 1,
    name: user,
    avatar: "",
  };
}

postgresTests("store opened from the configuration", {
  "DATABASE_POOL_SIZE: the process opens that many connections and no more": async (db) => {
    const store = await openStore(parseConfig({ STORE: "postgres", DATABASE_URL: db.url, DATABASE_POOL_SIZE: "3" }));
    const admin = postgres(db.url, { max: 1, onnotice: () => {} });
    // kefu's connections to this database: all of them, and those waiting on a lock.
    const pool = async (sql: Pick<postgres.Sql, "unsafe">) => {
      const [r] = await sql.unsafe(
        "SELECT count(*) AS n, count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting FROM pg_stat_activity " +
          "WHERE datname = current_database() AND application_name = 'kefu'",
      );
      return { open: Number(r.n), waiting: Number(r.waiting) };
    };
    try {
      await admin.unsafe(
        "INSERT INTO contacts (id, channel, account, user_id, agent, name, avatar, company, status, created_at) " +
          "SELECT 'u' || i, 'wx_official_account', 'wx1', 'u' || i, 'a1', '', '', '', 'open', 0 " +
          "FROM generate_series(0, 11) i",
      );
      let calls: Promise<unknown>[] = [];
      // A contact's change is a transaction, which holds a connection of its own (plain reads share one, pipelined):
      // with the contacts locked here, 12 of them want 12 connections and get what the pool has. A pool that ignored
      // the setting would open 10 (postgres.js opens what its queue wants at once), never 3 and 3.
      await admin.begin(async (tx) => {
        await tx.unsafe("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE");
        calls = Array.from({ length: 12 }, (_, i) => store.updateContact(`u${i}`, { note: "seen" }));
        await eventually("the pool's 3 connections, all waiting on the lock", async () => {
          // Paced: asking the server every 20 ms kept postgres.js's pool from opening its other connections here.
          await new Promise((r) => setTimeout(r, 250));
          const p = await pool(tx);
          return p.open === 3 && p.waiting === 3;
        }, 30_000);
      });
      // The lock is let go: every change is made.
      const notes = (await Promise.all(calls)).map((c) => (c as { note?: string } | undefined)?.note);
      assert.deepEqual(notes, Array(12).fill("seen"));
      assert.equal((await pool(admin)).open, 3);
    } finally {
      await admin.end();
      await store.close();
    }
  },

  "a DATABASE_URL on the server's Unix socket: the store opens, writes and reads there": async (db, server) => {
    const url = `postgres:///${db.name}?host=${server.dir}&port=${server.port}&user=postgres`;
    const store = await openStore(parseConfig({ STORE: "postgres", DATABASE_URL: url }));
    const admin = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      assert.equal(
        (await store.acceptInbound({ message: message("u1"), online: [], away: new Set() })).status,
        "stored",
      );
      const stats = await store.stats();
      assert.equal(stats.messages, 1);
      assert.equal(stats.path, url);
      // Over the socket indeed: the server sees no client address for kefu's connections.
      const rows = await admin.unsafe(
        "SELECT client_addr FROM pg_stat_activity WHERE datname = $1 AND application_name = 'kefu'",
        [db.name],
      );
      assert.ok(rows.length > 0 && rows.every((r) => r.client_addr === null), JSON.stringify(rows));
    } finally {
      await admin.end();
      await store.close();
    }
  },
});
