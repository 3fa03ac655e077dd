/**
 * The WXBot channel (seed 002): a hosted platform that runs personal WeChat
 * accounts on PC WeChat. kefu is its client: the socket (`client.ts`) brings
 * every account's messages under one platform key, decoded by `codec.ts` and
 * handed to the accept path; replies go out through the HTTP API
 * (`sender.ts`, `api.ts`) with the Token of the account the user wrote to.
 *
 * Identity: the account is `userInfo.wxid` (one key may carry several WeChat
 * accounts), the user is the sender's wxid, or the group's id (`…@chatroom`)
 * for a group, whose member is named in the content.
 *
 * Messages the account itself sent (from the phone, or kefu's own replies as
 * WeChat syncs them back) are not a user's: they are never delivered to
 * agents. They go to `onOwnMessage` when given; otherwise one debug line each.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Hold, Holder } from "../../cluster/holder.ts";
import type { Message } from "../../core/message.ts";
import type { Uploads } from "../../media/uploads.ts";
import type { ChannelAdapter, ChannelFactory } from "../channel.ts";
import { WxbotApi } from "./api.ts";
import { WxbotClient } from "./client.ts";
import { decodeAddMsg, type Frame, frameType } from "./codec.ts";
import { describeWxbot, type WxbotConfig } from "./config.ts";
import { type LengthProbe, WxbotSender } from "./sender.ts";

/** The channel's name, as `Message.channel` and the store carry it. */
export const WXBOT = "wxbot";

/** Options for {@link wxbot}. */
export interface WxbotOptions {
  config: WxbotConfig;
  /** Files agents upload to send (the same as the agents' upload route keeps). */
  uploads: Uploads;
  /** Messages the account itself sent (direction `out`); default: a debug line. */
  onOwnMessage?: (message: Message) => void | Promise<void>;
  /** Lengths of voice and video files kefu cannot tell itself (e.g. ffprobe); default: AMR voice notes only. */
  probe?: LengthProbe;
  /** For tests: the randomness of the reconnect jitter and the retry waits. */
  random?: () => number;
  fetch?: typeof fetch;
  /**
   * Among several nodes (main.ts gives it with the store): the key's socket is connected by the one node holding the
   * lease `wxbot:<key id>`; the others stand by. Undefined: this process connects.
   */
  hold?: Hold;
}

/** The name the key's lease and `/healthz` know it by: not the key (a secret), 12 hex digits of its SHA-256. */
export function wxbotKeyId(key: string): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 12);
}

/** The WXBot channel, for `main.ts` to register. */
export function wxbot(options: WxbotOptions): ChannelFactory {
  return (ctx): ChannelAdapter => {
    const { config } = options;
    const { log } = ctx;
    const companies = new Map(config.accounts.map((a) => [a.wxid, a.companyId]));
    const api = new WxbotApi({
      base: config.apiBase,
      key: config.key,
      timeoutMs: config.timeoutMs,
      maxRetries: config.maxRetries,
      retryMinMs: config.retryMinMs,
      retryMaxMs: config.retryMaxMs,
      log,
      fetch: options.fetch,
      random: options.random,
    });
    const sender = new WxbotSender({
      api,
      accounts: config.accounts,
      uploads: options.uploads,
      log,
      voicePath: config.voicePath,
      videoPath: config.videoPath,
      imageFormat: config.imageFormat,
      probe: options.probe,
    });
    let received = 0;
    let own = 0;

    const onFrame = async (f: Frame): Promise<void> => {
      const type = frameType(f);
      if (type !== "AddMsg") {
        // The seed: AddMsg is the only event for now; anything new is logged, not guessed at.
        log.info("wxbot_event_skipped", { type, detail: "kefu reads AddMsg only" });
        return;
      }
      const { message, own: isOwn } = decodeAddMsg(f);
      message.channel = WXBOT;
      message.company = companies.get(message.account ?? "") ?? "";
      if (isOwn) {
        own++;
        if (options.onOwnMessage) await options.onOwnMessage(message);
        else log.debug("wxbot_own_message", { id: message.id, account: message.account, contact: message.contact });
        return;
      }
      received++;
      try {
        await ctx.accept(message);
      } catch (e) {
        // The platform has no ack or replay: what the hub could not keep is lost, and said so.
        log.error("wxbot_message_not_kept", {
          id: message.id,
          account: message.account,
          contact: message.contact,
          error: (e as Error).message,
        });
      }
    };

    // A new client each time this node takes the key (a stopped client does not start again).
    const newClient = () =>
      new WxbotClient({
        url: config.wsUrl,
        key: config.key,
        reconnectMs: config.reconnectMs,
        authTimeoutMs: config.authTimeoutMs,
        log,
        onFrame,
        random: options.random,
      });
    let client = newClient();
    let holder: Holder | undefined;
    let stopMs = 5_000;
    const keyId = wxbotKeyId(config.key);

    return {
      name: WXBOT,
      send: (reply, contact) => sender.send(reply, contact),
      start() {
        log.info("wxbot_starting", { ...describeWxbot(config), key_id: keyId });
        if (options.hold === undefined) {
          client.start();
          return Promise.resolve();
        }
        holder = options.hold(`wxbot:${keyId}`, {
          start() {
            if (client.state !== "idle") client = newClient();
            client.start();
          },
          stop: () => client.stop(stopMs),
        });
        holder.start();
        return Promise.resolve();
      },
      async stop(ms) {
        stopMs = ms;
        // The router has let replies under way finish; waits between retries end, and the socket closes.
        api.close();
        // A holder closes the socket, then gives the key back: another node connects at its next try.
        if (holder !== undefined) await holder.stop();
        else await client.stop(ms);
      },
      health: () => {
        const more = { accounts: config.accounts.map((a) => a.wxid), received, own };
        const hold = holder?.health();
        if (hold === undefined) return { ...client.health(), ...more };
        // Standing by, the socket is another node's: its state here would say nothing.
        if (hold.hold !== "holding") return { state: hold.hold, up: false, url: config.wsUrl, hold, ...more };
        return { ...client.health(), hold, ...more };
      },
    };
  };
}
