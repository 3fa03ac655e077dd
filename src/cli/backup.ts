/**
 * `kefu backup FILE`: a consistent copy of the SQLite store while kefu runs. SQLite's online backup API (node:sqlite
 * `backup()`) copies every page in one step, inside one read transaction: in WAL mode that is a snapshot, and kefu
 * goes on writing meanwhile. The copy is written beside FILE, checked (it opens, passes `quick_check`, has the
 * tables) and only then renamed to FILE. For PostgreSQL it says the `pg_dump` way instead.
 *
 * @module
 */

import { backup, DatabaseSync } from "node:sqlite";
import { type Config, ConfigError, redactUrl } from "../config/config.ts";
import { storePath } from "../store/sqlite_store.ts";

/** What a backup wrote. */
export interface BackupResult {
  file: string;
  bytes: number;
  contacts: number;
  messages: number;
  seconds: number;
}

/** The command that backs up a PostgreSQL store (kefu does not run it: pg_dump must match the server's version). */
export function pgDumpCommand(file: string): string {
  return `pg_dump --format=custom --file=${JSON.stringify(file)} "$DATABASE_URL"`;
}

/** Copy the store `config` names to `file`; throws `ConfigError` for what the operator can fix. */
export async function backupStore(config: Config, file: string): Promise<BackupResult> {
  if (config.store === "memory") throw new ConfigError("cannot back up STORE=memory: it keeps nothing");
  if (config.store === "postgres") {
    throw new ConfigError(
      `backup copies the SQLite store; for STORE=postgres (${redactUrl(config.databaseUrl ?? "")}) run ` +
        `${pgDumpCommand(file)} (docs/operations.md#backup)`,
    );
  }
  const source = storePath(config.dataDir);
  try {
    Deno.statSync(source);
  } catch {
    throw new ConfigError(`cannot back up DATA_DIR=${JSON.stringify(config.dataDir)}: it has no kefu.db`);
  }
  try {
    Deno.statSync(file);
    throw new ConfigError(`cannot back up to ${JSON.stringify(file)}: it exists (remove it or choose another name)`);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
  }
  const started = performance.now();
  const partial = `${file}.partial-${Deno.pid}`;
  const db = new DatabaseSync(source, { readOnly: true });
  try {
    // rate -1: every page in one step, one read transaction — a snapshot, never restarted by kefu's commits.
    await backup(db, partial, { rate: -1 });
  } catch (e) {
    await Deno.remove(partial).catch(() => {});
    throw new ConfigError(`cannot back up to ${JSON.stringify(file)}: ${(e as Error).message}`);
  } finally {
    db.close();
  }
  let counts: { contacts: number; messages: number };
  try {
    // One self-contained file (no -wal beside it): kefu turns WAL on again when it opens a restored copy.
    const copy = new DatabaseSync(partial);
    try {
      copy.exec("PRAGMA journal_mode = DELETE");
    } finally {
      copy.close();
    }
    counts = verifyCopy(partial);
  } catch (e) {
    await Deno.remove(partial).catch(() => {});
    throw new Error(`the copy does not check out, nothing kept: ${(e as Error).message}`);
  }
  await Deno.rename(partial, file);
  return {
    file,
    bytes: (await Deno.stat(file)).size,
    ...counts,
    seconds: Math.round(performance.now() - started) / 1000,
  };
}

/** Open a copy read-only: `quick_check` answers ok and the tables count their rows. Throws otherwise. */
export function verifyCopy(path: string): { contacts: number; messages: number } {
  const copy = new DatabaseSync(path, { readOnly: true });
  try {
    const check = copy.prepare("PRAGMA quick_check").get() as { quick_check: string };
    if (check.quick_check !== "ok") throw new Error(`quick_check: ${check.quick_check}`);
    const count = (table: string) => (copy.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return { contacts: count("contacts"), messages: count("messages") };
  } finally {
    copy.close();
  }
}
