/**
 * Search over an agent's conversations: messages whose text contains a piece of text, newest first. It is a scan of
 * the agent's own conversations (LIKE over the `messages_conversation` index), chosen by measurement over a
 * full-text index: FTS5's trigram index (the tokenizer that finds any part of a Chinese text) made every stored
 * message 2.7× as expensive to commit, on the hot path, for a search run now and then. The scan costs ~0.8 µs per
 * message of the agent's (~200 ms at 250,000): on a file it runs in the store's background worker
 * (`background.ts`) on its own connection, so that the event loop, and every user's message, never waits for it.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";

/** A stored message row as the store reads it (the store turns it into a `StoredMessage`). */
export type Row = Record<string, unknown>;

/** The columns a search returns, as the store's other reads name them. */
export const MESSAGE_FIELDS = "m.seq, m.id, m.direction, m.channel, m.account, m.contact, m.agent, m.company, " +
  "m.type, m.content, m.media, m.send_time AS sendTime, m.name, m.avatar, m.extra, m.state, m.detail, " +
  "m.stored_at AS storedAt";

const SEARCH_SQL = `SELECT ${MESSAGE_FIELDS} FROM contacts c JOIN messages m ON m.contact = c.id ` +
  "WHERE c.agent = ? AND m.content LIKE ? ESCAPE '\\' ORDER BY m.seq DESC LIMIT ?";

/** The statement of a search on `db`. */
export function prepareSearch(db: DatabaseSync): StatementSync {
  return db.prepare(SEARCH_SQL);
}

/** Run a search: `text` is matched literally (LIKE's `%` and `_` are escaped), case-insensitively for ASCII. */
export function runSearch(statement: StatementSync, agent: string, text: string, limit: number): Row[] {
  const pattern = `%${text.replace(/[\\%_]/g, "\\$&")}%`;
  return statement.all(agent, pattern, limit).map((r) => ({ ...r }));
}
