/**
 * The WeChat Official Account webhook: URL verification (GET) and message
 * push (POST) in plaintext, compatible and safe mode, one route per account.
 * WeChat gives up after 5 seconds and retries, so the answer never waits for an
 * agent: `success` (or a passive auto-reply) as soon as the hub has the message.
 * When the store cannot keep it, the push is held and the message tried again
 * while WeChat waits (`store_hold.ts`): an HTTP error shows the user a failure.
 *
 * @module
 */

import { type Context, Hono } from "hono";
import { accountId as idOf, encryptModeOf, type WechatAccount } from "./config.ts";
import { KefuError, quote } from "../../core/errors.ts";
import type { ChannelContext } from "../channel.ts";
import { readBody } from "../../core/body.ts";
import type { Logger } from "../../core/log.ts";
import { type Message, nowSeconds } from "../../core/message.ts";
import type { PassiveReplies } from "./passive_reply.ts";
import { interactionOf, type ReplyWindows } from "./reply_window.ts";
import {
  checkTimestamp,
  encryptedReplyXml,
  extractEncrypt,
  msgSignature,
  signature,
  verifySignature,
  WechatCipher,
} from "./crypto.ts";
import { decodeXml, encodeReplyXml } from "./xml_codec.ts";
import { StoreHolds, WECHAT_TIMEOUT_MS } from "./store_hold.ts";
import { bodyDigest, InMemoryNonces, NO_NONCE_MEMORY, nonceKey, type NonceMemory } from "./nonce_memory.ts";

/** The Official Account channel's name (the seed's component path). */
export const WX_OFFICIAL = "wx_official_account";

/** Options for {@link wechatRoutes}. */
export interface WechatRoutesOptions {
  /** The hub's accept path. */
  accept: ChannelContext["accept"];
  log: Logger;
  accounts: WechatAccount[];
  maxBodyBytes: number;
  /** Users' reply windows: each message or event that opens one is recorded. */
  windows: ReplyWindows;
  /** Held requests, for accounts in passive reply mode. */
  passive: PassiveReplies;
  /** Clock in epoch seconds (tests move it). */
  now?: () => number;
  /** The (timestamp, nonce) pairs taken; default: this process's own memory. */
  nonces?: NonceMemory;
  /** Pushes held while the store fails; default: a set of its own (the channel closes its set at shutdown). */
  holds?: StoreHolds;
}

function badSignature(what: string): KefuError {
  return new KefuError("bad_signature", `cannot verify the request: ${what} does not match`, 401);
}

/** One route pair per account, as a sub-app to mount at `/`. */
export function wechatRoutes(options: WechatRoutesOptions): Hono {
  const app = new Hono();
  const nonces = options.nonces ?? new InMemoryNonces();
  const holds = options.holds ?? new StoreHolds({ log: options.log });
  for (const account of options.accounts) mountAccount(app, account, { ...options, nonces, holds });
  return app;
}

