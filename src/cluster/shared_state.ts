/**
 * Small values every kefu node must agree on — WeChat's access_token per AppID, the media_id a file got, the signed
 * webhook requests already taken — and the lock that makes one node fetch a new token for all (Centrifugo's shape:
 * the state beside the {@link Engine}). Two implementations: Redis (`redis_shared_state.ts`, between processes) and
 * memory ({@link MemorySharedState}, one process, as kefu is without `REDIS_URL`).
 *
 * Each value lives for a given time, as in Redis with `PX`: what is shared here is only ever a cache of something
 * WeChat can give again, or a memory that may be forgotten once its time has passed.
 *
 * @module
 */

/** Values with a time to live, shared by every node. */
export interface SharedState {
  /** The value of `key`, or undefined when there is none (or it expired). */
  get(key: string): Promise<string | undefined>;
  /** Set `key` for `ttlMs` (replacing what was there). */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Set `key` for `ttlMs` unless it has a value (`SET NX PX`); answers the value it has, or undefined when set. */
  add(key: string, value: string, ttlMs: number): Promise<string | undefined>;
  /** Delete `key` if it still holds `value` (a compare-and-delete); answers whether it did. */
  removeIf(key: string, value: string): Promise<boolean>;
}

/** Options for {@link MemorySharedState}. */
export interface MemorySharedStateOptions {
  /** Most keys kept; past it the oldest go first. Default 100,000. */
  maxEntries?: number;
  /** Clock in epoch ms (tests move it). */
  now?: () => number;
}

/** {@link SharedState} of one process: a Map in insertion order, bounded in entries, expired keys dropped as read. */
export class MemorySharedState implements SharedState {
  readonly #entries = new Map<string, { value: string; until: number }>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(options: MemorySharedStateOptions = {}) {
    this.#max = Math.max(1, options.maxEntries ?? 100_000);
    this.#now = options.now ?? Date.now;
  }

  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.#live(key));
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#entries.delete(key);
    this.#entries.set(key, { value, until: this.#now() + ttlMs });
    this.#prune();
    return Promise.resolve();
  }

  add(key: string, value: string, ttlMs: number): Promise<string | undefined> {
    const known = this.#live(key);
    if (known !== undefined) return Promise.resolve(known);
    return this.set(key, value, ttlMs).then(() => undefined);
  }

  removeIf(key: string, value: string): Promise<boolean> {
    const same = this.#live(key) === value;
    if (same) this.#entries.delete(key);
    return Promise.resolve(same);
  }

  #live(key: string): string | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (e.until > this.#now()) return e.value;
    this.#entries.delete(key);
  }

  // From the oldest: expired ones, then (when full) live ones.
  #prune(): void {
    const now = this.#now();
    for (const [key, e] of this.#entries) {
      if (e.until > now && this.#entries.size <= this.#max) break;
      this.#entries.delete(key);
    }
  }
}
