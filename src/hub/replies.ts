/**
 * The reply use case: an agent answers a contact. One place for every transport — the agent's socket, the HTTP API,
 * and later another node — so that each reply is checked, kept, counted against the channel's reply window and sent
 * the same way: the owner only; kept (`queued`) before it goes, counted against WeChat's window in the same step in
 * the store (never six replies in a five-reply window, whoever sends them); sent by the contact's channel; its end
 * (`sent`, or `failed` and why) recorded and logged.
 *
 * @module
 */

import type { ReplyRouter } from "../channels/channel.ts";
import { KefuError, quote } from "../core/errors.ts";
import { KeyedQueue } from "../core/keyed_queue.ts";
import type { Logger } from "../core/log.ts";
import type { Message } from "../core/message.ts";
import type { Store, WindowRefusal } from "../store/store.ts";
import { ownedBy } from "./routing.ts";

/** What {@link ReplyService} works with. */
export interface ReplyServiceOptions {
  store: Store;
  router: ReplyRouter;
  log: Logger;
  now?: () => number;
  /** Told each reply's end once recorded (the supervisors watching see it, issue 22). */
  recorded?(message: Message, state: "sent" | "failed", detail: string): void;
}

/** How a reply went out. */
export interface ReplyOutcome {
  /** The channel's word for it (`sent`, `passive`, …). */
  status: string;
}

/** Sends agents' replies; see the module documentation. */
export class ReplyService {
  readonly #o: ReplyServiceOptions;
  /** Replies to one contact are checked and kept one at a time, in the order they came. */
  readonly #turns = new KeyedQueue();

  constructor(options: ReplyServiceOptions) {
    this.#o = options;
  }

  /**
   * Send `agent`'s reply `message` (its `contact` names the contact): fills in channel, account and company from the
   * contact. Throws `KefuError`: 404/403 when the contact is not the agent's, 403 `reply_window_closed` when the
   * channel's window does not allow it now, 503 when it could not be kept, or the channel's own refusal (the reply
   * is then recorded as `failed`).
   */
  async reply(agent: string, message: Message): Promise<ReplyOutcome> {
    const { store, router } = this.#o;
    const contact = await this.#turns.run(message.contact, async () => {
      const c = ownedBy(agent, message.contact, await store.contact(message.contact), "reply to");
      message.agent = agent;
      message.channel = c.channel;
      message.company ||= c.company;
      message.account = c.account;
      let kept;
      try {
        kept = await store.saveReply(message, router.windowRules(c));
      } catch (e) {
        throw new KefuError(
          "store_failed",
          `cannot keep reply ${quote(message.id)}: ${(e as Error).message}; it was not sent, try again`,
          503,
        );
      }
      if ("refused" in kept) throw windowClosed(c.user, kept, this.#o.now?.() ?? Date.now());
      return c;
    });
    let status: string;
    try {
      status = await router.send(message, contact);
    } catch (e) {
      // The router has logged and counted it (reply_failed).
      const detail = e instanceof Error ? e.message : String(e);
      await this.#record(message, "failed", detail);
      throw e;
    }
    await this.#record(message, "sent", status);
    return { status };
  }

  // Recorded before the agent is told, so that the history it reads next says the same.
  #record(message: Message, state: "sent" | "failed", detail: string): Promise<void> {
    return this.#o.store.setOutboundState(message, state, detail).then(
      () => this.#o.recorded?.(message, state, detail),
      (e) => this.#o.log.error("reply_state_failed", { contact: message.contact, id: message.id, error: String(e) }),
    );
  }
}

// WeChat's words for it: which window, and what the agent can do.
function windowClosed(user: string, refusal: WindowRefusal, now: number): KefuError {
  const open = refusal.windows.filter((w) => now - w.openedAt < w.ms);
  const why = open.length > 0
    ? `${open.map((w) => `${w.quota} replies`).join(" and ")} were already sent since the user's last ${
      open.map((w) => w.name === "event" ? "action" : "message").join(" and ")
    } (WeChat's limit)`
    : "the user has not written (or followed, clicked a menu, scanned a code) recently enough; WeChat allows replies " +
      "for 48 h after a message and 1 min after an action";
  return new KefuError(
    "reply_window_closed",
    `cannot send to ${JSON.stringify(user)}: ${why}. Nothing was sent; wait for the user to write again ` +
      "(WeChat's customer-service rule, errcode 45015/45047)",
    403,
  );
}
