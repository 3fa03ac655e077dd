/**
 * Cluster mode's preconditions: several nodes share one store of record, so `REDIS_URL` goes with `STORE=postgres`;
 * and the Redis there is 6.2 or newer.
 *
 * @module
 */

import { type Config, ConfigError } from "../config/config.ts";
import type { Logger } from "../core/log.ts";
import { probeRedis, requireRedisVersion } from "./redis_version.ts";

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

/**
 * Cluster mode's Redis, asked once at start (`INFO server`): a server older than 6.2 is refused (`ConfigError`).
 * Redis away at start is not: a node starts while Redis is away and its client keeps trying (docs/operations.md), so
 * the version goes unchecked then, and the log says so.
 */
export async function checkRedisServer(url: string, log: Logger, timeoutMs = 3_000): Promise<void> {
  const found = await probeRedis(url, timeoutMs);
  if ("error" in found) {
    log.warn("cluster_redis_unchecked", {
      error: found.error,
      detail: "Redis did not answer at start, so its version (6.2 or newer needed) is not checked",
    });
    return;
  }
  requireRedisVersion(found.version, url);
  log.info("cluster_redis", { version: found.version });
}
