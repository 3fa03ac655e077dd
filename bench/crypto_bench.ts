/**
 * WeChat message security: the signature every webhook request is checked
 * with, and safe mode's AES-256-CBC (decrypt on every encrypted POST, encrypt
 * for every encrypted passive reply).
 *
 *     deno bench --allow-read bench/crypto_bench.ts
 *
 * @module
 */

import { createHash } from "node:crypto";
import { msgSignature, signature, verifySignature, WechatCipher } from "../src/wechat_crypto.ts";

const TOKEN = "bench";
const TIMESTAMP = "1700000000";
const NONCE = "1320562132";
// A made-up EncodingAESKey and AppID (43 base64 characters, as WeChat issues them).
const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID = "wx0123456789abcdef";

// A typical text message, as WeChat encrypts it in safe mode.
const XML = "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[oUSER_00042]]></FromUserName>" +
  "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>" +
  "<Content><![CDATA[您好，请问我上周下的订单什么时候发货？单号 20240601]]></Content>" +
  "<MsgId>23000000000000001</MsgId></xml>";

const cipher = await WechatCipher.create(AES_KEY, APPID);
const ENCRYPTED = await cipher.encrypt(XML);
const SIGNATURE = await signature(TOKEN, TIMESTAMP, NONCE);

Deno.bench(
  { name: "signature + verifySignature (every webhook request)", group: "signature", baseline: true },
  async () => {
    if (!verifySignature(SIGNATURE, await signature(TOKEN, TIMESTAMP, NONCE))) throw new Error("signature mismatch");
  },
);

const MSG_SIGNATURE = await msgSignature(TOKEN, TIMESTAMP, NONCE, ENCRYPTED);

Deno.bench({ name: "msgSignature + verifySignature (safe mode)", group: "signature" }, async () => {
  if (!verifySignature(MSG_SIGNATURE, await msgSignature(TOKEN, TIMESTAMP, NONCE, ENCRYPTED))) {
    throw new Error("signature mismatch");
  }
});

// Not kefu's code: the synchronous SHA-1 of node:crypto on the same input, to show what the
// asynchronous Web Crypto digest (a hop to a worker thread and back) costs per request.
Deno.bench({ name: "reference: node:crypto createHash sha1, same input", group: "signature" }, () => {
  const hex = createHash("sha1").update([TOKEN, TIMESTAMP, NONCE].sort().join("")).digest("hex");
  if (!verifySignature(SIGNATURE, hex)) throw new Error("signature mismatch");
});

Deno.bench({ name: "WechatCipher.decrypt: text message", group: "aes", baseline: true }, async () => {
  await cipher.decrypt(ENCRYPTED);
});

Deno.bench({ name: "WechatCipher.encrypt: text message", group: "aes" }, async () => {
  await cipher.encrypt(XML);
});
