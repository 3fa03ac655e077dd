/**
 * Search over an agent's conversations: messages whose text contains a piece of text, newest first. It is a scan of
 * the agent's own conversations (LIKE over the `messages_conversation` index), chosen by measurement over a
 * full-text index: FTS5's trigram index (the tokenizer that finds any part of a Chinese text) made every stored
 * message 2.7× as expensive to commit, on the hot path, for a search run now and then. The scan costs ~0.8 µs per
 * message of the agent's (~200 ms at 250,000): on a file it runs in a worker with its own read-only connection,
 * so that the event loop, and every user's message, never waits for it.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";

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

interface Pending {
  resolve(rows: Row[]): void;
  reject(e: Error): void;
}

/** Searches of one store: in a worker for a file, in place for ":memory:" (a second connection would not see it). */
export class MessageSearch {
  readonly #path: string;
  readonly #local: () => StatementSync;
  #worker: Worker | undefined;
  #next = 0;
  readonly #pending = new Map<number, Pending>();

  /** `local` prepares the statement on the store's own connection (used for ":memory:"). */
  constructor(path: string, local: () => StatementSync) {
    this.#path = path;
    this.#local = local;
  }

  /** Messages of `agent`'s contacts whose text contains `text`, newest first. */
  search(agent: string, text: string, limit: number): Promise<Row[]> {
    if (this.#path === ":memory:") {
      try {
        return Promise.resolve(runSearch(this.#local(), agent, text, limit));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    // Started on the first search: a kefu nobody searches keeps no second isolate.
    const worker = this.#worker ??= this.#start();
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, agent, text, limit });
    });
  }

  /** Stop the worker; searches under way are refused. */
  close(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    for (const p of this.#pending.values()) p.reject(new Error("cannot search: the store was closed"));
    this.#pending.clear();
  }

  #start(): Worker {
    const worker = new Worker(new URL("./search_worker.ts", import.meta.url), { type: "module" });
    worker.postMessage({ open: this.#path });
    worker.onmessage = (e: MessageEvent<{ id: number; rows?: Row[]; error?: string }>) => {
      const p = this.#pending.get(e.data.id);
      if (p === undefined) return;
      this.#pending.delete(e.data.id);
      if (e.data.error !== undefined) p.reject(new Error(`cannot search the store: ${e.data.error}`));
      else p.resolve(e.data.rows!);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      const error = new Error(`cannot search the store: the search worker failed: ${e.message}`);
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
      this.#worker = undefined;
    };
    return worker;
  }
}