function mountAccount(
  app: Hono,
  account: WechatAccount,
  options: WechatRoutesOptions & { nonces: NonceMemory; holds: StoreHolds },
): void {
  const { accept, log, maxBodyBytes, windows, passive, holds } = options;
  // Off only for load generators that reuse signed URLs with other bodies (WeChat never does).
  const nonces = account.replayGuard === false ? NO_NONCE_MEMORY : options.nonces;
  const now = options.now ?? nowSeconds;
  const { token, path } = account;
  const accountId = idOf(account);
  const holding = account.replyMode === "passive";
  // The key is imported once per account (config has checked its shape and the AppID).
  const cipher = account.encodingAesKey ? WechatCipher.create(account.encodingAesKey, account.appId) : undefined;
  // WeChat's three modes: safe mode posts only encrypted messages, so a plaintext post to it is a forgery (its
  // `signature` does not cover the body); compatible mode takes both; plaintext mode has no key.
  const mode = encryptModeOf(account);

  // Hono's query reader: no URL object per request.
  function verified(c: Context): Record<string, string | undefined> {
    const q: Record<string, string | undefined> = c.req.query();
    const expected = signature(token, q.timestamp ?? "", q.nonce ?? "");
    if (!verifySignature(q.signature ?? null, expected)) {
      log.warn("wechat_bad_signature", { account: accountId, method: c.req.method });
      throw badSignature("signature");
    }
    return q;
  }

  app.get(path, (c) => {
    const q = verified(c);
    // Verbatim and as text/plain: anything else fails WeChat's check.
    return c.body(q.echostr ?? "", 200, { "content-type": "text/plain; charset=utf-8" });
  });

  app.post(path, async (c) => {
    // WeChat's 5 s run from here: a push held for the store is answered within them, or to nobody.
    const arrived = holds.now();
    const q = verified(c);
    const timestamp = q.timestamp ?? "";
    const nonce = q.nonce ?? "";
    checkTimestamp(timestamp, now(), account.maxSkewSeconds);
    const encrypted = q.encrypt_type === "aes";
    if (!encrypted && mode === "safe") {
      await c.req.raw.body?.cancel();
      log.warn("wechat_plaintext_refused", { account: accountId });
      throw new KefuError(
        "bad_signature",
        `cannot accept a plaintext message: account ${accountId} is in safe mode, where WeChat encrypts every ` +
          "message (encrypt_type=aes with msg_signature); set its encrypt mode to compatible to take plaintext too",
        401,
      );
    }
    const body = await readBody(c.req.raw, maxBodyBytes);
    // Checked after the signatures: only a request signed with the token can claim a pair.
    const key = nonceKey(accountId, timestamp, nonce);
    // Without the replay guard nothing reads it.
    const digest = nonces === NO_NONCE_MEMORY ? "" : bodyDigest(body);
    let xml = body;
    if (encrypted) {
      if (cipher === undefined) {
        throw new KefuError("decrypt_failed", `cannot decrypt: account ${accountId} has no EncodingAESKey`, 400);
      }
      const encrypt = extractEncrypt(body);
      // Before decrypting: an unauthenticated ciphertext must never reach the padding checks.
      if (!verifySignature(q.msg_signature ?? null, msgSignature(token, timestamp, nonce, encrypt))) {
        log.warn("wechat_bad_signature", { account: accountId, method: "POST", field: "msg_signature" });
        throw badSignature("msg_signature");
      }
      xml = await (await cipher).decrypt(encrypt);
    }
    const m = decodeXml(xml);
    // ToUserName is the account's original id, not an agent: the hub picks the agent.
    const officialAccount = m.to ?? "";
    const openid = m.contact;
    m.channel = WX_OFFICIAL;
    m.account = accountId;
    m.company = account.companyId;
    // Passive mode: the request is open for a reply before the agent can see the message (the agent may answer
    // before the commit resolves here). A retry of the same message keeps the same entry open.
    // A pair is taken once: again with the same body it is WeChat's retry (the hub drops the duplicate, a passive
    // request is held again), with another body a replay of a signed URL. Kept until the timestamp check refuses it.
    const known = await nonces.remember(key, digest, (Number(timestamp) + account.maxSkewSeconds + 1) * 1000);
    if (known !== undefined && known !== digest) {
      log.warn("wechat_replay_refused", { account: accountId, timestamp });
      throw new KefuError(
        "replayed_request",
        `cannot accept the request: timestamp ${timestamp} and nonce ${
          quote(nonce)
        } were already used with another body (a replayed signature)`,
        401,
      );
    }
    const unsubscribe = m.type === "event" && m.extra?.Event === "unsubscribe";
    const open = holding && !unsubscribe && passive.open(accountId, openid, account.passiveHoldMs);
    // Several nodes: recorded as the user's holder before the message is accepted (an agent replying on another node
    // must find this node), and before this request looks for a reply left for the user.
    if (open) await passive.share(accountId, openid, account.passiveHoldMs);
    let r;
    try {
      // The store failing: tried again while WeChat waits, rather than a 503 that shows the user WeChat's notice.
      r = await holds.keep(arrived, () => accept(m), { account: accountId, msg: m.id });
    } catch (e) {
      // Not committed: WeChat's retry of this very request must be taken.
      if (known === undefined) await nonces.forget(key, digest);
      throw e;
    }
    if (r.status !== "duplicate") {
      const what = interactionOf(m.type, m.extra?.Event);
      // The user acted at CreateTime (a late retry must not stretch the window), never in the future.
      if (what !== undefined) windows.record(accountId, openid, what, Math.min(m.sendTime * 1000, Date.now()));
    }
    // A passive reply goes out as WeChat expects it: encrypted when the request was.
    const sealed = encrypted ? { cipher: await cipher!, token, timestamp, nonce } : undefined;
    if (account.autoReply !== "" && r.status === "queued") {
      return await replyXml(c, autoReply(m, openid, account.autoReply, now()), officialAccount, sealed);
    }
    // Passive mode: WeChat's request (and its retries of the same message) waits for the agent's reply.
    if (!open) return c.text("success");
    // Held for the store meanwhile: the request is alive only for what is left of its attempt; one WeChat dropped
    // must not take the place of its retry (held here already, or soon).
    const waited = holds.now() - arrived;
    if (waited >= WECHAT_TIMEOUT_MS) return c.text("success");
    const reply = await passive.hold(accountId, openid, Math.max(0, account.passiveAttemptMs - waited));
    if (reply === undefined) return c.text("success");
    return await replyXml(c, { ...reply, contact: openid, sendTime: now() }, officialAccount, sealed);
  });
}

// `reply.contact` is the user's openid; the reply comes from the account's original id.
async function replyXml(
  c: Context,
  reply: Message,
  officialAccount: string,
  sealed?: { cipher: WechatCipher; token: string; timestamp: string; nonce: string },
): Promise<Response> {
  const xml = encodeReplyXml(reply, officialAccount);
  const out = sealed ? await encryptedReplyXml(sealed.cipher, sealed.token, xml, sealed.timestamp, sealed.nonce) : xml;
  return c.body(out, 200, { "content-type": "application/xml; charset=utf-8" });
}

// The auto-reply to the user `openid` (the accepted message's contact may be another id).
function autoReply(m: Message, openid: string, text: string, at: number): Message {
  return {
    id: `auto:${m.id}`,
    direction: "out",
    channel: m.channel,
    contact: openid,
    agent: "",
    company: m.company,
    type: "text",
    content: text,
    media: "",
    sendTime: at,
    name: openid,
    avatar: "",
  };
}
