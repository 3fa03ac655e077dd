/**
 * WeChat Official Account message security: URL/POST signatures and the
 * safe-mode AES-256-CBC envelope, on `node:crypto` (built into Deno), whose
 * SHA-1 and AES are synchronous: Web Crypto's asynchronous calls cost a hop to
 * a worker thread and back on every request, 10–50 times the work itself.
 *
 * Decryption is not authentication: a flipped ciphertext bit can decrypt to
 * valid XML. Check `msg_signature` (with {@link verifySignature}) before
 * calling {@link WechatCipher.decrypt}.
 *
 * @module
 */

import { createCipheriv, createDecipheriv, createHash } from "node:crypto";
import { KefuError, quote } from "../../core/errors.ts";
import { cdata, refuseDeclarations } from "../../core/xml.ts";
import { type NotText, parseFully } from "./xml_codec.ts";

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const looseUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });

// An EncodingAESKey as WeChat issues it: "a fixed length of 43 characters comprised of letters (a-z and
// A-Z) and numbers (0-9)" (its documentation), the base64 of the AES key without its final "=".
const AES_KEY_RE = /^[A-Za-z0-9]{43}$/;

/**
 * Whether `key` is a well-formed EncodingAESKey: 43 letters and digits (A-Z, a-z, 0-9), as WeChat issues
 * it. The one check of the key in kefu, used by {@link WechatCipher} and by the configuration.
 */
export function isEncodingAesKey(key: string): boolean {
  return AES_KEY_RE.test(key);
}

const TIMESTAMP_RE = /^\d{1,15}$/;
// WeChat pads over 32-byte blocks although AES works on 16.
const WECHAT_BLOCK = 32;
const RANDOM_LEN = 16;
const HEADER_LEN = RANDOM_LEN + 4;

function sha1Hex(parts: string[]): string {
  // WeChat sorts byte strings; for its ASCII tokens, nonces and base64 that equals UTF-16 order.
  return createHash("sha1").update(parts.sort().join("")).digest("hex");
}

/** The `signature` query parameter: sha1 hex of the sorted token, timestamp and nonce. */
export function signature(token: string, timestamp: string, nonce: string): string {
  return sha1Hex([token, timestamp, nonce]);
}

/** The safe-mode `msg_signature`: sha1 hex of the sorted token, timestamp, nonce and Encrypt value. */
export function msgSignature(token: string, timestamp: string, nonce: string, encrypt: string): string {
  return sha1Hex([token, timestamp, nonce, encrypt]);
}

/** Compare a received signature with the computed one in constant time; false for null or a length mismatch. */
export function verifySignature(expected: string | null, actual: string): boolean {
  if (expected === null || expected.length !== actual.length) return false;
  let diff = 0;
  // No early exit: the time taken must not tell how many leading characters matched.
  for (let i = 0; i < actual.length; i++) diff |= expected.charCodeAt(i) ^ actual.charCodeAt(i);
  return diff === 0;
}

/** Throw `stale_timestamp` unless `timestamp` is an integer within `maxSkewSeconds` of now (blocks replays). */
export function checkTimestamp(timestamp: string, nowSeconds: number, maxSkewSeconds: number): void {
  if (!TIMESTAMP_RE.test(timestamp)) {
    throw new KefuError(
      "stale_timestamp",
      `cannot accept request: timestamp ${quote(timestamp)} is not an integer`,
      401,
    );
  }
  const skew = Math.abs(nowSeconds - Number(timestamp));
  if (skew > maxSkewSeconds) {
    throw new KefuError(
      "stale_timestamp",
      `cannot accept request: timestamp ${
        quote(timestamp)
      } is ${skew} s from server time (at most ${maxSkewSeconds} s allowed)`,
      401,
    );
  }
}

// Run `f` now and hand over its result, or its throw, as a promise.
function settled<T>(f: () => T): Promise<T> {
  return new Promise((resolve) => resolve(f()));
}

