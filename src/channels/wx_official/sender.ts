/**
 * Agents' replies on their way to WeChat: through the customer-service API
 * (media uploaded first), or passively in the answer to WeChat's request for
 * accounts without that API (the reply router sends a user's replies one at a
 * time, in order); a reply WeChat would refuse is refused here first.
 *
 * @module
 */

import { accountId, type WechatAccount } from "./config.ts";
import type { ContactRecord, WindowRule } from "../../store/store.ts";
import type { TypingResult } from "../channel.ts";
import type { ReplyWindowView } from "../../hub/routing.ts";
import { KefuError, quote } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { isMediaType, type Message } from "../../core/message.ts";
import type { PassiveReplies } from "./passive_reply.ts";
import { UPLOAD_PATH } from "../../envelope/protocol.ts";
import { MESSAGE_WINDOW, type ReplyWindows, WINDOW_RULES } from "./reply_window.ts";
import type { Uploads } from "../../media/uploads.ts";
import { customMedia, type CustomMessage, customText, WechatApi, WechatApiError } from "./api.ts";
import type { SharedTokens } from "../../cluster/shared_tokens.ts";

/** What became of a reply: WeChat took it (customer-service API), or it went out in the answer to WeChat's request. */
export type SendStatus = "sent" | "passive";

/** Options for {@link Outbound}. */
export interface OutboundOptions {
  accounts: WechatAccount[];
  log: Logger;
  windows: ReplyWindows;
  passive: PassiveReplies;
  uploads: Uploads;
  /** Settings for each account's API client (tests shorten the back-off). */
  api?: {
    backoffMs?: number;
    maxBusyRetries?: number;
    timeoutMs?: number;
    fetch?: typeof fetch;
    tokens?: SharedTokens;
  };
}

interface Channel {
  account: WechatAccount;
  id: string;
  api?: WechatApi;
}

const UPLOAD_PREFIX = `${UPLOAD_PATH}/`;

/** The outbound side of every configured account. */
export class Outbound {
  readonly #channels = new Map<string, Channel>();
  readonly #o: OutboundOptions;

  constructor(options: OutboundOptions) {
    this.#o = options;
    for (const account of options.accounts) {
      const id = accountId(account);
      const api = account.appId !== "" && account.appSecret !== ""
        ? new WechatApi({
          appId: account.appId,
          appSecret: account.appSecret,
          apiBase: account.apiBase,
          tokenMode: account.tokenMode,
          ...options.api,
        })
        : undefined;
      this.#channels.set(id, { account, id, api });
    }
  }

  /**
   * Send one accepted reply to `contact` (a user of one of these accounts: `contact.user` is the openid); throws
   * `KefuError` saying what went wrong and what to do.
   */
  send(m: Message, contact: ContactRecord): Promise<SendStatus> {
    const ch = this.#channels.get(contact.account);
    if (ch === undefined) return Promise.reject(unknownAccount(contact));
    return this.#send(ch, m, contact.user);
  }

  /** Show "typing…" in the user's chat, when WeChat's rules allow it now. */
  async typing(contact: ContactRecord): Promise<TypingResult> {
    const ch = this.#channels.get(contact.account);
    if (ch === undefined || ch.api === undefined || ch.account.replyMode === "passive") {
      return { status: "skipped", detail: "this user's account has no customer-service API to show typing with" };
    }
    const refusal = this.#o.windows.typingRefusal(ch.id, contact.user);
    if (refusal !== "") return { status: "skipped", detail: refusal };
    await this.#call(() => ch.api!.typing(contact.user, "Typing"));
    this.#o.windows.typingShown(ch.id, contact.user);
    return { status: "typing" };
  }

  /**
   * The reply windows of a user of an account whose replies go through the customer-service API; null for a
   * passive-mode account (it answers within WeChat's 5 seconds instead) or one that cannot send.
   */
  replyWindow(contact: ContactRecord): ReplyWindowView | null {
    const ch = this.#channels.get(contact.account);
    if (ch === undefined || ch.api === undefined || ch.account.replyMode === "passive") return null;
    const view = this.#o.windows.view(ch.id, contact.user);
    // Windows closed for good are swept from memory: one the contact's last message says expired is shown as such
    // (the page says "wrote over 48 hours ago", not "has not written").
    const expired = contact.lastInboundTime + MESSAGE_WINDOW.ms / 1000;
    if (view.message_until === 0 && contact.lastInboundTime > 0 && expired * 1000 < Date.now()) {
      view.message_until = expired;
    }
    return view;
  }

