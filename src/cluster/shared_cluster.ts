/**
 * Cluster mode's WeChat-facing state, as main.ts builds it when `REDIS_URL` is set: the {@link SharedState} on
 * Redis (access_tokens per AppID, media_ids, the webhook's taken nonces) and the relay of sign-in revocations on an
 * engine of its own. Without `REDIS_URL` none of it exists and each part keeps its state in the process.
 *
 * @module
 */

import type { Logger } from "../core/log.ts";
import { redisEngine } from "./redis_engine.ts";
import { redisSharedState } from "./redis_shared_state.ts";
import { RevocationRelay } from "./revocation_relay.ts";
import type { SharedState } from "./shared_state.ts";

/** Options for {@link sharedCluster}. */
export interface SharedClusterOptions {
  /** `REDIS_URL` */
  url: string;
  /** `NODE_ID` */
  nodeId: string;
  log: Logger;
}

/** What the nodes share besides delivery; `start` before serving, `stop` last. */
export interface SharedCluster {
  state: SharedState;
  /** Hear other nodes' revocations: `reload` reads the store's again (`Auth.load`). Call before `start`. */
  relayRevocations(reload: () => Promise<void>): void;
  /** This node revoked a token: tell the others. */
  revoked(): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Build the shared state over Redis (nothing connects before `start`). */
export function sharedCluster(options: SharedClusterOptions): SharedCluster {
  const { url, nodeId, log } = options;
  const state = redisSharedState({
    url,
    onDown: (error) =>
      log.warn("cluster_shared_unavailable", {
        error,
        detail: "each node fetches its own access_token and remembers webhook nonces alone until Redis is back",
      }),
    onUp: () => log.info("cluster_shared_back", {}),
  });
  let relay: RevocationRelay | undefined;
  return {
    state,
    relayRevocations(reload) {
      relay = new RevocationRelay({ engine: redisEngine({ url }), nodeId, reload, log });
    },
    revoked: () => relay?.told(),
    async start() {
      await state.start();
      await relay?.start();
    },
    async stop() {
      await relay?.stop();
      await state.stop();
    },
  };
}
