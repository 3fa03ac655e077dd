/**
 * Holding WeChat's push while the store cannot keep its message. WeChat does not
 * retry a push answered with an HTTP error: it shows the user its failure notice
 * ("该公众号提供的服务出现故障，请稍后再试"). It retries only a push left
 * unanswered for 5 seconds. So a store failure (PostgreSQL away, a SQLite commit
 * failing) is not answered at once: the message is tried again, with a short
 * back-off, while WeChat's request is open; kept in time it is answered
 * `success` as usual. Past WeChat's timeout it is answered 503, read by nobody:
 * WeChat's retry of the same MsgId comes anew (to any node).
 *
 * @module
 */

import { KefuError } from "../../core/errors.ts";
import { type Logger, silentLogger } from "../../core/log.ts";

/**
 * WeChat waits 5 s for the answer to a push, then drops the connection and pushes the same message again (same
 * MsgId), 3 retries at most ("微信服务器在五秒内收不到响应会断掉连接，并且重新发起请求，总共重试三次", the Official
 * Account docs, 接收普通消息). A push older than this is answered to nobody.
 */
export const WECHAT_TIMEOUT_MS = 5_000;

/** How long a push is held for the store, from its arrival: past WeChat's timeout, with a margin for the network. */
export const STORE_HOLD_MS = WECHAT_TIMEOUT_MS + 500;

/** Pushes held for the store at once, by default; past it a store failure is answered 503 at once. */
export const MAX_STORE_HOLDS = 1_000;

// Waits between tries: the first soon (a pool reconnecting, a busy SQLite file), then every 0.5 s — WeChat's 5 s are
// short, and a try with PostgreSQL stopped fails at once (connection refused; the pool reconnects within 1 s).
const BACKOFF_MS = [100, 200, 300, 500];

/** Options for {@link StoreHolds}. */
export interface StoreHoldsOptions {
  /** Pushes held at once; default {@link MAX_STORE_HOLDS}. */
  maxHeld?: number;
  /** How long from its arrival a push is held; default {@link STORE_HOLD_MS}. */
  holdMs?: number;
  log?: Logger;
}

/** The pushes held while the store fails, bounded in count and time; {@link close}d at shutdown. */
export class StoreHolds {
  readonly #max: number;
  readonly #holdMs: number;
  readonly #log: Logger;
  #held = 0;
  #closed = false;
  /** Wakes every held push at {@link close}. */
  readonly #wake = new Set<() => void>();

  constructor(options: StoreHoldsOptions = {}) {
    this.#max = options.maxHeld ?? MAX_STORE_HOLDS;
    this.#holdMs = options.holdMs ?? STORE_HOLD_MS;
    this.#log = options.log ?? silentLogger;
  }

  /** Pushes held now. */
  get held(): number {
    return this.#held;
  }

  /** The clock {@link keep} counts a push's age with (monotonic ms). */
  now(): number {
    return performance.now();
  }

  /**
   * Run `attempt`; when it fails with `store_failed`, run it again with a back-off until it succeeds, fails otherwise,
   * or the push (arrived at `arrivedAt`, by {@link now}) is past the hold: then the last failure, as a 503. Answers the
   * failure at once when too many pushes are held or the node is stopping. `fields` go into the log lines.
   */
  async keep<T>(arrivedAt: number, attempt: () => Promise<T>, fields: Record<string, unknown> = {}): Promise<T> {
    try {
      return await attempt();
    } catch (e) {
      if (!storeFailed(e)) throw e;
      if (this.#closed) throw notHeld(e, "this node is stopping");
      if (this.#held >= this.#max) {
        this.#log.warn("wechat_store_hold_full", { ...fields, held: this.#held });
        throw notHeld(e, `${this.#max} pushes are held for the store already`);
      }
      return await this.#hold(arrivedAt, attempt, e, fields);
    }
  }

  /** Shutdown: every held push is answered its failure (503) at once, and none is held from now on. */
  close(): void {
    this.#closed = true;
    for (const wake of this.#wake) wake();
  }

  async #hold<T>(
    arrivedAt: number,
    attempt: () => Promise<T>,
    first: KefuError,
    fields: Record<string, unknown>,
  ): Promise<T> {
    this.#held++;
    const deadline = arrivedAt + this.#holdMs;
    let last = first;
    let tries = 1;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let wake = () => {};
    // Resolves when the node stops or the hold is spent: whatever is under way then is not waited for.
    const stopped = new Promise<"stopped">((resolve) => wake = () => resolve("stopped"));
    this.#wake.add(wake);
    const spent = new Promise<"spent">((resolve) => timer = setTimeout(() => resolve("spent"), deadline - this.now()));
    this.#log.warn("wechat_store_hold", { ...fields, error: first.message });
    try {
      // Bounded: each turn but the last waits 100 ms at least, and no try starts at or past the deadline.
      for (let turn = 0; !this.#closed; turn++) {
        const wait = Math.min(BACKOFF_MS[Math.min(turn, BACKOFF_MS.length - 1)], deadline - this.now());
        if (wait <= 0) break;
        let pause: ReturnType<typeof setTimeout> | undefined;
        const paused = await Promise.race([
          new Promise<"go">((resolve) => pause = setTimeout(() => resolve("go"), wait)),
          stopped,
        ]);
        clearTimeout(pause);
        // The pause ran to the deadline: a try now would be cut off at once.
        if (paused === "stopped" || this.now() >= deadline) break;
        tries++;
        const running = attempt();
        const outcome = await Promise.race([
          running.then((value) => ({ value }), (error) => ({ error })),
          stopped,
          spent,
        ]);
        if (outcome === "stopped" || outcome === "spent") {
          // Still under way: if it commits after all, WeChat's retry of the MsgId is a duplicate, answered success.
          running.then(
            () => this.#log.info("wechat_store_hold_late", { ...fields, kept: true }),
            (e) => this.#log.warn("wechat_store_hold_late", { ...fields, kept: false, error: String(e) }),
          );
          break;
        }
        if ("value" in outcome) {
          this.#log.info("wechat_store_held", { ...fields, tries, held_ms: Math.round(this.now() - arrivedAt) });
          return outcome.value;
        }
        if (!storeFailed(outcome.error)) throw outcome.error;
        last = outcome.error;
      }
    } finally {
      this.#held--;
      this.#wake.delete(wake);
      clearTimeout(timer);
    }
    const ms = Math.round(this.now() - arrivedAt);
    this.#log.warn("wechat_store_hold_failed", { ...fields, tries, held_ms: ms, stopping: this.#closed });
    throw new KefuError(
      "store_failed",
      `${last.message} (tried ${tries} times over ${ms} ms${this.#closed ? "; this node is stopping" : ""})`,
      503,
      { tries, held_ms: ms },
    );
  }
}

function storeFailed(e: unknown): e is KefuError {
  return e instanceof KefuError && e.kind === "store_failed";
}

function notHeld(e: KefuError, why: string): KefuError {
  return new KefuError("store_failed", `${e.message} (not held: ${why})`, 503, e.data);
}
