/**
 * WeChat Official Account message security: URL/POST signatures and the
 * safe-mode AES-256-CBC envelope, on Web Crypto only.
 *
 * Decryption is not authentication: a flipped ciphertext bit can decrypt to
 * valid XML. Check `msg_signature` (with {@link verifySignature}) before
 * calling {@link WechatCipher.decrypt}.
 *
 * @module
 */

import { XMLParser } from "fast-xml-parser";
import { KefuError, quote } from "./errors.ts";

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const looseUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });

const AES_KEY_RE = /^[A-Za-z0-9+/]{43}$/;
const TIMESTAMP_RE = /^\d{1,15}$/;
const DECLARATION_RE = /<!\s*(?:DOCTYPE|ENTITY)/i;
// WeChat pads over 32-byte blocks although AES works on 16.
const WECHAT_BLOCK = 32;
const RANDOM_LEN = 16;
const HEADER_LEN = RANDOM_LEN + 4;

const parser = new XMLParser({ parseTagValue: false, processEntities: false, ignoreAttributes: true });

async function sha1Hex(parts: string[]): Promise<string> {
  // WeChat sorts byte strings; for its ASCII tokens, nonces and base64 that equals UTF-16 order.
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(parts.sort().join("")));
  return new Uint8Array(digest).toHex();
}

/** The `signature` query parameter: sha1 hex of the sorted token, timestamp and nonce. */
export function signature(token: string, timestamp: string, nonce: string): Promise<string> {
  return sha1Hex([token, timestamp, nonce]);
}

/** The safe-mode `msg_signature`: sha1 hex of the sorted token, timestamp, nonce and Encrypt value. */
export function msgSignature(token: string, timestamp: string, nonce: string, encrypt: string): Promise<string> {
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

function decryptFailed(why: string): KefuError {
  return new KefuError("decrypt_failed", `cannot decrypt message: ${why}`, 400);
}

/** AES-256-CBC with WeChat's framing and 32-byte PKCS#7 padding; one imported key per account. */
export class WechatCipher {
  readonly #key: CryptoKey;
  readonly #iv: Uint8Array<ArrayBuffer>;
  readonly #appId: string;
  readonly #appIdBytes: Uint8Array<ArrayBuffer>;

  private constructor(key: CryptoKey, iv: Uint8Array<ArrayBuffer>, appId: string) {
    this.#key = key;
    this.#iv = iv;
    this.#appId = appId;
    this.#appIdBytes = encoder.encode(appId);
  }

  /** Import the EncodingAESKey (43 base64 chars) for `appId`; throws a plain Error on a malformed key. */
  static async create(encodingAesKey: string, appId: string): Promise<WechatCipher> {
    if (!AES_KEY_RE.test(encodingAesKey)) {
      throw new Error(
        `cannot use EncodingAESKey: it must be 43 base64 characters (A-Z, a-z, 0-9, +, /), got ${encodingAesKey.length} characters`,
      );
    }
    if (!appId) throw new Error("cannot use WeChat safe mode: the appid is empty");
    // 43 chars + "=" is 256 bits plus 2 spare bits, which WeChat leaves random: decode loosely.
    const raw = Uint8Array.fromBase64(`${encodingAesKey}=`);
    const key = await crypto.subtle.importKey("raw", raw, { name: "AES-CBC" }, false, ["encrypt", "decrypt"]);
    return new WechatCipher(key, raw.slice(0, 16), appId);
  }

  /** Decrypt a safe-mode `Encrypt` value to the inner XML; throws `decrypt_failed` or `appid_mismatch`. */
  async decrypt(encryptBase64: string): Promise<string> {
    // Decode straight into a buffer with room for the extra block below, so nothing is copied.
    const buf = new Uint8Array(Math.ceil(encryptBase64.length / 4) * 3 + 16);
    let n: number;
    try {
      // Strict: WeChat always sends padded, canonical base64, so anything else was altered on the way.
      const { read, written } = buf.setFromBase64(encryptBase64, { lastChunkHandling: "strict" });
      if (read !== encryptBase64.length) throw new SyntaxError("input longer than expected");
      n = written;
    } catch {
      throw decryptFailed(`Encrypt is not valid base64 (${encryptBase64.length} characters)`);
    }
    if (n === 0 || n % 16 !== 0) {
      throw decryptFailed(`the ciphertext is ${n} bytes, not a positive multiple of 16`);
    }
    // Web Crypto insists on 16-byte PKCS#7 and WeChat pads up to 32, so append a block that decrypts
    // to a full 16-byte pad (the encryption of nothing, chained from the last block): Web Crypto strips
    // exactly that block and leaves WeChat's padding for us to check.
    const tail = await crypto.subtle.encrypt(
      { name: "AES-CBC", iv: buf.subarray(n - 16, n) },
      this.#key,
      new Uint8Array(0),
    );
    buf.set(new Uint8Array(tail), n);
    const plain = new Uint8Array(
      await crypto.subtle.decrypt({ name: "AES-CBC", iv: this.#iv }, this.#key, buf.subarray(0, n + 16)),
    );

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
  async encrypt(xml: string, random?: Uint8Array): Promise<string> {
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
    const out = await crypto.subtle.encrypt({ name: "AES-CBC", iv: this.#iv }, this.#key, buf.subarray(0, n));
    // Web Crypto appends a block for its own 16-byte padding; WeChat's ciphertext ends before it.
    return new Uint8Array(out, 0, n).toBase64();
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// A "]]>" inside would end the section early; split it across two sections.
function cdata(text: string): string {
  return `<![CDATA[${text.replaceAll("]]>", "]]]]><![CDATA[>")}]]>`;
}

/** Build WeChat's encrypted passive-reply envelope for `replyXml`, signed with `token`. */
export async function encryptedReplyXml(
  cipher: WechatCipher,
  token: string,
  replyXml: string,
  timestamp: string | number,
  nonce: string,
): Promise<string> {
  const ts = String(timestamp);
  if (!TIMESTAMP_RE.test(ts)) {
    throw new TypeError(`cannot build encrypted reply: timestamp ${quote(ts)} is not an integer`);
  }
  const encrypt = await cipher.encrypt(replyXml);
  const sig = await msgSignature(token, ts, nonce, encrypt);
  return `<xml><Encrypt>${cdata(encrypt)}</Encrypt><MsgSignature>${
    cdata(sig)
  }</MsgSignature><TimeStamp>${ts}</TimeStamp><Nonce>${cdata(nonce)}</Nonce></xml>`;
}

/** Pull the `<Encrypt>` value out of a safe-mode POST body; throws `invalid_xml` or `xml_doctype_forbidden`. */
export function extractEncrypt(xmlText: string): string {
  if (DECLARATION_RE.test(xmlText)) {
    throw new KefuError("xml_doctype_forbidden", "XML with a DOCTYPE or ENTITY declaration is refused", 400);
  }
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(xmlText) as Record<string, unknown>;
  } catch (e) {
    throw new KefuError(
      "invalid_xml",
      `cannot parse safe-mode XML: ${e instanceof Error ? e.message : String(e)}`,
      400,
    );
  }
  const xml = doc?.xml;
  const value = xml !== null && typeof xml === "object" ? (xml as Record<string, unknown>).Encrypt : undefined;
  if (typeof value !== "string" || value.trim() === "") {
    throw new KefuError(
      "invalid_xml",
      `cannot read safe-mode message: <xml> must hold one non-empty <Encrypt>, got ${
        value === undefined ? "none" : Array.isArray(value) ? `${value.length}` : quote(value)
      }`,
      400,
    );
  }
  return value.trim();
}
