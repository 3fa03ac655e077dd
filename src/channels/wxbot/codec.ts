/**
 * WXBot's socket frames → `Message`s. Pure: no I/O, no state.
 *
 * Frames are parsed with lossless-json, because `NewMsgId` is a 64-bit integer
 * written as a bare JSON number that `JSON.parse` would round: an integer past
 * 2^53 stays the exact digits the platform sent (a string), every other number
 * is a JS number.
 *
 * `AddMsg`'s `event` is WeChat's own sync message (the seed says only "go by
 * what actually arrives"): `FromUserName`/`ToUserName`/`Content` as
 * `{"string":…}` or plain strings, `MsgType`, `CreateTime`, `NewMsgId`,
 * `MsgId`. Media types carry WeChat's XML in `Content`, read for what an
 * agent can use (lengths, a location, a link's title and URL); the files
 * themselves are not reachable through the platform.
 *
 * @module
 */

import { isSafeNumber, parse } from "lossless-json";
import { KefuError, quote } from "../../core/errors.ts";
import { MAX_ID_LENGTH, type Message, newMessageId, nowSeconds } from "../../core/message.ts";
import { readMessageXml } from "../../core/xml.ts";

/** A parsed frame. */
export type Frame = Record<string, unknown>;

// Safe numbers become numbers; integers (or decimals) that a double cannot hold keep their digits.
const parseNumber = (digits: string): number | string => isSafeNumber(digits) ? Number(digits) : digits;