function decryptFailed(why: string): KefuError {
  return new KefuError("decrypt_failed", `cannot decrypt message: ${why}`, 400);
}

/**
 * AES-256-CBC with WeChat's framing and 32-byte PKCS#7 padding; one per account.
 *
 * Both directions are synchronous (`node:crypto`, padding off: WeChat's own is
 * checked and written here). Errors are thrown, not returned as rejections.
 */
export class WechatCipher {
  readonly #key: Uint8Array;
  readonly #iv: Uint8Array;
  readonly #appId: string;
  readonly #appIdBytes: Uint8Array;

  private constructor(encodingAesKey: string, appId: string) {
    if (!isEncodingAesKey(encodingAesKey)) {
      // The key itself is never quoted: it is a secret.
      throw new Error(
        `cannot use EncodingAESKey: it must be 43 letters and digits (A-Z, a-z, 0-9), got ${encodingAesKey.length} characters`,
      );
    }
    if (!appId) throw new Error("cannot use WeChat safe mode: the appid is empty");
    // 43 chars + "=" is 256 bits plus 2 spare bits, which WeChat leaves random: decode loosely.
    this.#key = Uint8Array.fromBase64(`${encodingAesKey}=`);
    this.#iv = this.#key.slice(0, 16);
    this.#appId = appId;
    this.#appIdBytes = encoder.encode(appId);
  }

  /**
   * Take the EncodingAESKey (43 letters and digits) for `appId`; rejects with a plain Error on a malformed
   * key. Asynchronous for its callers' sake only (it used to import a Web Crypto key).
   */
  static create(encodingAesKey: string, appId: string): Promise<WechatCipher> {
    return settled(() => new WechatCipher(encodingAesKey, appId));
  }

