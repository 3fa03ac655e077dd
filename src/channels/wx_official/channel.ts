/**
 * The WeChat Official Account channel: one webhook per account on the way in
 * (`webhook.ts`), the customer-service API or passive replies on the way out
 * (`sender.ts`), within WeChat's reply windows (`reply_window.ts`).
 *
 * @module
 */

import { accountId, type WechatAccount } from "../../config/config.ts";
import type { Uploads } from "../../media/uploads.ts";
import type { ChannelAdapter, ChannelFactory } from "../channel.ts";
import type { PassiveReplies } from "./passive_reply.ts";
import type { ReplyWindows } from "./reply_window.ts";
import { Outbound, type OutboundOptions } from "./sender.ts";
import { wechatRoutes, WX_OFFICIAL } from "./webhook.ts";

export { WX_OFFICIAL } from "./webhook.ts";

/** Options for {@link wxOfficial}. */
export interface WxOfficialOptions {
  accounts: WechatAccount[];
  /** Users' reply windows, kept by the store (`main.ts` restores and saves them). */
  windows: ReplyWindows;
  /** Held requests of passive-mode accounts. */
  passive: PassiveReplies;
  /** Files agents upload to send. */
  uploads: Uploads;
  /** Settings for each account's API client (tests shorten the back-off). */
  api?: OutboundOptions["api"];
  /** Clock in epoch seconds for the webhook (tests move it). */
  now?: () => number;
}

/** The Official Account channel, for `main.ts` to register. */
export function wxOfficial(options: WxOfficialOptions): ChannelFactory {
  return (ctx): ChannelAdapter => {
    const { accounts, windows, passive, uploads } = options;
    const sender = new Outbound({ accounts, log: ctx.log, windows, passive, uploads, api: options.api });
    const routes = wechatRoutes({
      accept: ctx.accept,
      log: ctx.log,
      accounts,
      maxBodyBytes: ctx.maxBodyBytes,
      windows,
      passive,
      now: options.now,
    });
    return {
      name: WX_OFFICIAL,
      routes,
      send: (reply, contact) => sender.send(reply, contact),
      typing: (contact) => sender.typing(contact),
      async stop(ms) {
        passive.close();
        // Replies on their way to WeChat get a moment to finish and be confirmed to their agents.
        await sender.drain(ms);
      },
      health: () => ({
        accounts: accounts.map((a) => ({ account: accountId(a), path: a.path, reply_mode: a.replyMode })),
      }),
    };
  };
}
