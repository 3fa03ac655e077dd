/**
 * The simulator's WeChat side of the webhook: a user's message or event posted
 * to the account's server exactly as WeChat posts it (XML, signed query, safe
 * or compatible mode), WeChat's retries when no answer comes within the
 * timeout, and the answer read back as WeChat reads it.
 *
 * @module
 */

import { readAtMost } from "../core/body.ts";
import { cdata } from "../core/xml.ts";
import { msgSignature, signature, verifySignature, WechatCipher } from "../channels/wx_official/crypto.ts";
import { decodeReply, parseXml, type PassiveReply, text } from "./reply_xml.ts";

export type { PassiveReply };

/** What WeChat shows the user when the account's server fails or answers something it cannot use. */
export const FAILURE_TEXT = "该公众号提供的服务出现故障，请稍后再试";

/** How messages are posted: plaintext, compatible (plaintext fields plus `Encrypt`) or safe (`Encrypt` only). */
export type WebhookMode = "plaintext" | "compatible" | "safe";

/** A message or event a WeChat user sends; numbers stay strings, as WeChat's XML carries them. */
export type UserInput =
  | { type: "text"; content: string }
  | { type: "image"; picUrl: string; mediaId: string }
  // `seconds` is for the phone page: WeChat's voice XML does not carry the note's length.
  | { type: "voice"; mediaId: string; format: string; seconds?: number }
  | { type: "location"; latitude: string; longitude: string; scale: string; label: string }
  | { type: "link"; title: string; description: string; url: string }
  | { type: "subscribe"; scene?: string; ticket?: string }
  | { type: "unsubscribe" }
  | { type: "scan"; scene: string; ticket: string }
  | { type: "click"; eventKey: string }
  | { type: "view"; url: string }
  | { type: "report_location"; latitude: string; longitude: string; precision: string };

/** The fields every message and event carries besides its own. */
export interface XmlHead {
  openid: string;
  /** The account's original id (`gh_…`), WeChat's ToUserName. */
  accountId: string;
  /** Epoch seconds. */
  createTime: number;
  /** Decimal 64-bit id; events have none. */
  msgId: string;
}

/** What happened to one message: `accepted` (no reply), `replied` (a passive reply) or `failed`. */
export interface SendResult {
  /** "" for events. */
  msgId: string;
  createTime: number;
  attempts: number;
  maxAttempts: number;
  status: "accepted" | "replied" | "failed";
  /** HTTP status of the last answer, when there was one. */
  httpStatus?: number;
  reply?: PassiveReply;
  /** Why it failed, for the developer. */
  error?: string;
  /** What WeChat shows the user on failure ({@link FAILURE_TEXT}). */
  shown?: string;
}

/** Options for {@link createWebhookSender}. */
export interface WebhookSenderOptions {
  /** The account's server URL (kefu: `http://host:port/wechat`). */
  url: string;
  token: string;
  accountId: string;
  appId?: string;
  /** 43 characters; needed for compatible and safe mode. */
  encodingAesKey?: string;
  /** Default: safe with an EncodingAESKey, plaintext without. */
  mode?: WebhookMode;
  /** WeChat waits 5000 ms for an answer, then drops the connection and retries. */
  timeoutMs?: number;
  /** WeChat tries 4 times (3 retries). */
  maxAttempts?: number;
  /** Larger answers are failures; default 256 KiB. */
  maxAnswerBytes?: number;
  /** Clock in ms. */
  now?: () => number;
}

/** Per-send options. */
export interface SendOptions {
  /** Abort to cancel the send (between and during attempts). */
  signal?: AbortSignal;
  /** Called before each attempt, 1-based. */
  onAttempt?: (attempt: number, maxAttempts: number) => void;
  /** Use this MsgId instead of a fresh one. */
  msgId?: string;
  /** Use this CreateTime (epoch seconds) instead of now. */
  createTime?: number;
}

/** Posts users' messages to one account's server. */
export interface WebhookSender {
  readonly mode: WebhookMode;
  readonly maxAttempts: number;
  /** Post one message or event as `openid`, retrying as WeChat does; never throws for what the server does. */
  send(openid: string, input: UserInput, options?: SendOptions): Promise<SendResult>;
}

const EVENTS: Record<string, string> = {
  subscribe: "subscribe",
  unsubscribe: "unsubscribe",
  scan: "SCAN",
  click: "CLICK",
  view: "VIEW",
  report_location: "LOCATION",
};

function el(name: string, value: string): string {
  return `<${name}>${cdata(value)}</${name}>`;
}

/** Whether the input is an event (MsgType `event`, no MsgId). */
export function isEvent(input: UserInput): boolean {
  return Object.hasOwn(EVENTS, input.type);
}

