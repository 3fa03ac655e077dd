/**
 * Which signed webhook requests kefu has taken: a `(timestamp, nonce)` pair of an account is taken once within the
 * skew window. WeChat's `signature` covers the token, timestamp and nonce but not the body, so one signed URL seen
 * anywhere (a proxy's log) would otherwise carry any body for `WECHAT_MAX_SKEW_SECONDS`.
 *
 * A pair is remembered with a digest of its body: the same pair with the same body is WeChat trying the same
 * delivery again (after a timeout, or after kefu failed to commit it), which must go through — the hub's
 * de-duplication answers it; the same pair with another body is a forgery and is refused. A pair is remembered
 * while its request is handled and forgotten again when the message could not be committed, so what WeChat retries
 * is never refused for having been seen.
 *
 * Several kefu nodes share the memory ({@link SharedNonces} over the nodes' shared state on Redis: `SET key digest NX
 * PX` as one script that answers the digest already there, and a compare-and-delete to forget), so that a replay
 * sent to another node is refused too; one process keeps it in its own ({@link InMemoryNonces}).
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { SharedState } from "../../cluster/shared_state.ts";

/** Where taken `(account, timestamp, nonce)` pairs are kept until they can no longer pass the timestamp check. */
export interface NonceMemory {
  /**
   * Remember `key` with `digest` until `expiresAtMs` (epoch ms) unless it is known; answers the digest it is known
   * with, or undefined when it was not known (and is now).
   */
  remember(key: string, digest: string, expiresAtMs: number): Promise<string | undefined>;
  /** Forget `key` if it still holds `digest`: its delivery failed before its commit, so a retry must be taken. */
  forget(key: string, digest: string): Promise<void>;
}

/** The memory of an account whose replay guard is off (`WECHAT_REPLAY_GUARD=off`): it knows no pair. */
export const NO_NONCE_MEMORY: NonceMemory = {
  remember: () => Promise.resolve(undefined),
  forget: () => Promise.resolve(),
};

/** The key of one signed request of one account. */
export function nonceKey(account: string, timestamp: string, nonce: string): string {
  return `${account}\u0000${timestamp}\u0000${nonce}`;
}

/** A short digest of a request body (128 bits of SHA-256, base64url): what tells a retry from a forgery. */
export function bodyDigest(body: string): string {
  return createHash("sha256").update(body).digest().subarray(0, 16).toString("base64url");
}

/** Options for {@link InMemoryNonces}. */
export interface InMemoryNoncesOptions {
  /** Most pairs kept; past it the oldest go first (and {@link InMemoryNonces.evicted} counts them). Default 200,000. */
  maxEntries?: number;
  /** Clock in epoch ms (tests move it). */
  now?: () => number;
}

/**
 * {@link NonceMemory} of one process: a Map in insertion order, bounded in entries. Expired pairs are dropped as new
 * ones come (they are the oldest, or nearly: every pair expires a fixed window after its own timestamp).
 */
export class InMemoryNonces implements NonceMemory {
  readonly #entries = new Map<string, { digest: string; expiresAt: number }>();
  readonly #max: number;
  readonly #now: () => number;
  /** Pairs dropped before they expired because the memory was full (a replay of them would be taken again). */
  evicted = 0;

  constructor(options: InMemoryNoncesOptions = {}) {
    this.#max = Math.max(1, options.maxEntries ?? 200_000);
    this.#now = options.now ?? Date.now;
  }

  /** Pairs kept now. */
  get size(): number {
    return this.#entries.size;
  }

  remember(key: string, digest: string, expiresAtMs: number): Promise<string | undefined> {
    const now = this.#now();
    const known = this.#entries.get(key);
    if (known !== undefined && known.expiresAt > now) return Promise.resolve(known.digest);
    if (known !== undefined) this.#entries.delete(key);
    this.#prune(now);
    this.#entries.set(key, { digest, expiresAt: expiresAtMs });
    return Promise.resolve(undefined);
  }

  forget(key: string, digest: string): Promise<void> {
    if (this.#entries.get(key)?.digest === digest) this.#entries.delete(key);
    return Promise.resolve();
  }

  // From the oldest: expired ones, then (when full) live ones, counted.
  #prune(now: number): void {
    for (const [key, e] of this.#entries) {
      if (e.expiresAt > now && this.#entries.size < this.#max) break;
      if (e.expiresAt > now) this.evicted++;
      this.#entries.delete(key);
    }
  }
}

/** Options for {@link SharedNonces}. */
export interface SharedNoncesOptions {
  state: SharedState;
  /** Told when the shared state failed and this node's own memory answered (`error` names the failure). */
  onUnshared?: (error: string) => void;
  /** This node's own memory, used while the shared state fails; default a new {@link InMemoryNonces}. */
  fallback?: NonceMemory;
  /** Clock in epoch ms (tests move it). */
  now?: () => number;
}

/**
 * {@link NonceMemory} of every node: one key per pair in the shared state, living until the pair's timestamp can no
 * longer pass. While the shared state fails (Redis away) the node's own memory answers: a replay to this node is
 * still refused, one to another node only once Redis is back; a webhook is never refused for Redis being away
 * (WeChat would give up on the message after its retries).
 */
export class SharedNonces implements NonceMemory {
  readonly #o: SharedNoncesOptions;
  readonly #fallback: NonceMemory;
  readonly #now: () => number;

  constructor(options: SharedNoncesOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#fallback = options.fallback ?? new InMemoryNonces({ now: this.#now });
  }

  async remember(key: string, digest: string, expiresAtMs: number): Promise<string | undefined> {
    try {
      return await this.#o.state.add(`wx_nonce:${key}`, digest, expiresAtMs - this.#now());
    } catch (e) {
      this.#o.onUnshared?.(e instanceof Error ? e.message : String(e));
      return await this.#fallback.remember(key, digest, expiresAtMs);
    }
  }

  async forget(key: string, digest: string): Promise<void> {
    await this.#fallback.forget(key, digest);
    try {
      await this.#o.state.removeIf(`wx_nonce:${key}`, digest);
    } catch (e) {
      this.#o.onUnshared?.(e instanceof Error ? e.message : String(e));
    }
  }
}
