/**
 * The PostgreSQL side of automatic messages (issue 22): as sqlite_automatic.ts, the records of what kefu sent by
 * itself (the primary key decides who sends: a second node's insert finds the row) and the idle open conversations.
 * The store ({@link PostgresStore}) runs these statements through its own reads and writes.
 *
 * @module
 */

import type { IdleContact, IdleScope } from "./store.ts";

/** The schema step that adds what this file needs (appended to postgres_schema.ts's migrations). */
export const PG_AUTOMATIC_MIGRATION = {
  name: "automatic messages (issue 22): what kefu sent by itself, once per contact, kind and key",
  sql: `
    CREATE TABLE automatic_sent (
      contact text NOT NULL, kind text NOT NULL, key text NOT NULL, at bigint NOT NULL,
      PRIMARY KEY (contact, kind, key)
    );
    CREATE INDEX automatic_sent_at ON automatic_sent (at);`,
} as const;

/** The statements; parameters as numbered. */
export const AUTOMATIC_SQL = {
  /** $1 contact, $2 kind, $3 key, $4 at: one row back when it was not recorded before. */
  claim: "INSERT INTO automatic_sent (contact, kind, key, at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING " +
    "RETURNING contact",
  /** $1 before. */
  forget: "DELETE FROM automatic_sent WHERE at < $1",
  /**
   * $1 before, $2 limit, $3 channel, $4 account (null: any), $5 the patterns excepted (a JSON array of {channel,
   * account}): the newest message of each open conversation in the scope through the conversation index.
   */
  idle: 'SELECT c.id, c.agent, c.channel, c.account, n.seq AS "lastSeq", ' +
    'coalesce(n.stored_at, c.created_at * 1000) AS "lastAt" ' +
    "FROM contacts c LEFT JOIN LATERAL (SELECT m.seq, m.stored_at FROM messages m WHERE m.contact = c.id " +
    "ORDER BY m.seq DESC LIMIT 1) n ON true WHERE c.status = 'open' AND c.agent <> '' " +
    "AND ($3::text IS NULL OR c.channel = $3::text) AND ($4::text IS NULL OR c.account = $4::text) " +
    "AND NOT EXISTS (SELECT 1 FROM jsonb_to_recordset($5::text::jsonb) AS e(channel text, account text) " +
    "WHERE coalesce(e.channel, c.channel) = c.channel AND coalesce(e.account, c.account) = c.account) " +
    "AND coalesce(n.stored_at, c.created_at * 1000) < $1 ORDER BY 6, c.id LIMIT $2",
  /**
   * The condition of ContactChange.expectNoMessageAfter in the contact's UPDATE (`c`), its seq the parameter named:
   * run after the row is locked, so that a message committed meanwhile is seen (the accept path inserts under the
   * same lock).
   */
  noMessageAfter: (param: string): string =>
    `NOT EXISTS (SELECT 1 FROM messages m WHERE m.contact = c.id AND m.seq > ${param}::bigint)`,
} as const;

/** The parameters of {@link AUTOMATIC_SQL.idle}. */
export function idleParams(before: number, limit: number, scope: IdleScope = {}): (string | number | null)[] {
  return [before, limit, scope.channel ?? null, scope.account ?? null, JSON.stringify(scope.except ?? [])];
}

/** A row of {@link AUTOMATIC_SQL.idle} as kefu uses it. */
export function toIdle(r: Record<string, unknown>): IdleContact {
  return {
    id: String(r.id),
    agent: String(r.agent),
    channel: String(r.channel),
    account: String(r.account),
    lastAt: Number(r.lastAt),
    lastSeq: Number(r.lastSeq ?? 0),
  };
}
