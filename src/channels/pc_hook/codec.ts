/**
 * The PC hook's pushed JSON → `Message`. Pure: no I/O, no state.
 *
 * A push is `{"pushType","pushTime","robot":{"userName",…},"data":{…}}`; the
 * vendor's own examples leave out everything but `data`, so a push without
 * `pushType` is a chat message (1). The chat message is
 * `{from,to,type,content,msgSvrID|szMsgSvrID,createtime|createTime,isChatroomMsg,
 * isSender,talkerInfo,chatroomMemberInfo}` (docs/research/channels.md §1.4).
 * Both spellings the vendor's material uses are read; `msgSvrID` above 2^53
 * is kept exact. What cannot be read throws `KefuError`; the channel then logs
 * and counts the frame for the operator (it is no user's message).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { KefuError, quote } from "../../core/errors.ts";
import { MAX_ID_LENGTH, type Message, nowSeconds, parseSendTime } from "../../core/message.ts";
import { describeBody } from "./content.ts";

/** The channel's name, as `Message.channel` and the store carry it. */
export const PC_HOOK = "pc_hook";

/** Pushes that are read but are no user's message: answered `ok`, logged, not kept. */
export type SkipReason = "self_sent" | "login" | "logout" | "async_result" | "group_change" | "phone_status";

/** What a push turned out to be. `account` is the hook's own wxid (`robot.userName`), or the fallback. */
export type Decoded =
  | { kind: "message"; message: Message; account: string }
  | { kind: "skip"; reason: SkipReason; account: string; detail: Record<string, string> };

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

/**
 * Parse the hook's JSON, keeping integers beyond 2^53 exact as their digits (`msgSvrID` is a uint64 written as
 * a number), through the reviver's access to the source text.
 */
export function parseHookJson(text: string): unknown {
  const reviver = (_key: string, value: unknown, context?: { source?: string }) =>
    typeof value === "number" && !Number.isSafeInteger(value) && context?.source !== undefined &&
      /^-?\d+$/.test(context.source)
      ? context.source
      : value;
  return JSON.parse(text, reviver as (key: string, value: unknown) => unknown);
}

/** A short stable digest, for ids of pushes that carry none (a repeat of the same push is then a repeat). */
export function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}

// An integer field written as a number or as digits; undefined when absent.
function intOf(o: Obj, key: string, path: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "string" && /^-?\d{1,15}$/.test(v.trim())) return Number(v.trim());
  throw new KefuError("wrong_type", `${path}.${key} must be an integer, got ${typeName(v)} ${quote(v)}`);
}

function strOf(o: Obj | undefined, key: string): string {
  const v = o?.[key];
  return typeof v === "string" ? v.trim() : typeof v === "number" ? String(v) : "";
}

function truthy(v: unknown): boolean {
  return v === true || v === 1 || v === "1" || v === "true";
}

function boundedId(value: string, what: string): string {
  if (value.length > MAX_ID_LENGTH) {
    throw new KefuError("wrong_type", `${what} is ${value.length} characters long: ids are at most ${MAX_ID_LENGTH}`);
  }
  return value;
}

const PUSH_TYPES: Record<number, SkipReason | "message"> = {
  0: "async_result",
  1: "message",
  2: "login",
  3: "logout",
  4: "self_sent",
  5: "group_change",
};

/** Decode one pushed frame; `fallbackAccount` is the account when the push names no `robot`. */
export function decodePush(text: string, fallbackAccount: string, now: () => number = nowSeconds): Decoded {
  let value: unknown;
  try {
    value = parseHookJson(text);
  } catch (e) {
    throw new KefuError("invalid_json", `cannot parse the push as JSON: ${(e as Error).message}`);
  }
  if (!isObject(value)) {
    throw new KefuError("invalid_envelope", `expected a push {"pushType","robot","data"}, got ${typeName(value)}`);
  }
  const account = boundedId(strOf(isObject(value.robot) ? value.robot : undefined, "userName"), "robot.userName") ||
    fallbackAccount;
  // The vendor's examples are `{"data":{…}}`; a bare message object is read too.
  const data = isObject(value.data) ? value.data : "from" in value && "type" in value ? value : undefined;
  const pushType = intOf(value, "pushType", "push") ?? 1;
  const kind = PUSH_TYPES[pushType];
  if (kind === undefined) {
    throw new KefuError("unsupported_body", `cannot read pushType ${pushType}: kefu knows 0–5 (1 is a chat message)`);
  }
  if (kind !== "message") return { kind: "skip", reason: kind, account, detail: summary(data) };
  if (data === undefined) {
    throw new KefuError(
      "missing_field",
      `the push has no "data" object (got ${typeName(value.data)}): expected {"data":{"from","type","content",…}}`,
    );
  }
  return decodeChat(data, account, now);
}

