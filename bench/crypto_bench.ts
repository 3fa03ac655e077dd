/**
 * WeChat message security: the signature every webhook request is checked
 * with, and safe mode's AES-256-CBC (decrypt on every encrypted POST, encrypt
 * for every encrypted passive reply). All of it is synchronous `node:crypto`; the
 * `reference:` lines are the asynchronous Web Crypto calls it replaced.
 *
 *     deno bench --allow-read bench/crypto_bench.ts
 *
 * @module
 */

import {
  extractEncrypt,
  msgSignature,
  signature,
  verifySignature,
  WechatCipher,
} from "../src/channels/wx_official/crypto.ts";
import { decodeXml } from "../src/channels/wx_official/xml_codec.ts";

const TOKEN = "bench";
const TIMESTAMP = "1700000000";
const NONCE = "1320562132";
// A made-up EncodingAESKey and AppID (43 base64 characters, as WeChat issues them).
const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID = "wx0123456789abcdef";
const RAW_KEY = Uint8Array.fromBase64(`${AES_KEY}=`);

// A typical text message, as WeChat encrypts it in safe mode.
const XML = "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[oUSER_00042]]></FromUserName>" +
  "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>" +
  "<Content><![CDATA[您好，请问我上周下的订单什么时候发货？单号 20240601]]></Content>" +
  "<MsgId>23000000000000001</MsgId></xml>";

const cipher = await WechatCipher.create(AES_KEY, APPID);
const ENCRYPTED = cipher.encrypt(XML);
const SIGNATURE = signature(TOKEN, TIMESTAMP, NONCE);

Deno.bench(
  { name: "signature + verifySignature (every webhook request)", group: "signature", baseline: true },
  () => {
    if (!verifySignature(SIGNATURE, signature(TOKEN, TIMESTAMP, NONCE))) throw new Error("signature mismatch");
  },
);

const MSG_SIGNATURE = msgSignature(TOKEN, TIMESTAMP, NONCE, ENCRYPTED);

Deno.bench({ name: "msgSignature + verifySignature (safe mode)", group: "signature" }, () => {
  if (!verifySignature(MSG_SIGNATURE, msgSignature(TOKEN, TIMESTAMP, NONCE, ENCRYPTED))) {
    throw new Error("signature mismatch");
  }
});

// Not kefu's code: what the signature cost before, with Web Crypto's asynchronous digest (a hop
// to a worker thread and back per request), on the same input.
Deno.bench({ name: "reference: Web Crypto SHA-1 (async), same input", group: "signature" }, async () => {
  const data = new TextEncoder().encode([TOKEN, TIMESTAMP, NONCE].sort().join(""));
  const hex = new Uint8Array(await crypto.subtle.digest("SHA-1", data)).toHex();
  if (!verifySignature(SIGNATURE, hex)) throw new Error("signature mismatch");
});

Deno.bench({ name: "WechatCipher.decrypt: text message", group: "aes", baseline: true }, () => {
  cipher.decrypt(ENCRYPTED);
});

Deno.bench({ name: "WechatCipher.encrypt: text message", group: "aes" }, () => {
  cipher.encrypt(XML);
});

// Not kefu's code: the AES-256-CBC decryption alone, on Web Crypto as before (asynchronous, with
// the extra block that makes its 16-byte padding check pass over WeChat's 32-byte padding).
const WEB_KEY = await crypto.subtle.importKey("raw", RAW_KEY, { name: "AES-CBC" }, false, ["encrypt", "decrypt"]);
Deno.bench({ name: "reference: Web Crypto AES-CBC decrypt (async), same input", group: "aes" }, async () => {
  const bytes = Uint8Array.fromBase64(ENCRYPTED);
  const n = bytes.length;
  const buf = new Uint8Array(n + 16);
  buf.set(bytes);
  const iv = buf.subarray(n - 16, n);
  buf.set(new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv }, WEB_KEY, new Uint8Array(0))), n);
  await crypto.subtle.decrypt({ name: "AES-CBC", iv: RAW_KEY.slice(0, 16) }, WEB_KEY, buf);
});

// The body WeChat posts in safe mode.
const SAFE_BODY = `<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[${ENCRYPTED}]]></Encrypt></xml>`;

Deno.bench({ name: "extractEncrypt: safe-mode body", group: "aes" }, () => {
  extractEncrypt(SAFE_BODY);
});

// The webhook's own per-message work, without HTTP and the hub: issue 5 wants safe mode's
// inbound throughput at 0.7 of plaintext's or better.
Deno.bench({ name: "plaintext inbound: signature check + decodeXml", group: "inbound", baseline: true }, () => {
  if (!verifySignature(SIGNATURE, signature(TOKEN, TIMESTAMP, NONCE))) throw new Error("signature mismatch");
  decodeXml(XML);
});

Deno.bench({ name: "safe-mode inbound: + extractEncrypt, msg_signature, decrypt", group: "inbound" }, () => {
  if (!verifySignature(SIGNATURE, signature(TOKEN, TIMESTAMP, NONCE))) throw new Error("signature mismatch");
  const encrypt = extractEncrypt(SAFE_BODY);
  if (!verifySignature(MSG_SIGNATURE, msgSignature(TOKEN, TIMESTAMP, NONCE, encrypt))) {
    throw new Error("signature mismatch");
  }
  decodeXml(cipher.decrypt(encrypt));
});
