import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createCipheriv, createDecipheriv } from "node:crypto";
import { XMLParser } from "fast-xml-parser";
import { KefuError } from "../../../src/core/errors.ts";
import {
  checkTimestamp,
  encryptedReplyXml,
  extractEncrypt,
  isEncodingAesKey,
  msgSignature,
  signature,
  verifySignature,
  WechatCipher,
} from "../../../src/channels/wx_official/crypto.ts";

// Tencent's official safe-mode sample.
const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const TOKEN = "spamtest";
const APPID = "wx2c2769f8efd9abc2";
const TIMESTAMP = "1409735669";
const NONCE = "1320562132";
const MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa";
const ENCRYPT =
  "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";

const KEY = Buffer.from(`${AES_KEY}=`, "base64");
const IV = KEY.subarray(0, 16);
const FIXED_RANDOM = new Uint8Array(16).map((_, i) => i * 7 + 1);

const parser = new XMLParser({ parseTagValue: false, processEntities: false, ignoreAttributes: true });
const cipher = await WechatCipher.create(AES_KEY, APPID);

function throwsKind(fn: () => unknown, kind: string, status: number, pattern?: RegExp) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof KefuError, `expected KefuError, got ${e}`);
    assert.equal(e.kind, kind);
    assert.equal(e.status, status);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

/** Decrypt with node:crypto and strip WeChat's framing by hand, independently of the code under test. */
function nodeDecrypt(encrypt: string): { xml: string; appId: string; pad: number } {
  const d = createDecipheriv("aes-256-cbc", KEY, IV);
  d.setAutoPadding(false);
  const plain = Buffer.concat([d.update(Buffer.from(encrypt, "base64")), d.final()]);
  assert.equal(plain.length % 32, 0, "WeChat ciphertext is a multiple of 32 bytes");
  const pad = plain[plain.length - 1];
  assert.ok(pad >= 1 && pad <= 32);
  for (let i = plain.length - pad; i < plain.length; i++) assert.equal(plain[i], pad);
  const body = plain.subarray(0, plain.length - pad);
  const len = body.readUInt32BE(16);
  return { xml: body.subarray(20, 20 + len).toString("utf8"), appId: body.subarray(20 + len).toString("utf8"), pad };
}

/** Encrypt with node:crypto and WeChat's 32-byte padding applied by hand. */
function nodeEncrypt(xml: string, appId = APPID): string {
  const x = Buffer.from(xml, "utf8");
  const len = Buffer.alloc(4);
  len.writeUInt32BE(x.length);
  const body = Buffer.concat([Buffer.from(FIXED_RANDOM), len, x, Buffer.from(appId, "utf8")]);
  const pad = 32 - (body.length % 32);
  const c = createCipheriv("aes-256-cbc", KEY, IV);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(Buffer.concat([body, Buffer.alloc(pad, pad)])), c.final()]).toString("base64");
}

function flipByte(encrypt: string, index: number, mask: number): string {
  const bytes = Uint8Array.fromBase64(encrypt);
  bytes[index] ^= mask;
  return bytes.toBase64();
}

Deno.test("wechat crypto: signature matches the documented vector", () => {
  assert.equal(signature("test", "1410685589", "test"), "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff");
});

Deno.test("wechat crypto: msgSignature matches Tencent's sample", () => {
  assert.equal(msgSignature(TOKEN, TIMESTAMP, NONCE, ENCRYPT), MSG_SIGNATURE);
});

