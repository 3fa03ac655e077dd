/**
 * {@link SharedState} on Redis (node-redis), on a connection of its own: `GET`, `SET PX`, and two Lua scripts run
 * atomically by the server — `add` (set unless set, answering what is there: `SET NX PX` that also says the value it
 * lost to, which `SET NX GET` does only from Redis 7) and `removeIf` (a compare-and-delete, the safe release of a
 * lock). No offline queue: while Redis is away a call fails at once, and its caller falls back to what one process
 * can do alone (see `shared_tokens.ts`, `nonce_memory.ts`).
 *
 * Keys: `<prefix><key>`, prefix `kefu:` by default.
 *
 * @module
 */

import { createClient } from "redis";
import type { SharedState } from "./shared_state.ts";

/** Options for {@link redisSharedState}. */
export interface RedisSharedStateOptions {
  /** `redis://…` or `rediss://…` */
  url: string;
  /** Prefix of every key; default `kefu:`. */
  prefix?: string;
  /** Told once per outage that Redis cannot be reached (and again after it was back). */
  onDown?: (error: string) => void;
  /** Told when Redis is reachable again after an outage. */
  onUp?: () => void;
}

/** A {@link SharedState} over Redis, with `start` and `stop`. */
export interface RedisSharedState extends SharedState {
  /** Connect (without waiting for a Redis that is away: the client keeps trying by itself). */
  start(): Promise<void>;
  /** Close the connection. */
  stop(): Promise<void>;
}

// KEYS[1] the key; ARGV[1] the value, ARGV[2] its life in ms. Answers the value already there, or nil once set.
const ADD = `local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false`;

// KEYS[1] the key; ARGV[1] the value it must still hold. Answers 1 when deleted.
const REMOVE_IF = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Connect to Redis as the nodes' shared state (nothing connects before `start`). */
export function redisSharedState(options: RedisSharedStateOptions): RedisSharedState {
  const prefix = options.prefix ?? "kefu:";
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    socket: { connectTimeout: 2000, reconnectStrategy: (retries: number) => Math.min(50 * (retries + 1), 1000) },
  });
  let stopped = false;
  let down = false;
  // node-redis throws an "error" with no listener; it reconnects by itself, so an error is news, not an end.
  client.on("error", (e: Error) => {
    if (stopped || down) return;
    down = true;
    options.onDown?.(e.message);
  });
  client.on("ready", () => {
    if (!down) return;
    down = false;
    options.onUp?.();
  });
  // At least 1 ms: PX 0 is an error, and a value due now is already gone.
  const px = (ms: number) => String(Math.max(1, Math.ceil(ms)));

  return {
    async start() {
      const connected = client.connect().then(() => {}, (e: Error) => {
        if (!stopped && !down) {
          down = true;
          options.onDown?.(e.message);
        }
      });
      // A node starts while Redis is away (its callers fall back), but one that is up is waited for a moment.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([connected, new Promise((resolve) => timer = setTimeout(resolve, 2000))]);
      clearTimeout(timer);
    },
    async get(key) {
      return (await client.get(prefix + key)) ?? undefined;
    },
    async set(key, value, ttlMs) {
      await client.set(prefix + key, value, { expiration: { type: "PX", value: Math.max(1, Math.ceil(ttlMs)) } });
    },
    async add(key, value, ttlMs) {
      const known = await client.eval(ADD, { keys: [prefix + key], arguments: [value, px(ttlMs)] });
      return typeof known === "string" ? known : undefined;
    },
    async removeIf(key, value) {
      return Number(await client.eval(REMOVE_IF, { keys: [prefix + key], arguments: [value] })) === 1;
    },
    async stop() {
      stopped = true;
      await (client.isOpen ? client.close().catch(() => client.destroy()) : client.destroy());
    },
  };
}