  /** Decrypt a safe-mode `Encrypt` value to the inner XML; throws `decrypt_failed` or `appid_mismatch`. */
  decrypt(encryptBase64: string): string {
    let cipherText: Uint8Array;
    try {
      // Strict: WeChat always sends padded, canonical base64, so anything else was altered on the way.
      cipherText = Uint8Array.fromBase64(encryptBase64, { lastChunkHandling: "strict" });
    } catch {
      throw decryptFailed(`Encrypt is not valid base64 (${encryptBase64.length} characters)`);
    }
    const n = cipherText.length;
    if (n === 0 || n % 16 !== 0) {
      throw decryptFailed(`the ciphertext is ${n} bytes, not a positive multiple of 16`);
    }
    // No automatic padding: WeChat pads to 32 bytes, not AES's 16, and its padding is checked below.
    const decipher = createDecipheriv("aes-256-cbc", this.#key, this.#iv).setAutoPadding(false);
    const plain = decipher.update(cipherText);
    decipher.final(); // whole blocks and no padding: nothing is held back, so nothing comes out
    if (plain.length !== n) throw decryptFailed(`${plain.length} of ${n} bytes came out of AES`);

    const pad = plain[n - 1];
    if (pad < 1 || pad > WECHAT_BLOCK || pad > n) throw decryptFailed(`bad padding (pad byte ${pad})`);
    let mismatch = 0;
    for (let i = n - pad; i < n; i++) mismatch |= plain[i] ^ pad;
    if (mismatch !== 0) throw decryptFailed(`bad padding (pad bytes of ${pad} are not all equal)`);
    const end = n - pad;
    if (end < HEADER_LEN) throw decryptFailed(`the plaintext is ${end} bytes, too short for its header`);

    const xmlLen = new DataView(plain.buffer, plain.byteOffset, end).getUint32(RANDOM_LEN);
    if (xmlLen > end - HEADER_LEN) {
      throw decryptFailed(`bad length field: ${xmlLen} bytes of XML announced, ${end - HEADER_LEN} present`);
    }
    const appId = plain.subarray(HEADER_LEN + xmlLen, end);
    if (!bytesEqual(appId, this.#appIdBytes)) {
      throw new KefuError(
        "appid_mismatch",
        `cannot decrypt message: appid ${quote(looseUtf8.decode(appId))} does not match the account's ${
          quote(this.#appId)
        }`,
        400,
      );
    }
    try {
      return strictUtf8.decode(plain.subarray(HEADER_LEN, HEADER_LEN + xmlLen));
    } catch {
      throw decryptFailed(`the ${xmlLen}-byte XML is not valid UTF-8`);
    }
  }

  /** Encrypt `xml` into a safe-mode `Encrypt` value (base64); `random` (16 bytes) is for tests only. */
  encrypt(xml: string, random?: Uint8Array): string {
    if (random !== undefined && random.length !== RANDOM_LEN) {
      throw new RangeError(
        `cannot encrypt message: the random prefix must be ${RANDOM_LEN} bytes, got ${random.length}`,
      );
    }
    // Encode the XML in place: UTF-8 takes at most 3 bytes per UTF-16 code unit.
    const cap = HEADER_LEN + xml.length * 3 + this.#appIdBytes.length + WECHAT_BLOCK;
    const buf = new Uint8Array(cap);
    if (random) buf.set(random);
    else crypto.getRandomValues(buf.subarray(0, RANDOM_LEN));
    const { written } = encoder.encodeInto(xml, buf.subarray(HEADER_LEN));
    new DataView(buf.buffer).setUint32(RANDOM_LEN, written);
    let n = HEADER_LEN + written;
    buf.set(this.#appIdBytes, n);
    n += this.#appIdBytes.length;
    // Always pad, by a full block when already aligned, so the last byte always names the pad.
    const pad = WECHAT_BLOCK - (n % WECHAT_BLOCK);
    buf.fill(pad, n, n + pad);
    n += pad;
    const cipher = createCipheriv("aes-256-cbc", this.#key, this.#iv).setAutoPadding(false);
    const out = cipher.update(buf.subarray(0, n));
    cipher.final();
    return out.toBase64();
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Build WeChat's encrypted passive-reply envelope for `replyXml`, signed with `token`. The work is
 * synchronous; the promise (which rejects on a bad timestamp) is kept for its callers.
 */
export function encryptedReplyXml(
  cipher: WechatCipher,
  token: string,
  replyXml: string,
  timestamp: string | number,
  nonce: string,
): Promise<string> {
  return settled(() => {
    const ts = String(timestamp);
    if (!TIMESTAMP_RE.test(ts)) {
      throw new TypeError(`cannot build encrypted reply: timestamp ${quote(ts)} is not an integer`);
    }
    const encrypt = cipher.encrypt(replyXml);
    const sig = msgSignature(token, ts, nonce, encrypt);
    return `<xml><Encrypt>${cdata(encrypt)}</Encrypt><MsgSignature>${
      cdata(sig)
    }</MsgSignature><TimeStamp>${ts}</TimeStamp><Nonce>${cdata(nonce)}</Nonce></xml>`;
  });
}

/** Pull the `<Encrypt>` value out of a safe-mode POST body; throws `invalid_xml` or `xml_doctype_forbidden`. */
export function extractEncrypt(xmlText: string): string {
  refuseDeclarations(xmlText);
  // The same one-pass reader as the message inside (saxes): the envelope's parse was the largest cost of safe mode.
  let value: string | NotText | undefined;
  try {
    value = parseFully(xmlText).Encrypt;
  } catch (e) {
    throw new KefuError(
      "invalid_xml",
      `cannot parse safe-mode XML: ${e instanceof Error ? e.message : String(e)}`,
      400,
    );
  }
  if (typeof value !== "string" || value.trim() === "") {
    throw new KefuError(
      "invalid_xml",
      `cannot read safe-mode message: <xml> must hold one non-empty <Encrypt>, got ${
        value === undefined ? "none" : typeof value === "object" ? `${value.count}` : quote(value)
      }`,
      400,
    );
  }
  return value.trim();
}
