/**
 * Channels: the ways users reach kefu (an Official Account's webhook, a push
 * over HTTP, …). Each is one folder under `src/channels/` with an adapter that
 * turns its wire format into `Message`s, hands them to the hub's accept path,
 * and sends agents' replies for its contacts. `main.ts` registers them; the
 * {@link ReplyRouter} is the one place that decides where a reply goes.
 *
 * @module
 */

import type { Hono } from "hono";
import { KefuError, quote } from "../core/errors.ts";
import { KeyedQueue } from "../core/keyed_queue.ts";
import type { Logger } from "../core/log.ts";
import type { Message } from "../core/message.ts";
import type { AcceptOptions, InboundResult } from "../hub/hub.ts";
import type { ReplyWindowView } from "../hub/routing.ts";
import type { ContactRecord, WindowRule } from "../store/store.ts";
import { observeReplyFailed, observeReplySent } from "../metrics/metrics.ts";

/** What a channel gets from kefu to work with. */
export interface ChannelContext {
  /**
   * The accept path: commit, route, deliver. Resolves once the message is committed (answer the sender only
   * then); rejects with `KefuError` when it was not kept.
   */
  accept(message: Message, options?: AcceptOptions): Promise<InboundResult>;
  log: Logger;
  /** Largest request body a channel's HTTP route reads. */
  maxBodyBytes: number;
}

/** How a typing indicator went. */
export interface TypingResult {
  status: "typing" | "skipped";
  /** Why it was skipped. */
  detail?: string;
}

/** One channel. Only `name` is required: a channel may only bring messages in, or only send. */
export interface ChannelAdapter {
  /** The channel's name, as `Message.channel` and the store carry it. */
  readonly name: string;
  /** HTTP routes the channel serves (webhooks, pushes), as a sub-app mounted at `/`. */
  readonly routes?: Hono;
  /**
   * Send an agent's reply to `contact`, one of this channel's; resolves to how it went out (the `status` agents
   * see: `sent`, `passive`, …). Throws `KefuError` saying what went wrong and what to do.
   */
  send?(reply: Message, contact: ContactRecord): Promise<string>;
  /** Show "typing…" to `contact`, when the channel can. */
  typing?(contact: ContactRecord): Promise<TypingResult>;
  /** What the channel allows `contact` now, when it limits replies in time and number (WeChat's windows); else null. */
  replyWindow?(contact: ContactRecord): ReplyWindowView | null;
  /**
   * The windows a reply to `contact` is counted against, in the store, in the same step that keeps it (WeChat's
   * customer-service rules); none when the channel has no such limits.
   */
  windowRules?(contact: ContactRecord): readonly WindowRule[];
  /**
   * Fetch the file of a user's image, voice or video message (at most `maxBytes`), so that kefu keeps it and hands
   * the agent its own URL. Throws an Error saying why it cannot. Without it, media messages are delivered as they came.
   */
  fetchMedia?(message: Message, maxBytes: number): Promise<{ bytes: Uint8Array; contentType: string }>;
  /** Start (a channel that dials out connects here); `main.ts` calls it after the hub is ready. */
  start?(): Promise<void>;
  /** Stop (after the router has let replies under way finish): let go of connections within `ms`. */
  stop?(ms: number): Promise<void>;
  /** What `/healthz` shows of the channel. */
  health?(): Record<string, unknown>;
}

/** Builds a channel from kefu's context (the form `main.ts` registers them in). */
export type ChannelFactory = (ctx: ChannelContext) => ChannelAdapter;

/**
 * Decides where each reply goes: to the channel its contact came through. Replies to one contact go out one at a
 * time, in the order the agent sent them, whatever the channel.
 */
export class ReplyRouter {
  readonly #channels = new Map<string, ChannelAdapter>();
  readonly #queue = new KeyedQueue();
  readonly #log?: Logger;

  /** `log`: every failed reply is a `reply_failed` warn line (and a counter), so that stopped replies are seen. */
  constructor(channels: readonly ChannelAdapter[], options: { log?: Logger } = {}) {
    this.#log = options.log;
    for (const ch of channels) {
      if (this.#channels.has(ch.name)) throw new Error(`cannot register channel ${quote(ch.name)} twice`);
      this.#channels.set(ch.name, ch);
    }
  }

  /** The registered channels, in order. */
  get channels(): ChannelAdapter[] {
    return [...this.#channels.values()];
  }

  /** Send a reply to `contact`; throws `KefuError` `no_route` when no channel can take it. */
  send(reply: Message, contact: ContactRecord): Promise<string> {
    const ch = this.#channels.get(contact.channel);
    if (ch?.send === undefined) return Promise.reject(this.#failed(contact, noRoute(contact, ch)));
    return this.#queue.run(contact.id, () => ch.send!(reply, contact)).then((how) => {
      observeReplySent(contact.channel, contact.account);
      return how;
    }, (e) => {
      throw this.#failed(contact, e);
    });
  }

  // A reply that did not go out: a counter and a warn line (the error's message says why; it never holds a secret).
  #failed(contact: ContactRecord, e: unknown): unknown {
    const code = observeReplyFailed(contact.channel, contact.account, e);
    this.#log?.warn("reply_failed", {
      channel: contact.channel,
      account: contact.account,
      contact: contact.id,
      code,
      reason: e instanceof Error ? e.message : String(e),
    });
    return e;
  }

  /** Wait for replies under way (shutdown), at most `ms`. */
  drain(ms: number): Promise<void> {
    return this.#queue.drain(ms);
  }

  /** What `contact`'s channel allows it now; null when the channel has no reply windows. */
  replyWindow(contact: ContactRecord): ReplyWindowView | null {
    return this.#channels.get(contact.channel)?.replyWindow?.(contact) ?? null;
  }

  /** The reply windows `contact`'s channel counts replies against; none for most channels. */
  windowRules(contact: ContactRecord): readonly WindowRule[] {
    return this.#channels.get(contact.channel)?.windowRules?.(contact) ?? [];
  }

  /** Show "typing…" to `contact` when its channel can; skipped (with the reason) otherwise. */
  typing(contact: ContactRecord): Promise<TypingResult> {
    const ch = this.#channels.get(contact.channel);
    if (ch?.typing === undefined) {
      return Promise.resolve({ status: "skipped", detail: `channel ${quote(contact.channel)} cannot show typing` });
    }
    return ch.typing(contact);
  }
}

function noRoute(contact: ContactRecord, ch: ChannelAdapter | undefined): KefuError {
  const why = ch === undefined
    ? `its channel ${quote(contact.channel)} is not configured in this kefu`
    : `its channel ${quote(contact.channel)} has no way back to the user`;
  return new KefuError(
    "no_route",
    `cannot send the reply to contact ${quote(contact.id)}: ${why}; the reply was kept, not sent`,
    409,
    { channel: contact.channel },
  );
}
