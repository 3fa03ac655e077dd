/**
 * The cluster's engine: what kefu nodes share to reach each other's agent sessions and to know who is online
 * anywhere (Centrifugo's shape: the node, {@link ClusterNode}, is separate from the engine that carries its
 * messages). Two implementations: Redis (`redis_engine.ts`, between processes) and memory ({@link MemoryBroker},
 * between nodes of one process, for tests).
 *
 * The store stays the truth: an engine may lose a publish (the broker restarted, the connection dropped), which
 * costs latency — the message stays unread in the store and comes with the agent's next connect or resync — never a
 * message.
 *
 * @module
 */

/** What an engine tells its node. */
export interface EngineHandlers {
  /** A message published on a topic this node subscribed to. */
  message(topic: string, data: string): void;
  /** The broker is reachable again after an outage: publishes may have been lost meanwhile. */
  up(): void;
  /** The broker cannot be reached (said once per outage by the node). */
  down(error: string): void;
}

/** Publish/subscribe and presence, shared by every node. */
export interface Engine {
  /** Connect (without waiting for a broker that is away: the engine keeps trying by itself). */
  start(handlers: EngineHandlers): Promise<void>;
  /** Publish; rejects when the broker is away (the message is not queued). */
  publish(topic: string, data: string): Promise<void>;
  /** Receive what is published on `topic` from now on (again after a reconnect); rejects when the broker is away. */
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  /** This node's agents, replacing what it said before; forgotten after `ttlMs` unless said again. */
  announce(node: string, agents: readonly string[], ttlMs: number): Promise<void>;
  /** Every node whose announcement has not expired, with its agents. */
  nodes(): Promise<Map<string, string[]>>;
  /** Remove this node's announcement at once (a drain). */
  withdraw(node: string): Promise<void>;
  /** Set a shared value, forgotten after `ttlMs`; with `ifAbsent`, only when there is none (answers whether set). */
  put(key: string, value: string, ttlMs: number, ifAbsent?: boolean): Promise<boolean>;
  /** A shared value, or undefined (none, or expired). */
  get(key: string): Promise<string | undefined>;
  /** Read and delete a shared value in one step: of several nodes taking it at once, one gets it. */
  take(key: string): Promise<string | undefined>;
  /** Delete a shared value only while it is still `value` (a newer one stays); answers whether it was deleted. */
  dropIf(key: string, value: string): Promise<boolean>;
  /** Close the connections. */
  stop(): Promise<void>;
}

/** One process's broker for {@link memoryEngine}s: what Redis is between processes. */
export class MemoryBroker {
  readonly subscribers = new Map<string, Set<EngineHandlers>>();
  readonly presence = new Map<string, { agents: string[]; until: number }>();
  readonly values = new Map<string, { value: string; until: number }>();
  /** While false every operation fails, as with Redis away. */
  up = true;
  now: () => number = Date.now;

  /** Fail as an engine whose broker is away. */
  check(): void {
    if (!this.up) throw new Error("the broker is away");
  }
}

/** An engine over a {@link MemoryBroker}: nodes in one process (tests). Deliveries are asynchronous, as on Redis. */
export function memoryEngine(broker: MemoryBroker): Engine {
  let handlers: EngineHandlers | undefined;
  const topics = new Set<string>();
  const op = <T>(f: () => T): Promise<T> => {
    try {
      broker.check();
      return Promise.resolve(f());
    } catch (e) {
      return Promise.reject(e);
    }
  };
  return {
    start(h) {
      handlers = h;
      return Promise.resolve();
    },
    publish: (topic, data) =>
      op(() => {
        for (const h of broker.subscribers.get(topic) ?? []) queueMicrotask(() => h.message(topic, data));
      }),
    subscribe: (topic) =>
      op(() => {
        topics.add(topic);
        let set = broker.subscribers.get(topic);
        if (set === undefined) broker.subscribers.set(topic, set = new Set());
        set.add(handlers!);
      }),
    unsubscribe: (topic) =>
      op(() => {
        topics.delete(topic);
        broker.subscribers.get(topic)?.delete(handlers!);
      }),
    announce: (node, agents, ttlMs) =>
      op(() => void broker.presence.set(node, { agents: [...agents], until: broker.now() + ttlMs })),
    nodes: () =>
      op(() => {
        const live = new Map<string, string[]>();
        for (const [node, p] of broker.presence) if (p.until > broker.now()) live.set(node, p.agents);
        return live;
      }),
    withdraw: (node) => op(() => void broker.presence.delete(node)),
    put: (key, value, ttlMs, ifAbsent) =>
      op(() => {
        const v = broker.values.get(key);
        if (ifAbsent && v !== undefined && v.until > broker.now()) return false;
        broker.values.set(key, { value, until: broker.now() + ttlMs });
        return true;
      }),
    get: (key) =>
      op(() => {
        const v = broker.values.get(key);
        return v !== undefined && v.until > broker.now() ? v.value : undefined;
      }),
    take: (key) =>
      op(() => {
        const v = broker.values.get(key);
        broker.values.delete(key);
        return v !== undefined && v.until > broker.now() ? v.value : undefined;
      }),
    dropIf: (key, value) =>
      op(() => {
        const v = broker.values.get(key);
        if (v === undefined || v.until <= broker.now() || v.value !== value) return false;
        return broker.values.delete(key);
      }),
    stop() {
      for (const topic of topics) broker.subscribers.get(topic)?.delete(handlers!);
      topics.clear();
      return Promise.resolve();
    },
  };
}
