/**
 * Passive replies, for accounts without the customer-service API (48001):
 * the only way to answer is in the HTTP answer to WeChat's push. WeChat waits
 * 5 seconds, then drops the request and retries the same message, three times
 * at most; so the webhook holds WeChat's request (and its retries) up to a
 * budget (~14 s) and an agent's reply that comes in time is written into it.
 *
 * One entry per user: a reply answers the user's latest message, once.
 *
 * Several nodes ({@link SharedPassive}, `src/cluster/passive_relay.ts`): the node holding WeChat's request and the
 * node of the agent's socket may differ, and a retry may reach a third. A reply this node cannot write into a live
 * request of its own is left in the cluster for whichever node carries it (or gets it back, not sent, when the
 * user's requests are held nowhere any more); a request this node takes looks for a reply left for its user.
 *
 * @module
 */

import { KefuError } from "../../core/errors.ts";
import { type Logger, silentLogger } from "../../core/log.ts";
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

// A draining node leaves a request unanswered this long past its presumed end, so that WeChat surely dropped it.
const DROP_MARGIN_MS = 1_000;

interface Entry {
  timer?: ReturnType<typeof setTimeout>;
  /** Several nodes: this node's hold, as recorded for the others. */
  token?: string;
  /** The latest request of WeChat's for the user's message. */
  waiter?: Waiter;
  /** A reply that came while no live request was open (between two retries). */
  offered?: Offer;
}

/** A reply another node left, taken by this one: no other node has it any more. */
export interface TakenReply {
  message: Message;
  /** It went into WeChat's answer here: the node that offered it is told. */
  carried(): void;
  /** No live request here could carry it after all: left again for the next. */
  putBack(): Promise<void>;
}

/** What passive replies share among several nodes (user keys are `<account>\n<openid>`). */
export interface SharedPassive {
  /**
   * This node took one of WeChat's requests for the user (new or a retry): it holds the user's for `holdMs`. Answers
   * a token for {@link release}.
   */
  hold(key: string, holdMs: number): Promise<string>;
  /** The user's message was answered here: no node holds its requests any more (unless a newer hold took over). */
  release(key: string, token: string): Promise<void>;
  /** Whether some node holds the user's requests. */
  isOpen(key: string): Promise<boolean>;
  /** The reply left for the user, taken (of several nodes taking at once, one gets it). */
  take(key: string): Promise<TakenReply | undefined>;
  /**
   * Leave a reply for whichever node carries it and wait: `carried` (it went into an answer), `expired` (nobody did
   * while the user's requests were held; it is taken back, nothing was sent) or `busy` (another reply waits already).
   * Rejects only when it could not be left (nothing was sent).
   */
  offer(key: string, message: Message, signal?: AbortSignal): Promise<"carried" | "expired" | "busy">;
  /** Another node asks this one to carry the reply left for the user: whether a live request here took it. */
  onAsk(handler: (key: string) => Promise<boolean>): void;
}

/** Options for {@link PassiveReplies}. */
export interface PassiveRepliesOptions {
  /** Users held at once; past it new messages are answered at once. Default 10,000. */
  maxUsers?: number;
  now?: () => number;
  /** Several nodes: the cluster's shared state; undefined on one node. */
  shared?: SharedPassive;
  log?: Logger;
}

/** Waiting WeChat requests and the replies that answer them. */
export class PassiveReplies {
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;
  readonly #now: () => number;
  readonly #shared: SharedPassive | undefined;
  readonly #log: Logger;
  /** Replies left in the cluster and waited for: ended at {@link close}. */
  readonly #leaving = new Set<AbortController>();

