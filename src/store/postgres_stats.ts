/**
 * The PostgreSQL store's counters (`Store.stats()`), which /healthz, /readyz and the metrics ask for every few
 * seconds: exact counts where they are cheap, PostgreSQL's own estimate where they are not (issue 19).
 *
 * - `unread` is always counted: it reads the partial index `messages_unread` (inbound, not yet read), which stays
 *   small while agents read their messages.
 * - `messages` and `contacts` are counted while the table's heap is under {@link EXACT_BELOW_BYTES} (a count then
 *   costs ~13 ms at 80,000 messages); above, `count(*)` reads the whole table (~240 ms at 1,000,000 messages, every
 *   call), so the figure is the planner's estimate: the density `reltuples / relpages` of the last VACUUM or ANALYZE
 *   times the heap's pages now (the planner's own arithmetic), or, on a table never vacuumed nor analyzed, the
 *   statistics' live-row count (`n_live_tup`). Such a figure is named in `estimates`.
 *
 * @module
 */

import type postgres from "postgres";

/** What {@link readStats} runs its statement on: the pool or a transaction of it. */
export type StatsDb = Pick<postgres.Sql, "unsafe">;

/** The store's figures as {@link readStats} reads them. */
export interface PostgresFigures {
  messages: number;
  contacts: number;
  unread: number;
  /** `pg_database_size`: every file of the database, indexes and TOAST included. */
  bytes: number;
  /** The figures that are PostgreSQL's estimate rather than a count. */
  estimates: ("messages" | "contacts")[];
}

/** Below this heap size a table's rows are counted (16 MiB: ~100,000 messages; counting 80,000 took ~13 ms). */
export const EXACT_BELOW_BYTES = 16 * 1024 * 1024;

// The table's rows: counted when its heap is small, else estimated. CASE evaluates only the branch it takes (each
// subquery is an InitPlan run on first use), so a large table is never scanned.
function rows(table: "messages" | "contacts"): string {
  const estimate = "CASE WHEN c.reltuples > 0 AND c.relpages > 0 THEN round(c.reltuples / c.relpages * " +
    "(pg_relation_size(c.oid) / current_setting('block_size')::bigint))::bigint ELSE pg_stat_get_live_tuples(c.oid) END";
  return `CASE WHEN pg_relation_size('${table}'::regclass) < $1 THEN (SELECT count(*) FROM ${table}) ` +
    `ELSE (SELECT ${estimate} FROM pg_class c WHERE c.oid = '${table}'::regclass) END AS ${table}, ` +
    `pg_relation_size('${table}'::regclass) >= $1 AS "${table}Estimated"`;
}

/** The statement {@link readStats} runs; `$1` is the size below which a table is counted. */
export const STATS_SQL = `SELECT ${rows("messages")}, ${rows("contacts")}, ` +
  "(SELECT count(*) FROM messages WHERE direction = 'in' AND state <> 'acked') AS unread, " +
  "pg_database_size(current_database()) AS bytes";

/** Read the store's figures in one statement; a table of `exactBelowBytes` or more is estimated. */
export async function readStats(db: StatsDb, exactBelowBytes = EXACT_BELOW_BYTES): Promise<PostgresFigures> {
  const [r] = await db.unsafe(STATS_SQL, [exactBelowBytes], { prepare: true });
  const estimates: PostgresFigures["estimates"] = [];
  if (r.messagesEstimated) estimates.push("messages");
  if (r.contactsEstimated) estimates.push("contacts");
  return {
    messages: Number(r.messages),
    contacts: Number(r.contacts),
    unread: Number(r.unread),
    bytes: Number(r.bytes),
    estimates,
  };
}
