/**
 * Exactly one holder per piece of work that must run once among several kefu nodes (a WXBot key's socket, a PC
 * hook's callback registration): each node makes a {@link Holder} for the work's key, and the store's lease on that
 * key (`store.lease(key, node, until)`, decided by the store of record) says which node runs it.
 *
 * - Standing by, a node tries to take the lease every `renewMs`; the node that gets it starts the work.
 * - Holding, it renews every `renewMs`; a renewal the store refuses (another node holds the key: this one's lease
 *   ran out) stops the work at once.
 * - A renewal that fails (the store unreachable) or does not answer does not stop the work by itself: the work is
 *   stopped by a local deadline, `marginMs` before the last lease taken ends, measured on this process's monotonic
 *   clock from before that lease was asked for. Another node can take the lease only after it ended by its own clock,
 *   so the two never run at once while the nodes' clocks differ by less than `marginMs` (minus the time the work takes
 *   to stop: closing a socket, a few ms).
 * - A SIGKILLed holder stops renewing: its lease ends at most `leaseMs` after its last renewal, and a standby takes it
 *   at its next try — within `leaseMs + renewMs` (with the defaults 8 s + 2 s, plus up to 10 % jitter of a try).
 * - A drain ({@link Holder.stop}) stops the work, then gives the lease back: a standby takes it at its next try.
 *
 * On SQLite one process owns the store, so it always holds; the same code runs.
 *
 * @module
 */

import type { Logger } from "../core/log.ts";
import type { Store } from "../store/store.ts";

/** How long a lease lasts unless renewed. */
export const HOLD_LEASE_MS = 8_000;
/** How often a holder renews and a standby tries. */
export const HOLD_RENEW_MS = 2_000;
/** How long before its lease ends a holder that could not renew stops its work. */
export const HOLD_MARGIN_MS = 2_000;

/** The work a {@link Holder} starts when it takes the lease and stops when it gives it up or loses it. */
export interface HeldWork {
  /** Start the work (resolves once it is under way; need not wait for a connection). */
  start(): void | Promise<void>;
  /** Stop it at once; `why` is `drain` (this node stops: hand over) or `lost` (the lease is, or may be, gone). */
  stop(why: "drain" | "lost"): void | Promise<void>;
}

/** Where a holder stands. */
export type HolderState = "standby" | "holding" | "stopped";

/** What `/healthz` shows of a holder. */
export interface HolderHealth {
  /** The lease's key. */
  key: string;
  /** `holding`: this node runs the work; `standby`: another node does (or nobody yet); `stopped`: drained. */
  hold: HolderState;
  /** The node that held the lease when last looked (this one while holding); absent when nobody did. */
  holder?: string;
  /** Times this node took the lease. */
  taken: number;
  /** Why the work last stopped here, when it did. */
  lost?: string;
}

/** Options of {@link Holder}. */
export interface HolderOptions {
  store: Pick<Store, "lease" | "release" | "leaseOf">;
  /** What is held (`wxbot:<key id>`, `pc_hook:<hook>`). */
  key: string;
  /** This node (`NODE_ID`). */
  node: string;
  work: HeldWork;
  log: Logger;
  /** Default {@link HOLD_LEASE_MS}. */
  leaseMs?: number;
  /** Default {@link HOLD_RENEW_MS}. */
  renewMs?: number;
  /** Default {@link HOLD_MARGIN_MS}; less than `leaseMs - renewMs` so that one failed renewal is survived. */
  marginMs?: number;
  /** The wall clock the lease's end is written in (the store compares it with its own); default `Date.now`. */
  now?: () => number;
  random?: () => number;
}

/** Makes a {@link Holder} for a key: what `main.ts` hands the channels (undefined: no holders, the work just runs). */
export type Hold = (key: string, work: HeldWork) => Holder;

/** Holds one lease while alive, running the work only while it does. */
export class Holder {
  readonly #o: Required<HolderOptions>;
  #state: "active" | "stopped" = "active";
  #running = false;
  #holder: string | undefined;
  #taken = 0;
  #lost: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #deadline: ReturnType<typeof setTimeout> | undefined;
  #tick: Promise<void> | undefined;
  /** Starts and stops of the work, one after the other. */
  #chain: Promise<void> = Promise.resolve();
  #errorSaid = false;

  constructor(options: HolderOptions) {
    const leaseMs = options.leaseMs ?? HOLD_LEASE_MS;
    const renewMs = options.renewMs ?? HOLD_RENEW_MS;
    const marginMs = options.marginMs ?? HOLD_MARGIN_MS;
    if (!(renewMs + marginMs < leaseMs)) {
      throw new Error(
        `cannot hold ${JSON.stringify(options.key)}: renewMs (${renewMs}) + marginMs (${marginMs}) must be less than ` +
          `leaseMs (${leaseMs})`,
      );
    }
    this.#o = { now: Date.now, random: Math.random, ...options, leaseMs, renewMs, marginMs };
  }