  /**
   * The windows a reply to `contact` is counted against in the store (WeChat's customer-service rules), for an
   * account whose replies go through the customer-service API; none in passive mode (WeChat's own request is
   * answered) or without AppID/AppSecret (refused anyway).
   */
  windowRules(contact: ContactRecord): readonly WindowRule[] {
    const ch = this.#channels.get(contact.account);
    if (ch === undefined || ch.api === undefined || ch.account.replyMode === "passive") return [];
    return WINDOW_RULES;
  }

  /** The API client of an account (undefined: no AppID/AppSecret, or no such account). */
  api(account: string): WechatApi | undefined {
    return this.#channels.get(account)?.api;
  }

  async #send(ch: Channel, m: Message, openid: string): Promise<SendStatus> {
    const { windows, passive } = this.#o;
    if (m.type !== "text" && !isMediaType(m.type)) {
      throw new KefuError(
        "reply_not_supported",
        `cannot send a reply of type ${quote(m.type)} to WeChat: kefu sends text, image, voice and video`,
      );
    }
    if (ch.account.replyMode === "passive") {
      // offer() refuses with the reason when no request of WeChat's is open: no upload for nothing.
      if (isMediaType(m.type) && await passive.isOpen(ch.id, openid)) m.media = await this.#mediaId(ch, m, openid);
      await passive.offer(ch.id, openid, m);
      return "passive";
    }
    if (ch.api === undefined) {
      throw new KefuError(
        "reply_not_supported",
        `cannot send to ${quote(openid)}: account ${quote(ch.id)} has no AppID/AppSecret for the ` +
          "customer-service API; configure them, or set its reply mode to passive",
        409,
      );
    }
    // The store counted this reply against the user's windows when it kept it (ReplyService): here only the local
    // view of them follows.
    let body: CustomMessage;
    if (m.type === "text") body = customText(openid, m.content);
    else body = customMedia(openid, m.type as "image" | "voice" | "video", await this.#mediaId(ch, m, openid));
    await this.#call(() => ch.api!.sendCustom(body));
    windows.sent(ch.id, openid);
    return "sent";
  }

  // media_path is a file the agent uploaded to kefu (uploaded to WeChat now, once per account), or a WeChat media_id.
  async #mediaId(ch: Channel, m: Message, openid: string): Promise<string> {
    const path = m.media;
    if (!path.startsWith(UPLOAD_PREFIX)) return path;
    const { uploads } = this.#o;
    const id = path.slice(UPLOAD_PREFIX.length);
    // Known (here or on another node) before the file is read: this node may not have it.
    const known = await uploads.mediaIdOf(id, ch.id);
    if (known !== undefined) return known;
    const file = await uploads.load(id);
    if (file === undefined) {
      throw new KefuError("media_not_found", `cannot send ${quote(path)}: no such upload; upload the file again`, 404);
    }
    if (ch.api === undefined) {
      throw new KefuError(
        "reply_not_supported",
        `cannot send a file to ${quote(openid)}: account ${quote(ch.id)} has no AppID/AppSecret to upload it with`,
        409,
      );
    }
    const type = m.type as "image" | "voice" | "video";
    const { media_id } = await this.#call(() => ch.api!.uploadMedia(type, file.bytes, file.filename, file.contentType));
    await uploads.setMediaId(file, ch.id, media_id);
    return media_id;
  }

  // WeChat's refusals carry their errcode to the agent; not reaching WeChat is told apart.
  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof WechatApiError) {
        this.#o.log.warn("wechat_api_error", { action: e.action, errcode: e.errcode });
        throw new KefuError("wechat_api_error", `${e.message}. Nothing was sent`, 502, {
          errcode: e.errcode,
          errmsg: e.errmsg,
        });
      }
      if (e instanceof KefuError) throw e;
      this.#o.log.warn("wechat_unreachable", { error: (e as Error).message });
      throw new KefuError("wechat_unreachable", `${(e as Error).message}; nothing was sent, try again`, 502);
    }
  }
}

// A contact of this channel whose account is not (or no longer) configured.
function unknownAccount(contact: ContactRecord): KefuError {
  return new KefuError(
    "no_route",
    `cannot send the reply to contact ${quote(contact.id)}: its Official Account ${
      quote(contact.account)
    } is not configured in this kefu; the reply was kept, not sent`,
    409,
    { channel: contact.channel, account: contact.account },
  );
}