/** A fresh MsgId: a random positive 64-bit integer of 19 digits, as a decimal string. */
export function newMsgId(): string {
  const [hi, lo] = crypto.getRandomValues(new Uint32Array(2));
  return ((BigInt((hi & 0x3fffffff) | 0x40000000) << 32n) | BigInt(lo)).toString();
}

function newNonce(): string {
  return String(crypto.getRandomValues(new Uint32Array(1))[0]);
}

/** The XML WeChat posts for `input`, fields in WeChat's order. */
export function userXml(input: UserInput, head: XmlHead): string {
  const start = `<xml>${el("ToUserName", head.accountId)}${el("FromUserName", head.openid)}` +
    `<CreateTime>${head.createTime}</CreateTime>`;
  const event = EVENTS[input.type];
  if (event !== undefined) {
    let body = `${start}${el("MsgType", "event")}${el("Event", event)}`;
    switch (input.type) {
      case "subscribe":
        // A subscribe from a parametric QR code carries the scene prefixed with qrscene_.
        if (input.scene !== undefined) {
          body += el("EventKey", `qrscene_${input.scene}`) + el("Ticket", input.ticket ?? "");
        }
        break;
      case "scan":
        body += el("EventKey", input.scene) + el("Ticket", input.ticket);
        break;
      case "click":
        body += el("EventKey", input.eventKey);
        break;
      case "view":
        body += el("EventKey", input.url);
        break;
      case "report_location":
        body += `<Latitude>${input.latitude}</Latitude><Longitude>${input.longitude}</Longitude>` +
          `<Precision>${input.precision}</Precision>`;
        break;
    }
    return `${body}</xml>`;
  }
  let body = `${start}${el("MsgType", input.type)}`;
  switch (input.type) {
    case "text":
      body += el("Content", input.content);
      break;
    case "image":
      body += el("PicUrl", input.picUrl) + el("MediaId", input.mediaId);
      break;
    case "voice":
      body += el("MediaId", input.mediaId) + el("Format", input.format);
      break;
    case "location":
      body += `<Location_X>${input.latitude}</Location_X><Location_Y>${input.longitude}</Location_Y>` +
        `<Scale>${input.scale}</Scale>${el("Label", input.label)}`;
      break;
    case "link":
      body += el("Title", input.title) + el("Description", input.description) + el("Url", input.url);
      break;
  }
  return `${body}<MsgId>${head.msgId}</MsgId></xml>`;
}

type Attempt =
  | { kind: "answer"; status: number; text: string }
  | { kind: "retry"; error: string }
  | { kind: "final"; error: string };