Deno.test("wechat crypto: Tencent's sample decrypts to its XML", () => {
  const xml = cipher.decrypt(ENCRYPT);
  const doc = parser.parse(xml).xml;
  assert.equal(doc.FromUserName, "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
  assert.equal(doc.Content, "abcdteT");
  assert.equal(doc.MsgId, "6054768590064713728");
  assert.equal(nodeDecrypt(ENCRYPT).xml, xml);
});

Deno.test("wechat crypto: round trip covers every pad value 1..32", () => {
  const pads = new Set<number>();
  for (let len = 0; len < 40; len++) {
    const xml = "x".repeat(len);
    const enc = cipher.encrypt(xml);
    const { pad } = nodeDecrypt(enc);
    pads.add(pad);
    assert.equal(Uint8Array.fromBase64(enc).length % 32, 0);
    assert.equal(cipher.decrypt(enc), xml);
  }
  assert.deepEqual([...pads].sort((a, b) => a - b), Array.from({ length: 32 }, (_, i) => i + 1));
  // 20 header + 18 appid + 26 XML = 64 bytes: aligned, so a whole block of padding.
  assert.equal(nodeDecrypt(cipher.encrypt("x".repeat(26))).pad, 32);
});

Deno.test("wechat crypto: multi-byte XML round trips and the length field counts bytes", () => {
  const xml = "<xml><Content><![CDATA[你好，世界 👋 ]]></Content></xml>";
  const enc = cipher.encrypt(xml);
  assert.equal(cipher.decrypt(enc), xml);
  assert.equal(nodeDecrypt(enc).xml, xml);
});

Deno.test("wechat crypto: a fixed random prefix gives a deterministic ciphertext", () => {
  const xml = "<xml><Content>hi</Content></xml>";
  const a = cipher.encrypt(xml, FIXED_RANDOM);
  assert.equal(cipher.encrypt(xml, FIXED_RANDOM), a);
  assert.equal(a, nodeEncrypt(xml));
  assert.notEqual(cipher.encrypt(xml), cipher.encrypt(xml));
  assert.throws(() => cipher.encrypt(xml, new Uint8Array(15)), RangeError);
});

Deno.test("wechat crypto: output decrypts with node:crypto and node:crypto output decrypts here", () => {
  for (const xml of ["", "<xml/>", "<xml><Content><![CDATA[中文]]></Content></xml>", "y".repeat(1000)]) {
    const mine = nodeDecrypt(cipher.encrypt(xml));
    assert.equal(mine.xml, xml);
    assert.equal(mine.appId, APPID);
    assert.equal(cipher.decrypt(nodeEncrypt(xml)), xml);
  }
});

Deno.test("wechat crypto: tampered ciphertext is refused", () => {
  const enc = cipher.encrypt("<xml><Content>hello there, this spans blocks</Content></xml>", FIXED_RANDOM);
  const n = Uint8Array.fromBase64(enc).length;
  // The last byte of the second-to-last block XORs straight into the pad byte.
  throwsKind(() => cipher.decrypt(flipByte(enc, n - 17, 0xff)), "decrypt_failed", 400, /bad padding/);
  // The first block XORs into the length field.
  throwsKind(() => cipher.decrypt(flipByte(enc, 0, 0x80)), "decrypt_failed", 400, /bad length field/);
  // Anything in the last block garbles the padding.
  throwsKind(() => cipher.decrypt(flipByte(enc, n - 1, 0x01)), "decrypt_failed", 400, /bad padding/);
});

Deno.test("wechat crypto: another account's appid is refused", async () => {
  throwsKind(
    () => cipher.decrypt(nodeEncrypt("<xml/>", "wxabc")),
    "appid_mismatch",
    400,
    /appid "wxabc" .*"wx2c2769f8efd9abc2"/,
  );
  const other = await WechatCipher.create(AES_KEY, "wx0000000000000000");
  throwsKind(() => other.decrypt(ENCRYPT), "appid_mismatch", 400, /does not match/);
});

Deno.test("wechat crypto: malformed Encrypt values are refused", () => {
  throwsKind(() => cipher.decrypt(""), "decrypt_failed", 400, /not a positive multiple of 16/);
  throwsKind(() => cipher.decrypt(ENCRYPT.slice(0, -4)), "decrypt_failed", 400, /multiple of 16/);
  throwsKind(() => cipher.decrypt(ENCRYPT.slice(0, -1)), "decrypt_failed", 400, /not valid base64/); // padding dropped
  throwsKind(() => cipher.decrypt(ENCRYPT.slice(0, -2)), "decrypt_failed", 400, /not valid base64/);
  throwsKind(() => cipher.decrypt(ENCRYPT.replace(/E=$/, "F=")), "decrypt_failed", 400, /not valid base64/); // non-zero spare bits
  throwsKind(() => cipher.decrypt(ENCRYPT.slice(0, 21)), "decrypt_failed", 400, /base64/);
  throwsKind(
    () => cipher.decrypt(`${ENCRYPT.slice(0, 40)}$%${ENCRYPT.slice(42)}`),
    "decrypt_failed",
    400,
    /not valid base64/,
  );
  throwsKind(() => cipher.decrypt("AAAAAAAAAAAAAAAAAAAAAA=="), "decrypt_failed", 400); // one block: too short for anything
});

Deno.test("wechat crypto: malformed EncodingAESKey is refused without echoing it", async () => {
  const bad = [
    "",
    AES_KEY.slice(1),
    `${AES_KEY}=`,
    `${AES_KEY.slice(1)}!`,
    `${AES_KEY.slice(1)}+`,
    `/${AES_KEY.slice(1)}`,
  ];
  for (const key of bad) {
    assert.equal(isEncodingAesKey(key), false, key);
    await assert.rejects(WechatCipher.create(key, APPID), (e) => {
      assert.ok(e instanceof Error && !(e instanceof KefuError));
      assert.match(e.message, /43 letters and digits \(A-Z, a-z, 0-9\), got \d+ characters/);
      if (key.length > 5) assert.ok(!e.message.includes(key.slice(0, 20)), "the key must not leak");
      return true;
    });
  }
});

Deno.test("wechat crypto: an EncodingAESKey is 43 letters and digits, as WeChat issues it; + and / are refused", async () => {
  // WeChat: "a fixed length of 43 characters comprised of letters (a-z and A-Z) and numbers (0-9)".
  assert.equal(isEncodingAesKey(AES_KEY), true);
  assert.equal(isEncodingAesKey("0".repeat(43)), true);
  assert.equal(isEncodingAesKey("Z".repeat(43)), true);
  // Base64's other two characters decode to a key, but WeChat never issues one: a typo or another secret.
  assert.equal(isEncodingAesKey(`${AES_KEY.slice(0, 42)}+`), false);
  assert.equal(isEncodingAesKey(`${AES_KEY.slice(0, 42)}/`), false);
  assert.equal(isEncodingAesKey(`${AES_KEY.slice(0, 21)}-${AES_KEY.slice(22)}`), false); // base64url
  assert.equal(isEncodingAesKey(` ${AES_KEY.slice(1)}`), false);
  assert.equal(isEncodingAesKey(`${AES_KEY}\n`), false);
  await assert.rejects(WechatCipher.create(`${AES_KEY.slice(0, 42)}+`, APPID), /43 letters and digits/);
});

Deno.test("wechat crypto: checkTimestamp refuses stale and non-numeric timestamps", () => {
  checkTimestamp("1000", 1000, 300);
  checkTimestamp("700", 1000, 300);
  checkTimestamp("1300", 1000, 300);
  throwsKind(() => checkTimestamp("699", 1000, 300), "stale_timestamp", 401, /"699" is 301 s/);
  throwsKind(() => checkTimestamp("1301", 1000, 300), "stale_timestamp", 401);
  throwsKind(() => checkTimestamp("abc", 1000, 300), "stale_timestamp", 401, /"abc" is not an integer/);
  throwsKind(() => checkTimestamp("", 1000, 300), "stale_timestamp", 401);
  throwsKind(() => checkTimestamp("1e3", 1000, 300), "stale_timestamp", 401);
});

Deno.test("wechat crypto: verifySignature", () => {
  assert.equal(verifySignature(MSG_SIGNATURE, MSG_SIGNATURE), true);
  assert.equal(verifySignature(`${MSG_SIGNATURE.slice(0, -1)}0`, MSG_SIGNATURE), false);
  assert.equal(verifySignature(`0${MSG_SIGNATURE.slice(1)}`, MSG_SIGNATURE), false);
  assert.equal(verifySignature(null, MSG_SIGNATURE), false);
  assert.equal(verifySignature(MSG_SIGNATURE.slice(1), MSG_SIGNATURE), false);
  assert.equal(verifySignature("", MSG_SIGNATURE), false);
});

Deno.test("wechat crypto: encryptedReplyXml is signed and decrypts to the reply", async () => {
  const reply = "<xml><ToUserName><![CDATA[u]]></ToUserName><Content><![CDATA[回复]]></Content></xml>";
  const env = await encryptedReplyXml(cipher, TOKEN, reply, 1409735670, NONCE);
  const doc = parser.parse(env).xml;
  assert.equal(doc.TimeStamp, "1409735670");
  assert.equal(doc.Nonce, NONCE);
  assert.equal(doc.MsgSignature, msgSignature(TOKEN, "1409735670", NONCE, doc.Encrypt));
  assert.equal(extractEncrypt(env), doc.Encrypt);
  assert.equal(cipher.decrypt(doc.Encrypt), reply);
  // A "]]>" in the nonce cannot end the CDATA section early.
  const tricky = parser.parse(await encryptedReplyXml(cipher, TOKEN, reply, "1", "a]]><x/>")).xml;
  assert.equal(tricky.Nonce, "a]]><x/>");
});

Deno.test("wechat crypto: extractEncrypt reads safe-mode bodies and refuses the rest", () => {
  const body = `<xml><ToUserName><![CDATA[gh_123]]></ToUserName><Encrypt><![CDATA[${ENCRYPT}]]></Encrypt></xml>`;
  assert.equal(extractEncrypt(body), ENCRYPT);
  assert.equal(extractEncrypt(`<xml>\n  <Encrypt>\n${ENCRYPT}\n</Encrypt>\n</xml>`), ENCRYPT);
  throwsKind(
    () => extractEncrypt(`<!DOCTYPE x [<!ENTITY e "e">]><xml><Encrypt>&e;</Encrypt></xml>`),
    "xml_doctype_forbidden",
    400,
  );
  throwsKind(() => extractEncrypt("<xml><ToUserName>gh</ToUserName></xml>"), "invalid_xml", 400, /none/);
  throwsKind(() => extractEncrypt("<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>"), "invalid_xml", 400);
  throwsKind(() => extractEncrypt("<xml><Encrypt></Encrypt></xml>"), "invalid_xml", 400);
  throwsKind(() => extractEncrypt("<xml><Encrypt><a>1</a></Encrypt></xml>"), "invalid_xml", 400);
  throwsKind(() => extractEncrypt("not xml"), "invalid_xml", 400);
  throwsKind(() => extractEncrypt(""), "invalid_xml", 400);
});
