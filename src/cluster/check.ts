/**
 * Cluster mode's precondition: several nodes share one store of record, so `REDIS_URL` goes with `STORE=postgres`.
 *
 * @module
 */

import { type Config, ConfigError } from "../config/config.ts";

/**
 * Throws `ConfigError` when REDIS_URL is set with a store other nodes cannot share (SQLite, memory), or without
 * MEDIA_DIR: a media file stored by one node must be served and sent by every node (docs/media.md).
 */
export function checkCluster(config: Pick<Config, "redisUrl" | "store" | "mediaDir">): void {
  if (config.redisUrl === undefined) return;
  if (config.store === "postgres") {
    if (config.mediaDir !== undefined) return;
    throw new ConfigError(
      "cannot use REDIS_URL without MEDIA_DIR: among several nodes a media file one node stored must be served and " +
        "sent by every node, and DATA_DIR/media belongs to one; set MEDIA_DIR to a directory every node shares (an " +
        "NFS mount or shared volume, the same path on each node)",
    );
  }
  throw new ConfigError(
    `cannot use REDIS_URL with STORE=${config.store}: several nodes need one shared store of record, and ` +
      `${config.store === "sqlite" ? "a SQLite file belongs to one process" : "memory belongs to one process"}; ` +
      "set STORE=postgres and DATABASE_URL, or unset REDIS_URL to run one process",
  );
}
