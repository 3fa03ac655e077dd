/**
 * The search worker (see `search.ts`): its own read-only connection to the store's file, one search at a time, so
 * that a scan of a long history never holds up the event loop that accepts users' messages.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { prepareSearch, runSearch } from "./search.ts";

let statement: StatementSync | undefined;
let path = "";

self.onmessage = (e: MessageEvent<{ open?: string; id: number; agent: string; text: string; limit: number }>) => {
  const m = e.data;
  if (m.open !== undefined) {
    path = m.open;
    return;
  }
  try {
    if (statement === undefined) {
      const db = new DatabaseSync(path, { readOnly: true });
      db.exec("PRAGMA busy_timeout = 5000");
      statement = prepareSearch(db);
    }
    self.postMessage({ id: m.id, rows: runSearch(statement, m.agent, m.text, m.limit) });
  } catch (err) {
    self.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) });
  }
};
