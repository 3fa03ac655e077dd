/**
 * The store's background worker (see `background.ts`): its own connection to the store's file, for the work that
 * must not hold up the event loop that accepts users' messages — WAL checkpoints when the main side asks, searches
 * that scan an agent's history, and reports.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { prepareSearch, runSearch } from "./search.ts";
import { sqliteReport } from "./sqlite_reports.ts";
import type { WorkerReply, WorkerRequest } from "./background.ts";

let db: DatabaseSync | undefined;
let search: StatementSync | undefined;

function reply(message: WorkerReply): void {
  self.postMessage(message);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// PASSIVE: copies what it can without waiting for (or blocking) the writer; the writer starts the WAL over once
// everything was copied, and journal_size_limit cuts the file back then. Asked for by the main side, which makes
// the worker and the writer's backstop take turns (see `background.ts`).
function checkpoint(): void {
  try {
    const row = db!.prepare("PRAGMA wal_checkpoint(PASSIVE)").get()!;
    // busy: the writer's own checkpoint was running (log and checkpointed are -1 then): nothing was copied.
    if (Number(row.busy) !== 0) reply({ kind: "checkpoint", busy: true });
    else reply({ kind: "checkpoint", log: Number(row.log), checkpointed: Number(row.checkpointed) });
  } catch (e) {
    reply({ kind: "checkpoint", error: errorText(e) });
  }
}

self.onmessage = (e: MessageEvent<WorkerRequest>) => {
  const m = e.data;
  switch (m.kind) {
    case "open":
      try {
        db = new DatabaseSync(m.path);
        db.exec(`PRAGMA busy_timeout = ${m.busyTimeoutMs}`);
        // Reports and searches read rows all over the file: mapped, a page read is a memory access, not a read(2)
        // into a 2 MiB cache (measured: a 30-day report at 200,000 messages 1.2 → 0.9 s of CPU).
        db.exec("PRAGMA mmap_size = 268435456");
        reply({ kind: "opened" });
      } catch (e) {
        reply({ kind: "opened", error: errorText(e) });
      }
      return;
    case "checkpoint":
      checkpoint();
      return;
    case "search":
      try {
        search ??= prepareSearch(db!);
        reply({ kind: "search", id: m.id, rows: runSearch(search, m.agent, m.text, m.limit) });
      } catch (e) {
        reply({ kind: "search", id: m.id, error: errorText(e) });
      }
      return;
    case "report":
      try {
        reply({ kind: "report", id: m.id, data: sqliteReport(db!, m.query) });
      } catch (e) {
        reply({ kind: "report", id: m.id, error: errorText(e) });
      }
      return;
    case "close":
      try {
        db?.close();
      } finally {
        reply({ kind: "closed" });
      }
      return;
  }
};
