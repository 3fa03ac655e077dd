/**
 * Passive replies, for accounts without the customer-service API (48001):
 * the only way to answer is in the HTTP answer to WeChat's push. WeChat waits
 * 5 seconds, then drops the request and retries the same message, three times
 * at most; so the webhook holds WeChat's request (and its retries) up to a
 * budget (~14 s) and an agent's reply that comes in time is written into it.
 *
 * One entry per user: a reply answers the user's latest message, once.
 *
 * @module
 */

import { KefuError } from "../../core/errors.ts";
import type { Message } from "../../core/message.ts";

interface Offer {
  message: Message;
  taken: () => void;
  expired: (e: KefuError) => void;
}

interface Waiter {
  resolve: (reply: Message | undefined) => void;
  /** Past this (epoch ms) WeChat has dropped the request: a reply waits for the retry instead. */
  aliveUntil: number;
}

interface Entry {
  timer?: ReturnType<typeof setTimeout>;
  /** The latest request of WeChat's for the user's message. */
  waiter?: Waiter;
  /** A reply that came while no live request was open (between two retries). */
  offered?: Offer;
}

/** Options for {@link PassiveReplies}. */
export interface PassiveRepliesOptions {
  /** Users held at once; past it new messages are answered at once. Default 10,000. */
  maxUsers?: number;
  now?: () => number;
}

/** Waiting WeChat requests and the replies that answer them. */
export class PassiveReplies {
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(options: PassiveRepliesOptions = {}) {
    this.#max = options.maxUsers ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** A new message from the user: a reply may come for `holdMs`. Answers false when too many users are held. */
  open(account: string, openid: string, holdMs: number): boolean {
    const key = `${account}\n${openid}`;
    const old = this.#entries.get(key);
    if (old === undefined && this.#entries.size >= this.#max) return false;
    // A reply offered for the previous message still answers this request; its clock restarts.
    if (old !== undefined) clearTimeout(old.timer);
    const e: Entry = old ?? {};
    e.timer = setTimeout(() => this.#expire(key, e), holdMs);
    this.#entries.set(key, e);
    return true;
  }

  /** Whether a reply to this user can still go out passively. */
  isOpen(account: string, openid: string): boolean {
    return this.#entries.has(`${account}\n${openid}`);
  }

  /**
   * Hold one of WeChat's requests: resolves with the agent's reply, or undefined
   * when the budget is spent or a retry took this request's place. WeChat drops
   * a request after 5 seconds without telling: one held longer than `aliveMs` is
   * presumed gone, and a reply that comes then waits for the retry.
   */
  hold(account: string, openid: string, aliveMs: number): Promise<Message | undefined> {
    const key = `${account}\n${openid}`;
    const e = this.#entries.get(key);
    if (e === undefined) return Promise.resolve(undefined);
    const offer = e.offered;
    if (offer) {
      this.#finish(key, e);
      offer.taken();
      return Promise.resolve(offer.message);
    }
    // A retry replaces the request WeChat gave up on.
    e.waiter?.resolve(undefined);
    return new Promise((resolve) => e.waiter = { resolve, aliveUntil: this.#now() + aliveMs });
  }

  /**
   * An agent's reply: resolves once it is written into WeChat's request; throws
   * `KefuError` passive_window_closed when no request is (or will be) open for it.
   */
  offer(account: string, openid: string, message: Message): Promise<void> {
    const key = `${account}\n${openid}`;
    const e = this.#entries.get(key);
    if (e === undefined) {
      return Promise.reject(
        closed(openid, "WeChat's request for the user's last message is no longer open (it waits about 15 seconds)"),
      );
    }
    if (e.offered) {
      return Promise.reject(closed(openid, "a reply to the user's last message is already waiting to go out"));
    }
    const w = e.waiter;
    if (w !== undefined && this.#now() < w.aliveUntil) {
      e.waiter = undefined;
      this.#finish(key, e);
      w.resolve(message);
      return Promise.resolve();
    }
    return new Promise((taken, expired) => e.offered = { message, taken, expired });
  }

  /** Answer every held request with nothing and refuse waiting replies (shutdown). */
  close(): void {
    for (const [key, e] of this.#entries) this.#expire(key, e);
  }

  // Whatever request still waits (one WeChat dropped) is answered, so no handler is left hanging.
  #finish(key: string, e: Entry): void {
    clearTimeout(e.timer);
    e.waiter?.resolve(undefined);
    e.waiter = undefined;
    if (this.#entries.get(key) === e) this.#entries.delete(key);
  }

  #expire(key: string, e: Entry): void {
    this.#finish(key, e);
    e.offered?.expired(closed(key.slice(key.indexOf("\n") + 1), "no retry of WeChat's came in time to carry it"));
  }
}

function closed(openid: string, why: string): KefuError {
  return new KefuError(
    "passive_window_closed",
    `cannot reply to ${JSON.stringify(openid)}: this account replies passively (no customer-service API) and ${why}. ` +
      "Nothing was sent; reply after the user's next message, within about 15 seconds",
    409,
  );
}
