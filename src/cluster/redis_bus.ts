/**
 * Cluster mode's composition: a {@link ClusterNode} over Redis, as main.ts builds it when `REDIS_URL` is set.
 *
 * @module
 */

import type { Logger } from "../core/log.ts";
import type { AgentBusFactory } from "../hub/bus.ts";
import type { Store } from "../store/store.ts";
import { ClusterNode } from "./cluster_node.ts";
import { PassiveRelay } from "./passive_relay.ts";
import { sharedUploads } from "./shared_uploads.ts";
import type { SharedUploads } from "../media/ownership.ts";
import { redisEngine } from "./redis_engine.ts";

/** Options for {@link redisBus}. */
export interface RedisBusOptions {
  /** `REDIS_URL` */
  url: string;
  /** `NODE_ID` */
  nodeId: string;
  log: Logger;
  store: Pick<Store, "ack" | "unacked">;
  /** How often presence is announced (and read); default 2 s. */
  heartbeatMs?: number;
}

/** The agent bus of one node among several sharing one Redis; `start` before serving, `stop` when draining. */
export interface RedisBus {
  bus: AgentBusFactory;
  /** Passive replies' shared state and hand-over between nodes. */
  passive: PassiveRelay;
  /** Who uploaded which file, for every node. */
  uploads: SharedUploads;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Build a node's bus over Redis (nothing connects before `start`). */
export function redisBus(options: RedisBusOptions): RedisBus {
  const node = new ClusterNode({
    nodeId: options.nodeId,
    engine: redisEngine({ url: options.url }),
    store: options.store,
    log: options.log,
    heartbeatMs: options.heartbeatMs,
  });
  const passive = new PassiveRelay({ engine: node.engine, mailbox: node.mailbox, log: options.log });
  return {
    bus: node.bus,
    passive,
    uploads: sharedUploads(node.engine),
    start: () => node.start(),
    stop: () => node.stop(),
  };
}
