/**
 * The cluster engine on Redis (node-redis): pub/sub for events to agents, and presence as one hash per node whose
 * TTL a heartbeat refreshes, listed in a sorted set. Two connections: commands, and the subscriber (a subscribed
 * connection takes no other command). No offline queue: while Redis is away a command fails at once instead of
 * piling up in memory — the store has every message, so a lost publish costs latency, not a message. The client
 * reconnects and subscribes again by itself; the first "ready" after an outage is told to the node ({@link
 * EngineHandlers.up}) so that it resyncs its sessions.
 *
 * Keys (prefix `kefu:` by default): `<prefix>node:<id>` a hash agent → "1" with a TTL, `<prefix>nodes` a sorted set
 * of node ids scored by when their announcement was last made (ms), pruned after a minute; `<prefix>v:<key>` a shared
 * value ({@link Engine.put}) with its TTL.
 *
 * @module
 */

import { createClient } from "redis";
import type { Engine, EngineHandlers } from "./engine.ts";

/** Options for {@link redisEngine}. */
export interface RedisEngineOptions {
  /** `redis://…` or `rediss://…` */
  url: string;
  /** Prefix of every key and channel; default `kefu:`. */
  prefix?: string;
}

// Sorted-set members older than this are pruned; their hash has long expired (its TTL is a few seconds).
const PRUNE_MS = 60_000;
// Compare and delete in one step (Redis runs a script atomically).
const DROP_IF = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/** Connect to Redis as a cluster engine. */
export function redisEngine(options: RedisEngineOptions): Engine {
  const prefix = options.prefix ?? "kefu:";
  const nodesKey = `${prefix}nodes`;
  const nodeKey = (node: string) => `${prefix}node:${node}`;
  const cmd = createClient({
    url: options.url,
    disableOfflineQueue: true,
    // Retry soon after Redis returns (a restart takes a second or two), but not in a tight loop while it is away.
    socket: { connectTimeout: 2000, reconnectStrategy: (retries: number) => Math.min(50 * (retries + 1), 1000) },
  });
  const sub = cmd.duplicate();
  let handlers: EngineHandlers | undefined;
  let stopped = false;
  // A connection that went down since its last "ready": its next "ready" is an outage's end.
  const wasDown = new Set<unknown>();
  const listener = (data: string, topic: string) => handlers?.message(topic, data);
  for (const client of [cmd, sub]) {
    // node-redis throws an "error" with no listener; it reconnects by itself, so an error is news, not an end.
    client.on("error", (e: Error) => {
      if (stopped) return;
      wasDown.add(client);
      handlers?.down(e.message);
    });
    client.on("ready", () => {
      if (wasDown.delete(client)) handlers?.up();
    });
  }

  return {
    start(h) {
      handlers = h;
      // Not awaited: a node starts (and serves its own sessions) while Redis is away; the client keeps trying.
      for (const client of [cmd, sub]) {
        client.connect().catch((e: Error) => {
          if (!stopped) handlers?.down(e.message);
        });
      }
      return Promise.resolve();
    },
    async publish(topic, data) {
      await cmd.publish(topic, data);
    },
    async subscribe(topic) {
      await sub.subscribe(topic, listener);
    },
    async unsubscribe(topic) {
      await sub.unsubscribe(topic, listener);
    },
    async announce(node, agents, ttlMs) {
      const now = Date.now();
      const m = cmd.multi().del(nodeKey(node));
      if (agents.length > 0) m.hSet(nodeKey(node), Object.fromEntries(agents.map((a) => [a, "1"])));
      m.pExpire(nodeKey(node), ttlMs).zAdd(nodesKey, { score: now, value: node });
      m.zRemRangeByScore(nodesKey, "-inf", now - PRUNE_MS);
      await m.exec();
    },
    async nodes() {
      const ids = await cmd.zRange(nodesKey, 0, -1);
      if (ids.length === 0) return new Map();
      const m = cmd.multi();
      for (const id of ids) m.hKeys(nodeKey(id));
      const agents = (await m.exec()) as unknown as string[][];
      const live = new Map<string, string[]>();
      // An expired hash reads as empty: that node's agents are offline (and a node with none needs no entry).
      ids.forEach((id, i) => {
        if (agents[i]?.length > 0) live.set(id, agents[i]);
      });
      return live;
    },
    async withdraw(node) {
      await cmd.multi().del(nodeKey(node)).zRem(nodesKey, node).exec();
    },
    async put(key, value, ttlMs, ifAbsent) {
      const r = await cmd.set(`${prefix}v:${key}`, value, {
        expiration: { type: "PX", value: Math.max(1, Math.ceil(ttlMs)) },
        ...ifAbsent ? { condition: "NX" as const } : {},
      });
      return r === "OK";
    },
    async get(key) {
      return (await cmd.get(`${prefix}v:${key}`)) ?? undefined;
    },
    async take(key) {
      return (await cmd.getDel(`${prefix}v:${key}`)) ?? undefined;
    },
    async dropIf(key, value) {
      return (await cmd.eval(DROP_IF, { keys: [`${prefix}v:${key}`], arguments: [value] })) === 1;
    },
    async stop() {
      stopped = true;
      // close() waits for replies under way; a connection that never came up is destroyed instead.
      await Promise.all([cmd, sub].map((c) => c.isOpen ? c.close().catch(() => c.destroy()) : c.destroy()));
    },
  };
}