/** Create a sender for one account's server. */
export function createWebhookSender(options: WebhookSenderOptions): WebhookSender {
  const key = options.encodingAesKey ?? "";
  const mode = options.mode ?? (key === "" ? "plaintext" : "safe");
  if (mode !== "plaintext" && key === "") {
    throw new Error(`cannot send in ${mode} mode: an EncodingAESKey is required`);
  }
  const target = new URL(options.url);
  const where = `${target.origin}${target.pathname}`;
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxAttempts = options.maxAttempts ?? 4;
  const maxAnswerBytes = options.maxAnswerBytes ?? 256 * 1024;
  for (
    const [name, v] of [["timeoutMs", timeoutMs], ["maxAttempts", maxAttempts], ["maxAnswerBytes", maxAnswerBytes]]
  ) {
    if (!Number.isInteger(v) || (v as number) < 1) {
      throw new RangeError(`cannot create the webhook sender: ${name} must be a positive integer, got ${v}`);
    }
  }
  const now = options.now ?? Date.now;
  const { token, accountId } = options;
  const cipher = mode === "plaintext" ? undefined : WechatCipher.create(key, options.appId ?? "");
  // Marks the rejection handled; awaiting it below still throws.
  cipher?.catch(() => {});

  async function attempt(xml: string, openid: string, signal?: AbortSignal): Promise<Attempt> {
    const timestamp = String(Math.floor(now() / 1000));
    const nonce = newNonce();
    const url = new URL(target);
    url.searchParams.set("signature", signature(token, timestamp, nonce));
    url.searchParams.set("timestamp", timestamp);
    url.searchParams.set("nonce", nonce);
    url.searchParams.set("openid", openid);
    let body = xml;
    if (cipher) {
      const encrypt = await (await cipher).encrypt(xml);
      url.searchParams.set("encrypt_type", "aes");
      url.searchParams.set("msg_signature", msgSignature(token, timestamp, nonce, encrypt));
      body = mode === "safe"
        ? `<xml>${el("ToUserName", accountId)}${el("Encrypt", encrypt)}</xml>`
        : `${xml.slice(0, -"</xml>".length)}${el("Encrypt", encrypt)}</xml>`;
    }
    const timer = new AbortController();
    const timeout = setTimeout(() => timer.abort(), timeoutMs);
    const cancel = () => timer.abort();
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      const res = await fetch(url, {
        method: "POST",
        body,
        headers: { "content-type": "text/xml" },
        signal: timer.signal,
      });
      const bytes = await readAtMost(res.body, maxAnswerBytes);
      if (bytes === undefined) return { kind: "final", error: `the answer is over ${maxAnswerBytes} bytes` };
      return { kind: "answer", status: res.status, text: new TextDecoder().decode(bytes) };
    } catch (e) {
      if (signal?.aborted) return { kind: "final", error: "the send was cancelled" };
      // WeChat drops the connection after the timeout and tries again; so it does when it cannot connect.
      if (timer.signal.aborted) return { kind: "retry", error: `no answer from ${where} within ${timeoutMs} ms` };
      return { kind: "retry", error: `cannot reach ${where}: ${e instanceof Error ? e.message : String(e)}` };
    } finally {
      clearTimeout(timeout);
      signal?.removeEventListener("abort", cancel);
    }
  }

  async function send(openid: string, input: UserInput, sendOptions: SendOptions = {}): Promise<SendResult> {
    const event = isEvent(input);
    const msgId = event ? "" : sendOptions.msgId ?? newMsgId();
    const createTime = sendOptions.createTime ?? Math.floor(now() / 1000);
    // The same body every time: a retry is the same message, known by its MsgId (events: CreateTime).
    const xml = userXml(input, { openid, accountId, createTime, msgId });
    const base = { msgId, createTime, maxAttempts };
    const failed = (attempts: number, error: string, httpStatus?: number): SendResult => ({
      ...base,
      attempts,
      status: "failed",
      ...(httpStatus === undefined ? {} : { httpStatus }),
      error,
      shown: FAILURE_TEXT,
    });
    if (cipher) {
      try {
        await cipher;
      } catch (e) {
        return failed(0, (e as Error).message);
      }
    }
    let error = "";
    for (let n = 1; n <= maxAttempts; n++) {
      if (sendOptions.signal?.aborted) return failed(n - 1, "the send was cancelled");
      sendOptions.onAttempt?.(n, maxAttempts);
      const a = await attempt(xml, openid, sendOptions.signal);
      if (a.kind === "retry") {
        error = a.error;
        continue;
      }
      if (a.kind === "final") return failed(n, a.error);
      const answer = await readAnswer(a.status, a.text, openid);
      if (typeof answer === "string") return failed(n, answer, a.status);
      return answer === null
        ? { ...base, attempts: n, status: "accepted", httpStatus: a.status }
        : { ...base, attempts: n, status: "replied", httpStatus: a.status, reply: answer };
    }
    return failed(maxAttempts, `${error} (${maxAttempts} attempts)`);
  }

  // null: no reply; a string: why WeChat cannot use the answer.
  async function readAnswer(status: number, raw: string, openid: string): Promise<PassiveReply | null | string> {
    const body = raw.trim();
    if (status !== 200) return `the server answered HTTP ${status}: ${JSON.stringify(body.slice(0, 200))}`;
    if (body === "" || body === "success") return null;
    const outer = parseXml(body);
    if (typeof outer === "string") {
      return `the answer is neither "success", empty nor reply XML: ${JSON.stringify(body.slice(0, 200))}`;
    }
    let reply = outer;
    if (outer.Encrypt !== undefined) {
      if (!cipher) return "the reply is encrypted but the account is in plaintext mode";
      const encrypt = text(outer.Encrypt).trim();
      const expected = msgSignature(token, text(outer.TimeStamp).trim(), text(outer.Nonce).trim(), encrypt);
      if (!verifySignature(text(outer.MsgSignature).trim(), expected)) {
        return "the reply's MsgSignature does not match its Encrypt, TimeStamp and Nonce";
      }
      let inner: string;
      try {
        inner = await (await cipher).decrypt(encrypt);
      } catch (e) {
        return `cannot decrypt the reply: ${(e as Error).message}`;
      }
      const parsed = parseXml(inner);
      if (typeof parsed === "string") return `the decrypted reply is not XML: ${parsed}`;
      reply = parsed;
    } else if (mode === "safe") {
      return "the reply is plaintext but the account is in safe mode (expected <Encrypt>)";
    }
    return decodeReply(reply, openid, accountId);
  }

  return { mode, maxAttempts, send };
}
