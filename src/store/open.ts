/**
 * Opening the store the configuration names.
 *
 * @module
 */

import { type Config, ConfigError } from "../config/config.ts";
import { SqliteStore, storePath } from "./sqlite_store.ts";
import { type DirLock, DirLockError, lockDir } from "./lock.ts";

/**
 * Open the store the configuration names: the SQLite file under DATA_DIR, whose lock keeps a second kefu out until
 * the store is closed (or the process ends), or one in memory, which takes no lock. A DATA_DIR that cannot be
 * created, opened or locked is a `ConfigError` naming it.
 */
export function openStore(config: Config): SqliteStore {
  const options = { synchronous: config.storeSync, groupCommitMs: config.groupCommitMs };
  if (config.store === "memory") return new SqliteStore({ path: ":memory:", ...options });
  let lock: DirLock;
  try {
    lock = lockDir(config.dataDir);
  } catch (e) {
    if (!(e instanceof DirLockError)) throw e;
    throw new ConfigError(`cannot use DATA_DIR=${JSON.stringify(config.dataDir)}: ${e.reason}`);
  }
  let store: SqliteStore;
  try {
    store = new SqliteStore({ path: storePath(config.dataDir), ...options });
  } catch (e) {
    lock.release();
    throw e;
  }
  const close = store.close.bind(store);
  store.close = async () => {
    try {
      await close();
    } finally {
      lock.release();
    }
  };
  return store;
}
