/**
 * Opening the store the configuration names: SQLite (a file under DATA_DIR, or in memory) or PostgreSQL.
 *
 * @module
 */

import { type Config, ConfigError } from "../config/config.ts";
import { SqliteStore, storePath } from "./sqlite_store.ts";
import { type DirLock, DirLockError, lockDir } from "./lock.ts";
import type { Store } from "./store.ts";

/**
 * Open the store the configuration names: `STORE=postgres` at `DATABASE_URL` (migrated under a lock, so several
 * processes may start at once); the SQLite file under DATA_DIR, whose lock keeps a second kefu out until the store is
 * closed (or the process ends); or SQLite in memory, which takes no lock. A DATA_DIR that cannot be created, opened
 * or locked is a `ConfigError` naming it.
 */
export async function openStore(config: Config): Promise<Store> {
  if (config.store === "postgres") {
    // Loaded only when asked for: the SQLite default needs no database client in its module graph.
    const { openPostgresStore } = await import("./postgres_store.ts");
    return await openPostgresStore({ url: config.databaseUrl!, max: config.databasePoolSize });
  }
  const options = { synchronous: config.storeSync, groupCommitMs: config.groupCommitMs };
  if (config.store === "memory") return new SqliteStore({ path: ":memory:", ...options });
  let lock: DirLock;
  try {
    lock = lockDir(config.dataDir);
  } catch (e) {
    if (!(e instanceof DirLockError)) throw e;
    throw new ConfigError(`cannot use DATA_DIR=${JSON.stringify(config.dataDir)}: ${e.reason}`);
  }
  try {
    // The lock is let go once the file is closed.
    return new SqliteStore({ path: storePath(config.dataDir), ...options, closed: () => lock.release() });
  } catch (e) {
    lock.release();
    throw e;
  }
}
