/**
 * The SQLite side of automatic messages (issue 22): what kefu sent by itself, kept once per (contact, kind, key) so
 * that a restart or a second node never sends it again, and the open conversations idle long enough to resolve.
 * The store ({@link SqliteStore}) runs these inside its own writes and reads; this file only holds the statements.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { IdleContact, IdleScope } from "./store.ts";

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
  readonly #newer: StatementSync;

  constructor(db: DatabaseSync) {
    this.#claim = db.prepare(
      "INSERT INTO automatic_sent (contact, kind, key, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    );
    this.#forget = db.prepare("DELETE FROM automatic_sent WHERE at < ?");
    // The newest message either way through the conversation index (one step per contact, only for the contacts in
    // the scope: a pattern, less the patterns in the JSON array :except); a contact without any counts from its
    // creation (epoch seconds).
    this.#idle = db.prepare(
      "SELECT id, agent, channel, account, last_seq AS lastSeq, last_at AS lastAt FROM (SELECT *, " +
        "coalesce((SELECT stored_at FROM messages WHERE seq = last_seq), created_at * 1000) AS last_at FROM (" +
        "SELECT c.id, c.agent, c.channel, c.account, c.created_at, (SELECT m.seq FROM messages m " +
        "INDEXED BY messages_conversation WHERE m.contact = c.id ORDER BY m.seq DESC LIMIT 1) AS last_seq " +
        "FROM contacts c WHERE c.status = 'open' AND c.agent <> '' " +
        "AND (:channel IS NULL OR c.channel = :channel) AND (:account IS NULL OR c.account = :account) " +
        "AND NOT EXISTS (SELECT 1 FROM json_each(:except) e " +
        "WHERE coalesce(e.value ->> 'channel', c.channel) = c.channel " +
        "AND coalesce(e.value ->> 'account', c.account) = c.account))) " +
        "WHERE last_at < :before ORDER BY last_at, id LIMIT :limit",
    );
    this.#newer = db.prepare(
      "SELECT 1 FROM messages INDEXED BY messages_conversation WHERE contact = ? AND seq > ? LIMIT 1",
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

  /** Open conversations with an owner in `scope` whose newest message was stored before `before`, oldest first. */
  idle(before: number, limit: number, scope: IdleScope = {}): IdleContact[] {
    const params = {
      channel: scope.channel ?? null,
      account: scope.account ?? null,
      except: JSON.stringify(scope.except ?? []),
      before,
      limit,
    };
    return this.#idle.all(params).map((r) => ({
      id: String(r.id),
      agent: String(r.agent),
      channel: String(r.channel),
      account: String(r.account),
      lastAt: Number(r.lastAt),
      lastSeq: Number(r.lastSeq ?? 0),
    }));
  }

  /** Whether `contact` has a message with a seq above `seq` (the auto-resolve's condition, in the update's write). */
  hasMessageAfter(contact: string, seq: number): boolean {
    return this.#newer.get(contact, seq) !== undefined;
  }
}