/** Parse one frame (or API answer) without losing a 64-bit integer; throws `KefuError` `invalid_json`. */
export function parseFrame(text: string): Frame {
  let v: unknown;
  try {
    v = parse(text, null, parseNumber);
  } catch (e) {
    throw new KefuError("invalid_json", `cannot parse the WXBot frame ${quote(text, 80)}: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new KefuError("invalid_json", `cannot read the WXBot frame ${quote(text, 80)}: expected a JSON object`);
  }
  return v as Frame;
}

/** The frame's event name: the seed's success answer names it in `type`, its failure answer and AddMsg in `eventType`. */
export function frameType(f: Frame): string {
  const t = f.eventType ?? f.type;
  return typeof t === "string" ? t : "";
}

/** An integer field (a number, or a string of digits); undefined when absent; throws `wrong_type` otherwise. */
export function intField(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "string" && /^-?\d{1,15}$/.test(v.trim())) return Number(v.trim());
  throw new KefuError("wrong_type", `cannot read ${what}: expected an integer, got ${quote(v)}`);
}

/** The answer to the auth packet: `retCode` 0 is synced, anything else is refused. */
export interface AuthResult {
  retCode: number;
  msg: string;
}

/** Read an `AuthCheckResult` frame; throws `KefuError` when it has no readable `retCode`. */
export function readAuthResult(f: Frame): AuthResult {
  const retCode = intField(f.retCode, "AuthCheckResult.retCode");
  if (retCode === undefined) {
    throw new KefuError("missing_field", `cannot read AuthCheckResult ${quote(f, 120)}: it has no retCode`);
  }
  return { retCode, msg: typeof f.msg === "string" ? f.msg : "" };
}

/** One decoded `AddMsg`. */
export interface AddMsg {
  /** The message, direction `in` from a user, or `out` when the account itself sent it (from another device). */
  message: Message;
  /** The account sent it itself: not a user's message. */
  own: boolean;
}

// WeChat's "SKBuiltinString": {"string": "…"}; plain strings are taken too, and an empty object is "".
function wxString(v: unknown, what: string): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "object" && !Array.isArray(v)) {
    const s = (v as Record<string, unknown>).string;
    if (s === undefined || s === null) return "";
    if (typeof s === "string") return s;
  }
  throw new KefuError("wrong_type", `cannot read ${what}: expected {"string":"…"} or a string, got ${quote(v)}`);
}

function id(v: string, what: string): string {
  const s = v.trim();
  if (s.length > MAX_ID_LENGTH) {
    throw new KefuError("wrong_type", `${what} is ${s.length} characters long: ids are at most ${MAX_ID_LENGTH}`);
  }
  return s;
}

/**
 * The message id, exact: NewMsgId (64-bit; a number of any size, or a string of digits), else MsgId. Undefined
 * when neither is there or both are 0.
 */
export function messageId(event: Record<string, unknown>): string | undefined {
  for (const key of ["NewMsgId", "MsgId"]) {
    const v = event[key];
    if (v === undefined || v === null || v === "" || v === 0 || v === "0") continue;
    const s = typeof v === "number" && Number.isSafeInteger(v) ? String(v) : typeof v === "string" ? v.trim() : "";
    if (!/^-?\d{1,40}$/.test(s)) {
      throw new KefuError("wrong_type", `cannot read ${key} ${quote(v)}: expected an integer`);
    }
    return s;
  }
  return undefined;
}

// A group member's message starts with "wxid:\n" (WeChat's own way of naming the sender in a group).
const SENDER_RE = /^([^\s:]{1,128}):\n/;

/** A group's id ends in `@chatroom`. */
export function isGroup(user: string): boolean {
  return user.endsWith("@chatroom");
}

/**
 * Decode an `AddMsg` frame: the account is `userInfo.wxid` (or a top-level `wxid`, as an older version of the
 * platform's README shows); the contact is the other side (the user, or the group); in a group, the sender's
 * wxid is put before the content (`wxid_sender: …`) and in `extra.sender`. Throws `KefuError` on what it cannot
 * read.
 */
export function decodeAddMsg(f: Frame): AddMsg {
  const info = f.userInfo;
  const account = id(
    wxString(typeof info === "object" && info !== null ? (info as Frame).wxid : f.wxid, "userInfo.wxid"),
    "userInfo.wxid",
  );
  if (account === "") {
    throw new KefuError("missing_field", "cannot read AddMsg: userInfo.wxid is required (the account it came to)");
  }
  const e = f.event;
  if (typeof e !== "object" || e === null || Array.isArray(e)) {
    throw new KefuError("missing_field", `cannot read AddMsg: expected "event":{…}, got ${quote(e)}`);
  }
  const event = e as Record<string, unknown>;
  const from = id(wxString(event.FromUserName, "event.FromUserName"), "event.FromUserName");
  const to = id(wxString(event.ToUserName, "event.ToUserName"), "event.ToUserName");
  let own = from === account;
  const peer = own ? to : from;
  if (peer === "") {
    throw new KefuError("missing_field", `cannot read AddMsg: event.${own ? "ToUserName" : "FromUserName"} is empty`);
  }
  const msgType = intField(event.MsgType, "event.MsgType");
  if (msgType === undefined) throw new KefuError("missing_field", "cannot read AddMsg: event.MsgType is required");
  let body = wxString(event.Content, "event.Content");
  let sender = "";
  if (isGroup(peer)) {
    const m = SENDER_RE.exec(body);
    if (m) {
      sender = m[1];
      body = body.slice(m[0].length);
    }
    // Some clients report the account's own group messages as coming from the group, named by the account.
    if (sender === account) own = true;
  }
  const decoded = decodeBody(msgType, body);
  const extra: Record<string, string> = { ...decoded.extra };
  const msgId = event.MsgId;
  if (typeof msgId === "number" || typeof msgId === "string") extra.MsgId = String(msgId);
  if (sender !== "") extra.sender = sender;
  const created = intField(event.CreateTime, "event.CreateTime");
  const message: Message = {
    id: messageId(event) ?? newMessageId(),
    direction: own ? "out" : "in",
    channel: "",
    contact: peer,
    agent: "",
    company: "",
    account,
    type: decoded.type,
    content: sender !== "" ? `${sender}: ${decoded.content}` : decoded.content,
    media: decoded.media,
    sendTime: created !== undefined && created > 0 ? created : nowSeconds(),
    // Nicknames are not in the event: the contact is shown by its wxid (or the group's id).
    name: peer,
    avatar: "",
  };
  if (Object.keys(extra).length > 0) message.extra = extra;
  return { message, own };
}

/** What one MsgType's Content becomes. */
export interface Body {
  type: string;
  content: string;
  media: string;
  extra?: Record<string, string>;
}

// WeChat's XML in Content, or undefined when it is not readable (never an error: the message is still delivered).
function readXml(text: string): Record<string, unknown> | undefined {
  const msg = readMessageXml(text)?.msg;
  return typeof msg === "object" && msg !== null ? msg as Record<string, unknown> : undefined;
}

function at(node: unknown, ...path: string[]): string {
  let v = node;
  for (const p of path) {
    if (typeof v !== "object" || v === null) return "";
    v = (v as Record<string, unknown>)[p];
  }
  return typeof v === "string" ? v.trim() : typeof v === "number" ? String(v) : "";
}

function seconds(ms: string, unit: "ms" | "s"): string {
  const n = Number(ms);
  if (ms === "" || !Number.isFinite(n) || n <= 0) return "";
  const s = unit === "ms" ? n / 1000 : n;
  return ` ${Math.round(s * 10) / 10} 秒`;
}

// Text for a message whose content kefu cannot pass on, in Chinese as the agents' console is.
const NO_FILE = "（WXBot 不转发文件内容，请在微信中查看）";

/** Decode one MsgType's Content (the group sender already taken off). */
export function decodeBody(msgType: number, content: string): Body {
  switch (msgType) {
    case 1:
      return { type: "text", content, media: "" };
    case 3:
      return { type: "image", content: `[图片]${NO_FILE}`, media: "" };
    case 34: {
      const len = at(readXml(content), "voicemsg", "@voicelength");
      return { type: "voice", content: `[语音${seconds(len, "ms")}]${NO_FILE}`, media: "" };
    }
    case 43: {
      const len = at(readXml(content), "videomsg", "@playlength");
      return { type: "video", content: `[视频${seconds(len, "s")}]${NO_FILE}`, media: "" };
    }
    case 47: {
      // Stickers have a public CDN address: the agent can open it.
      const url = at(readXml(content), "emoji", "@cdnurl");
      return { type: "emoji", content: "[表情]", media: /^https?:\/\//.test(url) ? url : "" };
    }
    case 48: {
      const loc = readXml(content);
      const label = at(loc, "location", "@label") || at(loc, "location", "@poiname");
      const extra = {
        Location_X: at(loc, "location", "@x"),
        Location_Y: at(loc, "location", "@y"),
        Scale: at(loc, "location", "@scale"),
        Label: label,
      };
      return { type: "location", content: `[位置] ${label}`.trim(), media: "", extra };
    }
    case 49:
      return appMessage(content);
    case 10000:
      return { type: "system", content, media: "" };
    default: {
      // Kept with its own number, so that an agent sees that something came and what kefu could not read.
      const readable = content.trim().startsWith("<") ? "" : ` ${content.slice(0, 200)}`;
      return { type: `msgtype_${msgType}`, content: `[未识别的消息类型 ${msgType}]${readable}`, media: "" };
    }
  }
}

// MsgType 49: links, files, quotes, mini programs, transfers… told apart by <appmsg><type>.
function appMessage(content: string): Body {
  const msg = readXml(content);
  const kind = at(msg, "appmsg", "type");
  const title = at(msg, "appmsg", "title");
  const url = at(msg, "appmsg", "url");
  switch (kind) {
    case "5":
      return {
        type: "link",
        content: title,
        media: "",
        extra: { Title: title, Description: at(msg, "appmsg", "des"), Url: url },
      };
    case "6":
      return { type: "file", content: `[文件] ${title}${NO_FILE}`, media: "" };
    case "57":
      // A reply quoting an earlier message: the title is what the user wrote.
      return {
        type: "text",
        content: title,
        media: "",
        extra: { quoted: at(msg, "appmsg", "refermsg", "content").slice(0, 500) },
      };
    case "33":
    case "36":
      return { type: "miniprogrampage", content: `[小程序] ${title}`.trim(), media: "", extra: { Title: title } };
    case "2000":
      return { type: "app", content: "[转账]（请在微信中处理）", media: "" };
    case "2001":
      return { type: "app", content: "[红包]（请在微信中查看）", media: "" };
    default:
      return {
        type: "app",
        content: `[应用消息${kind ? ` ${kind}` : ""}] ${title}`.trim(),
        media: "",
        extra: url !== "" ? { Url: url } : undefined,
      };
  }
}