  constructor(options: PassiveRepliesOptions = {}) {
    this.#max = options.maxUsers ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#shared = options.shared;
    this.#log = options.log ?? silentLogger;
    this.#shared?.onAsk((key) => this.#carryShared(key));
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

  /**
   * Several nodes: tell the others this node holds the user's requests now (after {@link open} answered true, before
   * the message is accepted: an agent who sees it must find its holder). Never throws: the broker away, the reply
   * can only go out here.
   */
  async share(account: string, openid: string, holdMs: number): Promise<void> {
    if (this.#shared === undefined) return;
    const key = `${account}\n${openid}`;
    try {
      const token = await this.#shared.hold(key, holdMs);
      const e = this.#entries.get(key);
      if (e !== undefined) e.token = token;
    } catch (e) {
      this.#log.warn("passive_share_failed", { account, error: String(e) });
    }
  }

  /** Whether a reply to this user can still go out passively (on this node, or on another holding the request). */
  async isOpen(account: string, openid: string): Promise<boolean> {
    const key = `${account}\n${openid}`;
    if (this.#entries.has(key)) return true;
    return await this.#shared?.isOpen(key).catch(() => false) ?? false;
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
      this.#answered(key, e);
      offer.taken();
      return Promise.resolve(offer.message);
    }
    // A retry replaces the request WeChat gave up on.
    e.waiter?.resolve(undefined);
    const held = new Promise<Message | undefined>((resolve) =>
      e.waiter = { resolve, aliveUntil: this.#now() + aliveMs }
    );
    // Several nodes: a reply may have been left for this user while no request of WeChat's was alive.
    if (this.#shared !== undefined) void this.#carryShared(key);
    return held;
  }

  /**
   * An agent's reply: resolves once it is written into WeChat's request; throws
   * `KefuError` passive_window_closed when no request is (or will be) open for it.
   */
  offer(account: string, openid: string, message: Message): Promise<void> {
    const key = `${account}\n${openid}`;
    const w = this.#entries.get(key)?.waiter;
    // A live request held here takes it at once; otherwise, among several nodes, the cluster decides.
    if (this.#shared !== undefined && (w === undefined || this.#now() >= w.aliveUntil)) {
      return this.#offerShared(key, openid, message, this.#shared);
    }
    return this.#offerLocal(key, openid, message);
  }

  #offerLocal(key: string, openid: string, message: Message): Promise<void> {
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
      this.#answered(key, e);
      w.resolve(message);
      return Promise.resolve();
    }
    return new Promise((taken, expired) => e.offered = { message, taken, expired });
  }

  /** Several nodes: a reply no live request here can take goes to the cluster, for whichever node's request can. */
  async #offerShared(key: string, openid: string, message: Message, shared: SharedPassive): Promise<void> {
    const local = this.#entries.get(key);
    const open = local !== undefined || await shared.isOpen(key).catch(() => false);
    if (!open) {
      throw closed(
        openid,
        "WeChat's request for the user's last message is no longer open (it waits about 15 seconds)",
      );
    }
    const stop = new AbortController();
    this.#leaving.add(stop);
    let outcome;
    try {
      outcome = await shared.offer(key, message, stop.signal);
    } catch (e) {
      // Not left (the broker away): as on one node, a request held here is all there is.
      this.#log.warn("passive_offer_failed", { user: openid, error: String(e) });
      if (local !== undefined && this.#entries.get(key) === local) return this.#offerLocal(key, openid, message);
      throw closed(openid, "the other kefu nodes cannot be reached to hand it to the one holding WeChat's request");
    } finally {
      this.#leaving.delete(stop);
    }
    if (outcome === "busy") throw closed(openid, "a reply to the user's last message is already waiting to go out");
    if (outcome === "expired") throw closed(openid, "no retry of WeChat's came in time to carry it");
  }

  // Asked by another node, or on a new request here: a reply left for the user goes into a live request held here.
  async #carryShared(key: string): Promise<boolean> {
    const alive = () => {
      const w = this.#entries.get(key)?.waiter;
      return w !== undefined && this.#now() < w.aliveUntil;
    };
    if (!alive()) return false;
    let taken: TakenReply | undefined;
    try {
      taken = await this.#shared!.take(key);
    } catch (e) {
      this.#log.warn("passive_take_failed", { error: String(e) });
      return false;
    }
    if (taken === undefined) return false;
    const e = this.#entries.get(key);
    const w = e?.waiter;
    if (e === undefined || w === undefined || this.#now() >= w.aliveUntil) {
      // The request went meanwhile (answered, or presumed dropped by WeChat): the next one takes the reply.
      await taken.putBack().catch((err) => this.#log.warn("passive_put_back_failed", { error: String(err) }));
      return false;
    }
    e.waiter = undefined;
    this.#answered(key, e);
    w.resolve(taken.message);
    taken.carried();
    return true;
  }

  /**
   * Shutdown among several nodes: requests still alive are left unanswered until WeChat has given up on them (at most
   * `ms`): its retry then reaches another node, which carries a reply handed over meanwhile — an answer with nothing
   * would end WeChat's retries. Replies handed to this node in the meantime still go into them. Then {@link close}.
   * On one node, {@link close} at once.
   */
  async drain(ms: number): Promise<void> {
    if (this.#shared !== undefined) {
      const now = this.#now();
      let until = now;
      for (const e of this.#entries.values()) {
        if (e.waiter !== undefined && e.waiter.aliveUntil > now) until = Math.max(until, e.waiter.aliveUntil);
      }
      const wait = Math.min(ms, until === now ? 0 : until - now + DROP_MARGIN_MS);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    this.close();
  }

  /** Answer every held request with nothing and refuse waiting replies (shutdown). */
  close(): void {
    for (const stop of this.#leaving) stop.abort();
    for (const [key, e] of this.#entries) this.#expire(key, e);
  }

  // Whatever request still waits (one WeChat dropped) is answered, so no handler is left hanging.
  #finish(key: string, e: Entry): void {
    clearTimeout(e.timer);
    e.waiter?.resolve(undefined);
    e.waiter = undefined;
    if (this.#entries.get(key) === e) this.#entries.delete(key);
  }

  // A reply went into WeChat's answer here: the other nodes stop counting on this node's hold.
  #answered(key: string, e: Entry): void {
    this.#finish(key, e);
    if (this.#shared === undefined || e.token === undefined) return;
    this.#shared.release(key, e.token).catch((err) => this.#log.warn("passive_release_failed", { error: String(err) }));
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
