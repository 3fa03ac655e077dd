/**
 * Which Redis answers at REDIS_URL, asked once (`INFO server`) at start and by `kefu check-config`: kefu needs 6.2 or
 * newer, for GETDEL (one atomic take decides which node carries a passive reply, docs/operations.md), and a server
 * too old is refused at start with a message that says so rather than failing on the first passive reply.
 *
 * @module
 */

import { createClient } from "redis";
import { ConfigError, redactUrl } from "../config/config.ts";

/** The oldest Redis kefu runs with, as [major, minor]: 6.2 brought GETDEL. */
export const MIN_REDIS: readonly [number, number] = [6, 2];

/** The `redis_version` of an `INFO server` answer (`redis_version:7.0.15`); undefined when it has none. */
export function redisVersionOf(info: string): string | undefined {
  return /^redis_version:([^\r\n]+)/m.exec(info)?.[1].trim();
}

/** Throws `ConfigError` naming the URL (without its password) and both versions when `version` is older than 6.2. */
export function requireRedisVersion(version: string, url: string): void {
  const [major, minor] = version.split(".").map((n) => Number.parseInt(n, 10));
  const [wantMajor, wantMinor] = MIN_REDIS;
  if (major > wantMajor || (major === wantMajor && minor >= wantMinor)) return;
  throw new ConfigError(
    `cannot use REDIS_URL=${JSON.stringify(redactUrl(url))}: it is Redis ${version}, and kefu needs ` +
      `${wantMajor}.${wantMinor} or newer (GETDEL, which hands a passive reply to exactly one node); upgrade Redis`,
  );
}

/** What {@link probeRedis} found: the server's version, or why it could not be asked. */
export type RedisProbe = { version: string } | { error: string };

/** Connect to `url`, ask `INFO server` and disconnect, within `timeoutMs`; never throws. */
export async function probeRedis(url: string, timeoutMs: number): Promise<RedisProbe> {
  const client = createClient({ url, socket: { connectTimeout: timeoutMs, reconnectStrategy: false } });
  // node-redis throws an "error" event nobody listens to; the failure is answered through connect() below.
  client.on("error", () => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<RedisProbe>((resolve) =>
    timer = setTimeout(() => resolve({ error: `no answer within ${timeoutMs / 1000} s` }), timeoutMs)
  );
  const ask = (async (): Promise<RedisProbe> => {
    try {
      await client.connect();
      const info = await client.info("server");
      const version = redisVersionOf(info);
      return version === undefined ? { error: "its INFO server answer has no redis_version" } : { version };
    } catch (e) {
      return { error: (e instanceof Error ? e.message : String(e)).split("\n")[0] || "connection failed" };
    }
  })();
  try {
    return await Promise.race([ask, late]);
  } finally {
    clearTimeout(timer);
    // A connection still opening when the time ran out is ended once it settles.
    void ask.then(() => client.isOpen ? client.close().catch(() => client.destroy()) : undefined);
  }
}
