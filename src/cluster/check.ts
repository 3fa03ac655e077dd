/**
 * Cluster mode's precondition: several nodes share one store of record, so `REDIS_URL` goes with `STORE=postgres`.
 *
 * @module
 */

import { type Config, ConfigError } from "../config/config.ts";

/** Throws `ConfigError` when REDIS_URL is set with a store other nodes cannot share (SQLite, memory). */
export function checkCluster(config: Pick<Config, "redisUrl" | "store">): void {
  if (config.redisUrl === undefined || config.store === "postgres") return;
  throw new ConfigError(
    `cannot use REDIS_URL with STORE=${config.store}: several nodes need one shared store of record, and ` +
      `${config.store === "sqlite" ? "a SQLite file belongs to one process" : "memory belongs to one process"}; ` +
      "set STORE=postgres and DATABASE_URL, or unset REDIS_URL to run one process",
  );
}
