/**
 * The WeChat Official Account channel: one webhook per account on the way in
 * (`webhook.ts`), the customer-service API or passive replies on the way out
 * (`sender.ts`), within WeChat's reply windows (`reply_window.ts`).
 *
 * @module
 */

import { accountId, type WechatAccount } from "./config.ts";
import type { Message } from "../../core/message.ts";
import { fetchMedia } from "../../media/fetch.ts";
import type { Uploads } from "../../media/uploads.ts";
import type { ChannelAdapter, ChannelFactory } from "../channel.ts";
import type { PassiveReplies } from "./passive_reply.ts";
import type { ReplyWindows } from "./reply_window.ts";
import { Outbound, type OutboundOptions } from "./sender.ts";
import { wechatRoutes, WX_OFFICIAL } from "./webhook.ts";
import { StoreHolds } from "./store_hold.ts";
import type { SharedState } from "../../cluster/shared_state.ts";
import { SharedTokens } from "../../cluster/shared_tokens.ts";
import { SharedNonces } from "./nonce_memory.ts";

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
  /**
   * Hosts users' files may be fetched from besides each account's API base (`PicUrl`, a video's `video_url`):
   * `MEDIA_ALLOWED_HOSTS`.
   */
  mediaHosts?: readonly string[];
  /** Longest a file fetch may take. */
  mediaTimeoutMs?: number;
  /** What several nodes share (REDIS_URL): access_tokens and the webhook's taken nonces; default this process's. */
  shared?: SharedState;
  /** Pushes held while the store fails (tests bound them tighter); default one set per channel. */
  holds?: StoreHolds;
}

// WeChat's voice formats (the message's <Format>), as content types.
const VOICE_TYPES: Record<string, string> = { amr: "audio/amr", speex: "audio/speex" };

/** The Official Account channel, for `main.ts` to register. */
export function wxOfficial(options: WxOfficialOptions): ChannelFactory {
  return (ctx): ChannelAdapter => {
    const { accounts, windows, passive, uploads } = options;
    const { shared } = options;
    const tokens = shared && new SharedTokens({ state: shared });
    const api = tokens ? { ...options.api, tokens } : options.api;
    const sender = new Outbound({ accounts, log: ctx.log, windows, passive, uploads, api });
    const holds = options.holds ?? new StoreHolds({ log: ctx.log });
    const routes = wechatRoutes({
      accept: ctx.accept,
      log: ctx.log,
      accounts,
      maxBodyBytes: ctx.maxBodyBytes,
      windows,
      passive,
      now: options.now,
      nonces: shared && new SharedNonces({ state: shared }),
      holds,
    });
    const allowed = [
      ...(options.mediaHosts ?? []),
      ...accounts.map((a) => new URL(a.apiBase).host),
    ];
    // media/get for whatever has a MediaId (a video answers with a URL to fetch), else the image's PicUrl.
    const fetchFile = async (m: Message, maxBytes: number) => {
      const limits = { allowedHosts: allowed, maxBytes, timeoutMs: options.mediaTimeoutMs ?? 30_000 };
      const mediaId = m.extra?.MediaId;
      const api = sender.api(m.account ?? "");
      let got: { bytes: Uint8Array; contentType: string };
      if (mediaId && api) {
        const file = await api.getMedia(mediaId);
        got = "videoUrl" in file ? await fetchMedia(file.videoUrl, limits) : file;
      } else if (m.type === "image" && m.media !== "") {
        got = await fetchMedia(m.media, limits);
      } else {
        throw new Error(
          `cannot fetch the file: account ${JSON.stringify(m.account)} has no AppID/AppSecret for media/get`,
        );
      }
      if (got.bytes.length > maxBytes) throw new Error(`the file is over the limit of ${maxBytes} bytes`);
      const voice = m.type === "voice" ? VOICE_TYPES[(m.extra?.Format ?? "").toLowerCase()] : undefined;
      return { bytes: got.bytes, contentType: voice ?? got.contentType };
    };
    return {
      name: WX_OFFICIAL,
      routes,
      fetchMedia: fetchFile,
      send: (reply, contact) => sender.send(reply, contact),
      typing: (contact) => sender.typing(contact),
      replyWindow: (contact) => sender.replyWindow(contact),
      windowRules: (contact) => sender.windowRules(contact),
      async stop(ms) {
        // Pushes held for the store go on being tried until their own deadline (≤ STORE_HOLD_MS), not answered 503
        // at once: WeChat shows the user its failure notice on an answer, and retries (on any node) only a request it
        // gave up waiting for. Past `ms` they are answered as the shutdown goes on.
        const until = performance.now() + ms;
        const held = (async () => {
          while (holds.held > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
          holds.close();
        })();
        // Held requests are answered (with nothing; among several nodes once WeChat gave up on them, so that its
        // retry reaches another node) and replies still waiting for one are refused.
        await Promise.all([held, passive.drain(ms)]);
      },
      health: () => ({
        accounts: accounts.map((a) => ({ account: accountId(a), path: a.path, reply_mode: a.replyMode })),
        // WeChat's pushes waiting here for the store to come back (store_hold.ts).
        held_for_store: holds.held,
      }),
    };
  };
}
