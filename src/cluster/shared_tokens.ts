/**
 * One access token for every node: WeChat's access_token of an AppID is fetched by one node, kept in the
 * {@link SharedState} for as long as it lives, and used by all. A refresh — the token due, or refused by WeChat
 * (40001/42001) — is one fetch under a lock: a node first reads the shared token (another node may have replaced the
 * one it saw refused already), then takes the lock (`SET NX PX` with a value of its own), reads again, fetches,
 * stores and releases the lock (a compare-and-delete: never a lock another node took after ours expired). The others
 * wait a little and read its result; one with a token still valid (due but not refused) uses it meanwhile.
 *
 * Without the shared state (Redis away) a node fetches for itself, as one process does: a reply is never held up
 * by the cluster, at the price of the old race between nodes until Redis is back.
 *
 * Tokens are values only: never logged, never in an error.
 *
 * @module
 */

import type { SharedState } from "./shared_state.ts";

/** A token and when it is due. */
export interface SharedToken {
  value: string;
  /** Epoch ms after which a new one is fetched (ahead of its expiry). */
  refreshAt: number;
  /** Epoch ms WeChat stops taking it. */
  expiresAt: number;
}

/** Options for {@link SharedTokens}. */
export interface SharedTokensOptions {
  state: SharedState;
  /** How long a lock holds if its node dies during the fetch; default 30 s (a fetch times out after 15 s). */
  lockTtlMs?: number;
  /** How long a node waits for another's fetch before it gives up; default the lock's TTL and 5 s more. */
  waitMs?: number;
  /** First pause between reads while another node fetches, doubling to 250 ms; default 20. */
  pollMs?: number;
  /** Told when the shared state failed and this node fetched for itself (`error` names the failure, no value). */
  onUnshared?: (error: string) => void;
  /** Clock in epoch ms (tests move it). */
  now?: () => number;
}

class StateFailed extends Error {}

/** Tokens shared by every node, one fetch at a time among them. */
export class SharedTokens {
  readonly #state: SharedState;
  readonly #lockTtl: number;
  readonly #wait: number;
  readonly #poll: number;
  readonly #now: () => number;
  readonly #onUnshared: (error: string) => void;

  constructor(options: SharedTokensOptions) {
    this.#state = options.state;
    this.#lockTtl = options.lockTtlMs ?? 30_000;
    this.#wait = options.waitMs ?? this.#lockTtl + 5_000;
    this.#poll = options.pollMs ?? 20;
    this.#now = options.now ?? Date.now;
    this.#onUnshared = options.onUnshared ?? (() => {});
  }

  /**
   * The token of `name` (an AppID): the shared one while it is not due and is not `rejected`; else the result of one
   * `fetchToken` among all nodes (this node's, or another's it waited for).
   */
  async get(name: string, fetchToken: () => Promise<SharedToken>, rejected?: string): Promise<SharedToken> {
    try {
      return await this.#get(name, fetchToken, rejected);
    } catch (e) {
      if (!(e instanceof StateFailed)) throw e;
      this.#onUnshared(e.message);
      return await fetchToken();
    }
  }

  async #get(name: string, fetchToken: () => Promise<SharedToken>, rejected?: string): Promise<SharedToken> {
    const key = `wx_token:${name}`;
    const lockKey = `wx_token_lock:${name}`;
    const deadline = this.#now() + this.#wait;
    const fresh = (t: SharedToken | undefined): boolean =>
      t !== undefined && t.value !== rejected && this.#now() < t.refreshAt;
    for (let pause = this.#poll;; pause = Math.min(2 * pause, 250)) {
      const shared = await this.#read(key);
      if (fresh(shared)) return shared!;
      const owner = crypto.randomUUID();
      if (await this.#op(() => this.#state.add(lockKey, owner, this.#lockTtl)) === undefined) {
        try {
          // Another node may have stored one between our read and our lock.
          const again = await this.#read(key);
          if (fresh(again)) return again!;
          const got = await fetchToken();
          await this.#op(() => this.#state.set(key, JSON.stringify(got), got.expiresAt - this.#now())).catch(() => {});
          return got;
        } finally {
          // Released at once, not left to expire: a failed fetch lets the next node try now.
          await this.#state.removeIf(lockKey, owner).catch(() => {});
        }
      }
      // Another node is fetching. A token due but neither refused nor expired still works meanwhile.
      if (shared !== undefined && shared.value !== rejected && this.#now() < shared.expiresAt) return shared;
      if (this.#now() >= deadline) {
        throw new Error(
          `cannot get the access_token of ${JSON.stringify(name)}: another node has been fetching it for over ` +
            `${this.#wait} ms (its lock lasts ${this.#lockTtl} ms if that node died); try again`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  async #read(key: string): Promise<SharedToken | undefined> {
    const text = await this.#op(() => this.#state.get(key));
    if (text === undefined) return undefined;
    try {
      const t = JSON.parse(text);
      if (typeof t?.value === "string" && typeof t.refreshAt === "number" && typeof t.expiresAt === "number") return t;
    } catch { /* not ours: fetched again, and replaced */ }
    return undefined;
  }

  async #op<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw new StateFailed(e instanceof Error ? e.message : String(e));
    }
  }
}
