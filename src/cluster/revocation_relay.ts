/**
 * Revocations of agents' tokens among nodes: the node where an agent signs out (or an administrator revokes) keeps
 * it in the store and publishes a notice on the engine; every node, on that notice, reads the store's revocations
 * again (the store is the truth: the notice carries nothing to trust), so the token is refused everywhere at once
 * and its sockets on any node close. A notice lost while the broker was away is made good when it is back (every
 * node reads them again) and, as a safety net, every `reloadMs`.
 *
 * @module
 */

import type { Logger } from "../core/log.ts";
import type { Engine } from "./engine.ts";

/** Options for {@link RevocationRelay}. */
export interface RevocationRelayOptions {
  engine: Engine;
  /** This node (`NODE_ID`): its own notices are not acted on again. */
  nodeId: string;
  /** Read the store's revocations again (`Auth.load`). */
  reload: () => Promise<void>;
  log: Logger;
  /** How often the store's revocations are read again without a notice; default 30 s. */
  reloadMs?: number;
  /** How long `start` tries to subscribe while the broker is still connecting; default 3 s. */
  subscribeWithinMs?: number;
}

const TOPIC = "kefu:revocations";

/** Tells other nodes of this node's revocations, and hears theirs. */
export class RevocationRelay {
  readonly #o: RevocationRelayOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #down = false;

  constructor(options: RevocationRelayOptions) {
    this.#o = options;
  }

  /** Connect, subscribe (retrying briefly while the broker connects) and start the safety-net reads. */
  async start(): Promise<void> {
    const { engine, nodeId } = this.#o;
    await engine.start({
      message: (_topic, data) => {
        if (data !== nodeId) this.#reload();
      },
      up: () => {
        this.#healthy();
        engine.subscribe(TOPIC).catch(() => {});
        this.#reload();
      },
      down: (error) => this.#broken(error),
    });
    const until = Date.now() + (this.#o.subscribeWithinMs ?? 3000);
    for (let pause = 20;; pause = Math.min(2 * pause, 200)) {
      try {
        await engine.subscribe(TOPIC);
        break;
      } catch (e) {
        if (Date.now() >= until) {
          this.#broken(e instanceof Error ? e.message : String(e));
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
    this.#timer = setInterval(() => this.#reload(), this.#o.reloadMs ?? 30_000);
  }

  /** This node revoked a token (the store has it): the other nodes read theirs again. */
  told(): void {
    this.#o.engine.publish(TOPIC, this.#o.nodeId).catch((e) =>
      // Made good by the other nodes' next read (when the broker is back, or within reloadMs).
      this.#broken(e instanceof Error ? e.message : String(e))
    );
  }

  /** Stop reading and close the engine. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#o.engine.stop();
  }

  #reload(): void {
    this.#o.reload().catch((e) => this.#o.log.warn("revocations_reload_failed", { error: String(e) }));
  }

  #broken(error: string): void {
    if (this.#down) return;
    this.#down = true;
    this.#o.log.warn("cluster_revocations_unavailable", {
      error,
      detail: "revocations reach the other nodes when Redis is back, or at their next read of the store",
    });
  }

  #healthy(): void {
    if (!this.#down) return;
    this.#down = false;
    this.#o.log.info("cluster_revocations_back", {});
  }
}
