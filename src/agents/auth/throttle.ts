/**
 * What keeps password guessing slow and cheap for kefu: {@link LoginThrottle} (after a few failures per agent id and
 * per address, each further try waits longer: 429 with `Retry-After`) and {@link Gate} (scrypt costs 32 MiB and tens
 * of ms, so only a few run at once; a few more wait, the rest are told to come back).
 *
 * @module
 */

import { KefuError } from "../../core/errors.ts";

/** Options for {@link LoginThrottle}. */
export interface ThrottleOptions {
  /** Failures allowed before the delays start. Default 5. */
  freeFailures?: number;
  /** The first delay, doubled with each further failure. Default 1000 ms. */
  baseDelayMs?: number;
  /** The longest delay. Default 120,000 ms (a locked-out agent waits two minutes at most). */
  maxDelayMs?: number;
  /** A key without failures for this long is forgotten. Default 15 minutes. */
  forgetMs?: number;
  /** Most keys kept (the oldest go first). Default 10,000. */
  maxKeys?: number;
  /** Clock in epoch ms. */
  now?: () => number;
}

interface Failures {
  count: number;
  last: number;
  blockedUntil: number;
}

/** A 429 saying when to try again; `retryAfter` in whole seconds. */
export class TooManyAttempts extends KefuError {
  constructor(readonly retryAfter: number, message: string) {
    super("too_many_attempts", message, 429, { retry_after: retryAfter });
  }
}

/** Growing delays after failed logins, per key (`agent:<id>`, `addr:<ip>`). */
export class LoginThrottle {
  readonly #keys = new Map<string, Failures>();
  readonly #free: number;
  readonly #base: number;
  readonly #max: number;
  readonly #forget: number;
  readonly #maxKeys: number;
  readonly #now: () => number;

  constructor(options: ThrottleOptions = {}) {
    this.#free = options.freeFailures ?? 5;
    this.#base = options.baseDelayMs ?? 1000;
    this.#max = options.maxDelayMs ?? 120_000;
    this.#forget = options.forgetMs ?? 15 * 60_000;
    this.#maxKeys = options.maxKeys ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Throw {@link TooManyAttempts} when any of `keys` must still wait. */
  check(keys: readonly string[]): void {
    const now = this.#now();
    let until = 0;
    for (const k of keys) until = Math.max(until, this.#live(k, now)?.blockedUntil ?? 0);
    if (until > now) {
      const s = Math.ceil((until - now) / 1000);
      throw new TooManyAttempts(s, `too many failed sign-ins: try again in ${s} s`);
    }
  }

  /** A failed try for each of `keys`: past the free ones, the next try waits twice as long as the last. */
  failed(keys: readonly string[]): void {
    const now = this.#now();
    for (const k of keys) {
      const f = this.#live(k, now) ?? { count: 0, last: now, blockedUntil: 0 };
      f.count++;
      f.last = now;
      const over = f.count - this.#free;
      if (over >= 0) f.blockedUntil = now + Math.min(this.#max, this.#base * 2 ** Math.min(over, 30));
      // Re-inserted: the Map's order is the order of last failure, so the oldest are forgotten first.
      this.#keys.delete(k);
      this.#keys.set(k, f);
    }
    for (const k of this.#keys.keys()) {
      if (this.#keys.size <= this.#maxKeys) break;
      this.#keys.delete(k);
    }
  }

  /** A successful sign-in clears the agent's failures (not the address's: one good password must not unlock it). */
  succeeded(key: string): void {
    this.#keys.delete(key);
  }

  #live(key: string, now: number): Failures | undefined {
    const f = this.#keys.get(key);
    if (f !== undefined && now - f.last > this.#forget && f.blockedUntil <= now) {
      this.#keys.delete(key);
      return undefined;
    }
    return f;
  }
}

/** Options for {@link Gate}. */
export interface GateOptions {
  /** How many run at once. */
  running: number;
  /** How many more may wait; past that {@link Gate.run} refuses at once. */
  waiting: number;
}

/** A small semaphore: at most `running` tasks at once, at most `waiting` queued, the rest refused with a 429. */
export class Gate {
  readonly #running: number;
  readonly #waiting: number;
  #active = 0;
  readonly #queue: (() => void)[] = [];
  /** Tasks refused because the queue was full. */
  refused = 0;

  constructor(options: GateOptions) {
    this.#running = Math.max(1, options.running);
    this.#waiting = Math.max(0, options.waiting);
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active;
  }

  /** Run `task` when a place is free; throws {@link TooManyAttempts} (retry after 1 s) when too many wait. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#running) {
      if (this.#queue.length >= this.#waiting) {
        this.refused++;
        throw new TooManyAttempts(1, "too many sign-ins at once: try again in a second");
      }
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    } else {
      this.#active++;
    }
    try {
      return await task();
    } finally {
      // The place goes straight to the next waiter, so the count never dips below a queued task.
      const next = this.#queue.shift();
      if (next) next();
      else this.#active--;
    }
  }
}