  /** The key held. */
  get key(): string {
    return this.#o.key;
  }

  /** Whether this node runs the work now. */
  get holding(): boolean {
    return this.#running;
  }

  /** Begin trying to take the lease (at once, then every `renewMs`). Idempotent. */
  start(): void {
    if (this.#state === "stopped" || this.#timer !== undefined || this.#tick !== undefined) return;
    this.#schedule(0);
  }

  /** A drain: stop trying, stop the work, give the lease back (the next node takes it at its next try). Idempotent. */
  async stop(): Promise<void> {
    if (this.#state === "stopped") return this.#chain;
    this.#state = "stopped";
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // A try under way is not waited for (the store may not answer): what it takes after this is given back there.
    const was = this.#running;
    this.#halt("drain", "this node stopped");
    await this.#chain;
    if (!was) return;
    try {
      await within(this.#o.store.release(this.#o.key, this.#o.node), this.#o.marginMs);
      this.#o.log.info("hold_released", { key: this.#o.key, node: this.#o.node });
    } catch (e) {
      // The lease ends by itself within leaseMs: the next node takes over then.
      this.#o.log.warn("hold_release_failed", { key: this.#o.key, error: errorText(e) });
    }
  }

  /** What `/healthz` shows. */
  health(): HolderHealth {
    const hold = this.#state === "stopped" ? "stopped" : this.#running ? "holding" : "standby";
    const h: HolderHealth = { key: this.#o.key, hold, taken: this.#taken };
    const holder = this.#running ? this.#o.node : this.#holder;
    if (holder !== undefined) h.holder = holder;
    if (this.#lost !== undefined) h.lost = this.#lost;
    return h;
  }

  #schedule(ms: number): void {
    if (this.#state === "stopped") return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#tick = this.#try().finally(() => this.#tick = undefined);
    }, ms);
  }

  async #try(): Promise<void> {
    const { store, key, node, leaseMs, marginMs, renewMs, log } = this.#o;
    // Measured before asking: the lease the store writes ends at `asked + leaseMs` at the latest.
    const asked = performance.now();
    try {
      // A store that does not answer is a failed try: the next one is not held up by it.
      const held = await within(store.lease(key, node, this.#o.now() + leaseMs), renewMs);
      this.#errorSaid = false;
      if (this.#state === "stopped") {
        // stop() came while asking (and did not wait): what was taken meanwhile is given back.
        if (held) await store.release(key, node).catch(() => {});
        return;
      }
      if (held) {
        const left = asked + leaseMs - marginMs - performance.now();
        if (left <= 0) {
          // Answered too late to be relied on: the next try renews it.
          log.warn("hold_renewed_late", { key, node, late_ms: Math.round(-left) });
        } else {
          clearTimeout(this.#deadline);
          this.#deadline = setTimeout(() => {
            this.#deadline = undefined;
            this.#halt("lost", `the lease could not be renewed within ${leaseMs - marginMs} ms`);
          }, left);
          this.#holder = node;
          if (!this.#running) this.#begin();
        }
      } else {
        if (this.#running) this.#halt("lost", "another node holds the lease");
        this.#holder = (await within(store.leaseOf(key), renewMs).catch(() => undefined))?.holder;
      }
    } catch (e) {
      // Holding, the work goes on until the deadline (set when the lease was last taken) stops it.
      if (!this.#errorSaid) {
        this.#errorSaid = true;
        log.warn("hold_lease_failed", {
          key,
          node,
          holding: this.#running,
          error: errorText(e),
          detail: this.#running ? `the work stops unless the lease is renewed in time` : "trying again",
        });
      }
    }
    // A little jitter so that the nodes' tries do not line up.
    this.#schedule(Math.round(renewMs * (0.9 + this.#o.random() * 0.2)));
  }

  #begin(): void {
    this.#running = true;
    this.#taken++;
    this.#lost = undefined;
    const { key, node, log, work } = this.#o;
    log.info("hold_taken", { key, node });
    this.#chain = this.#chain.then(() => work.start()).catch((e) =>
      log.error("hold_start_failed", { key, node, error: errorText(e) })
    );
  }

  #halt(why: "drain" | "lost", detail: string): void {
    clearTimeout(this.#deadline);
    this.#deadline = undefined;
    if (!this.#running) return;
    this.#running = false;
    if (why === "lost") {
      this.#lost = detail;
      this.#holder = undefined;
    }
    const { key, node, log, work } = this.#o;
    log[why === "lost" ? "warn" : "info"](why === "lost" ? "hold_lost" : "hold_handing_over", { key, node, detail });
    this.#chain = this.#chain.then(() => work.stop(why)).catch((e) =>
      log.error("hold_stop_failed", { key, node, error: errorText(e) })
    );
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// `p`, or a rejection once `ms` passed without its answer.
async function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
