/**
 * The WeChat Official Account webhook: URL verification (GET) and message
 * push (POST) in plaintext, compatible and safe mode, one route per account.
 * WeChat gives up after 5 seconds and retries, so the answer never waits for an
 * agent: `success` (or a passive auto-reply) as soon as the hub has the message.
 *
 * @module
 */

import { type Context, Hono } from "hono";
import type { WechatAccount } from "./config.ts";
import { KefuError } from "./errors.ts";
import type { Hub } from "./hub.ts";
import { readBody } from "./inbound_routes.ts";
import type { Logger } from "./log.ts";
import { type Message, nowSeconds } from "./message.ts";
import {
  checkTimestamp,
  encryptedReplyXml,
  extractEncrypt,
  msgSignature,
  signature,
  verifySignature,
  WechatCipher,
} from "./wechat_crypto.ts";
import { decodeXml, encodeXml } from "./xml_codec.ts";

/** Options for {@link wechatRoutes}. */
export interface WechatRoutesOptions {
  hub: Hub;
  log: Logger;
  accounts: WechatAccount[];
  maxBodyBytes: number;
  /** Clock in epoch seconds (tests move it). */
  now?: () => number;
}

function badSignature(what: string): KefuError {
  return new KefuError("bad_signature", `cannot verify the request: ${what} does not match`, 401);
}

/** One route pair per account, as a sub-app to mount at `/`. */
export function wechatRoutes(options: WechatRoutesOptions): Hono {
  const app = new Hono();
  for (const account of options.accounts) mountAccount(app, account, options);
  return app;
}

function mountAccount(app: Hono, account: WechatAccount, options: WechatRoutesOptions): void {
  const { hub, log, maxBodyBytes } = options;
  const now = options.now ?? nowSeconds;
  const { token, path } = account;
  const accountId = account.appId || path;
  // The key is imported once per account (config has checked its shape and the AppID).
  const cipher = account.encodingAesKey ? WechatCipher.create(account.encodingAesKey, account.appId) : undefined;

  async function verified(c: Context): Promise<URLSearchParams> {
    const q = new URL(c.req.url).searchParams;
    const expected = await signature(token, q.get("timestamp") ?? "", q.get("nonce") ?? "");
    if (!verifySignature(q.get("signature"), expected)) {
      log.warn("wechat_bad_signature", { account: accountId, method: c.req.method });
      throw badSignature("signature");
    }
    return q;
  }

  app.get(path, async (c) => {
    const q = await verified(c);
    // Verbatim and as text/plain: anything else fails WeChat's check.
    return c.body(q.get("echostr") ?? "", 200, { "content-type": "text/plain; charset=utf-8" });
  });

  app.post(path, async (c) => {
    const q = await verified(c);
    const timestamp = q.get("timestamp") ?? "";
    const nonce = q.get("nonce") ?? "";
    checkTimestamp(timestamp, now(), account.maxSkewSeconds);
    const body = await readBody(c.req.raw, maxBodyBytes);
    const encrypted = q.get("encrypt_type") === "aes";
    let xml = body;
    if (encrypted) {
      if (cipher === undefined) {
        throw new KefuError("decrypt_failed", `cannot decrypt: account ${accountId} has no EncodingAESKey`, 400);
      }
      const encrypt = extractEncrypt(body);
      // Before decrypting: an unauthenticated ciphertext must never reach the padding checks.
      if (!verifySignature(q.get("msg_signature"), await msgSignature(token, timestamp, nonce, encrypt))) {
        log.warn("wechat_bad_signature", { account: accountId, method: "POST", field: "msg_signature" });
        throw badSignature("msg_signature");
      }
      xml = await (await cipher).decrypt(encrypt);
    }
    const m = decodeXml(xml);
    const officialAccount = m.agent;
    // ToUserName is the account itself, not an agent: the hub picks the agent.
    m.agent = "";
    m.account = accountId;
    m.company = account.companyId;
    const r = hub.inbound(m);
    if (account.autoReply === "" || r.status !== "queued") return c.text("success");
    const reply = encodeXml(autoReply(m, officialAccount, account.autoReply, now()));
    const out = encrypted ? await encryptedReplyXml(await cipher!, token, reply, timestamp, nonce) : reply;
    return c.body(out, 200, { "content-type": "application/xml; charset=utf-8" });
  });
}

function autoReply(m: Message, officialAccount: string, text: string, at: number): Message {
  return {
    id: `auto:${m.id}`,
    direction: "out",
    channel: m.channel,
    contact: m.contact,
    agent: officialAccount,
    company: m.company,
    type: "text",
    content: text,
    media: "",
    sendTime: at,
    name: m.contact,
    avatar: "",
  };
}