// A few fields of a push that is not kept, for the log line.
function summary(data: Obj | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ["from", "to", "type", "szMsgSvrID", "msgSvrID", "userName", "desc"]) {
    const v = strOf(data, k);
    if (v !== "") out[k] = v.slice(0, 128);
  }
  return out;
}

// A chat message (pushType 1).
function decodeChat(d: Obj, account: string, now: () => number): Decoded {
  const wxType = intOf(d, "type", "data");
  if (wxType === undefined) throw new KefuError("missing_field", "data.type is required (1 text, 3 image, …)");
  if (truthy(d.isSender)) return { kind: "skip", reason: "self_sent", account, detail: summary(d) };
  // 51: the phone opened a chat or similar; no one wrote anything.
  if (wxType === 51) return { kind: "skip", reason: "phone_status", account, detail: summary(d) };
  const from = boundedId(strOf(d, "from"), "data.from");
  if (from === "") throw new KefuError("missing_field", "data.from is required: the wxid or group that wrote");
  const to = strOf(d, "to");
  const group = from.endsWith("@chatroom") || truthy(d.isChatroomMsg);
  const talker = isObject(d.talkerInfo) ? d.talkerInfo : undefined;
  const member = isObject(d.chatroomMemberInfo) ? d.chatroomMemberInfo : undefined;
  const rawContent = d.content === undefined || d.content === null ? "" : d.content;
  if (typeof rawContent !== "string") {
    throw new KefuError(
      "wrong_type",
      `data.content must be a string, got ${typeName(rawContent)} ${quote(rawContent)}`,
    );
  }
  // In groups WeChat prefixes the content with "sender_wxid:\n"; the vendor's example has none: strip it if there.
  let content = rawContent;
  let sender = group ? strOf(member, "userName") : "";
  const prefix = group ? /^([^\s:]{1,128}):\n/.exec(content) : null;
  if (prefix && (sender === "" || prefix[1] === sender)) {
    sender = prefix[1];
    content = content.slice(prefix[0].length);
  }
  const body = describeBody(wxType, content);
  const senderName = strOf(member, "chatroomDisplayName") || strOf(member, "nickName") || sender;
  if (group && body.fromMember && sender !== "") {
    // The group is the contact; which member wrote is shown on the message itself.
    body.content = `${senderName}${senderName !== sender ? ` (${sender})` : ""}:\n${body.content}`;
  }
  const extra: Record<string, string> = { ...body.extra, from };
  if (to !== "") extra.to = to;
  if (group) Object.assign(extra, { room: from, sender, sender_name: senderName });
  const msgId = strOf(d, "szMsgSvrID") || strOf(d, "msgSvrID");
  if (msgId !== "") extra.msgSvrID = msgId;
  return {
    kind: "message",
    account,
    message: {
      id: boundedId(msgId, "data.msgSvrID") || `h:${digest(JSON.stringify(d))}`,
      direction: "in",
      channel: PC_HOOK,
      account,
      contact: from,
      agent: "",
      company: "",
      type: body.type,
      content: body.content,
      media: "",
      sendTime: sendTimeOf(d, now),
      name: strOf(talker, "remark") || strOf(talker, "nickName") || from,
      avatar: strOf(talker, "smallHeadImgUrl"),
      extra,
    },
  };
}

// `createtime` in the vendor's message doc, `createTime` in its HTTP doc and older examples.
function sendTimeOf(d: Obj, now: () => number): number {
  for (const key of ["createtime", "createTime"]) {
    const v = d[key];
    if (v === undefined || v === null || v === "") continue;
    if (typeof v === "number" && Number.isInteger(v) && v >= 0) return parseSendTime(String(v), `data.${key}`);
    if (typeof v === "string") return parseSendTime(v, `data.${key}`);
    throw new KefuError("wrong_type", `data.${key} must be epoch seconds, got ${typeName(v)} ${quote(v)}`);
  }
  return now();
}
