/**
 * The SQLite side of automatic messages (issue 22): what kefu sent by itself, kept once per (contact, kind, key) so
 * that a restart or a second node never sends it again, and the open conversations idle long enough to resolve.
 * The store ({@link SqliteStore}) runs these inside its own writes and reads; this file only holds the statements.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { IdleContact } from "./store.ts";

/** The schema step that adds what this file needs (appended to sqlite_store.ts's migrations). */
export const SQLITE_AUTOMATIC_MIGRATION = {
  name: "automatic messages (issue 22): what kefu sent by itself, once per contact, kind and key",
  // `at` (epoch ms) lets old records be forgotten with the messages they were about.
  sql: `
    CREATE TABLE automatic_sent (
      contact TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, at INTEGER NOT NULL,
      PRIMARY KEY (contact, kind, key)
    ) WITHOUT ROWID;
    CREATE INDEX automatic_sent_at ON automatic_sent (at);`,
} as const;

/** The statements of automatic messages on one SQLite connection. */
export class SqliteAutomatic {
  readonly #claim: StatementSync;
  readonly #forget: StatementSync;
  readonly #idle: StatementSync;

  constructor(db: DatabaseSync) {
    this.#claim = db.prepare(
      "INSERT INTO automatic_sent (contact, kind, key, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    );
    this.#forget = db.prepare("DELETE FROM automatic_sent WHERE at < ?");
    // The newest message either way through the conversation index (one step per contact); a contact without any
    // counts from its creation (epoch seconds).
    this.#idle = db.prepare(
      "SELECT id, agent, channel, account, last_at AS lastAt FROM (SELECT c.id, c.agent, c.channel, c.account, " +
        "coalesce((SELECT m.stored_at FROM messages m INDEXED BY messages_conversation WHERE m.contact = c.id " +
        "ORDER BY m.seq DESC LIMIT 1), c.created_at * 1000) AS last_at FROM contacts c " +
        "WHERE c.status = 'open' AND c.agent <> '') WHERE last_at < ? ORDER BY last_at, id LIMIT ?",
    );
  }

  /** Record `kind`/`key` for `contact` at `at`; true when it was not recorded before. */
  claim(contact: string, kind: string, key: string, at: number): boolean {
    return this.#claim.run(contact, kind, key, at).changes > 0;
  }

  /** Forget the records made before `before`; how many went. */
  forget(before: number): number {
    return Number(this.#forget.run(before).changes);
  }

  /** Open conversations with an owner whose newest message was stored before `before`, oldest first. */
  idle(before: number, limit: number): IdleContact[] {
    return this.#idle.all(before, limit).map((r) => ({
      id: String(r.id),
      agent: String(r.agent),
      channel: String(r.channel),
      account: String(r.account),
      lastAt: Number(r.lastAt),
    }));
  }
}
