/**
 * The seed's JSON envelope ⇄ `Message`. Pure: no I/O, no state.
 *
 * The envelope is `{"data":{…},"result":{"code":…,"message":…}}`. Towards an
 * agent, `data.contact_id` is always the user. In a push to kefu (seed §2.1,
 * direction `in`), `data.contact_id` is the user who wrote (the 对方 of §1.2)
 * and the contact list picks the agent; a push that also names `data.from_id`
 * reads the other way round: `from_id` is the user, `contact_id` the agent.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import {
  type Direction,
  isKnownType,
  isMediaType,
  MAX_ID_LENGTH,
  type Message,
  newMessageId,
  nowSeconds,
  parseSendTime,
} from "../core/message.ts";
import { codeForType, SYSTEM_CONTACT, typeForCode } from "./protocol.ts";

/** Options for {@link decodeEnvelope}. */
export interface DecodeEnvelopeOptions {
  /**
   * `in`: a push to kefu (`contact_id` = user, or with `from_id`: `from_id` = user and `contact_id` = agent,
   * in `to`); `out`: an agent's reply (`contact_id` = user).
   */
  direction: Direction;
  /** The replying agent, for direction `out`. */
  agent?: string;
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

function str(o: Obj, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  throw new KefuError("wrong_type", `${path}.${key} must be a string, got ${typeName(v)} ${quote(v)}`);
}

function readCode(result: unknown): number | undefined {
  if (result === undefined || result === null) return undefined;
  if (!isObject(result)) {
    throw new KefuError("wrong_type", `result must be an object, got ${typeName(result)}`);
  }
  const c = result.code;
  if (c === undefined || c === null) return undefined;
  // The seed writes the system code as a string ("102"): accept integer strings too.
  const n = typeof c === "number" ? c : typeof c === "string" && /^-?\d+$/.test(c.trim()) ? Number(c) : NaN;
  if (!Number.isInteger(n)) {
    throw new KefuError("wrong_type", `result.code must be an integer, got ${typeName(c)} ${quote(c)}`);
  }
  return n;
}

/** Decode an envelope from JSON text; throws `KefuError` on bad input. */
export function decodeEnvelope(text: string, options: DecodeEnvelopeOptions): Message {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new KefuError("invalid_json", `cannot parse JSON: ${(e as Error).message}`);
  }
  return decodeEnvelopeValue(value, options);
}

/** Decode an already parsed envelope; throws `KefuError` on bad input. */
export function decodeEnvelopeValue(value: unknown, options: DecodeEnvelopeOptions): Message {
  if (!isObject(value)) {
    throw new KefuError("invalid_envelope", `expected an envelope {"data":{…},"result":{…}}, got ${typeName(value)}`);
  }
  const data = value.data;
  if (!isObject(data)) {
    throw new KefuError(
      "invalid_envelope",
      data === undefined ? `the envelope has no "data" object` : `data must be an object, got ${typeName(data)}`,
    );
  }
  const code = readCode(value.result);
  const msgType = str(data, "msg_type", "data")?.trim() || undefined;
  const type = msgType ?? (code === undefined ? undefined : typeForCode(code));
  if (type === undefined) {
    throw new KefuError(
      "missing_field",
      code === undefined
        ? "data.msg_type is required (text, image, voice, video, …)"
        : `data.msg_type is required: result.code ${code} names no message type`,
    );
  }
  if (code !== undefined && isKnownType(type) && code !== codeForType(type)) {
    throw new KefuError(
      "code_mismatch",
      `result.code ${code} does not match data.msg_type ${quote(type)} (expected ${codeForType(type)})`,
    );
  }

  const msg = data.msg;
  if (msg !== undefined && !isObject(msg)) {
    throw new KefuError("wrong_type", `data.msg must be an object, got ${typeName(msg)}`);
  }
  const m = msg ?? {};
  const content = str(m, "content", "data.msg") ?? "";
  const media = str(m, "media_path", "data.msg")?.trim() ?? "";
  if (type === "text" && content === "") {
    throw new KefuError("missing_field", "data.msg.content is required for a text message");
  }
  if (isMediaType(type) && media === "") {
    throw new KefuError("missing_field", `data.msg.media_path is required for a ${type} message`);
  }

  const contactId = boundedId(data, "contact_id");
  const fromId = options.direction === "in" ? boundedId(data, "from_id") : "";
  let contact = contactId;
  let to: string | undefined;
  if (fromId !== "") {
    contact = fromId;
    to = contactId;
  } else if (contactId === "") {
    throw new KefuError(
      "missing_field",
      options.direction === "out"
        ? "data.contact_id is required: the user to reply to"
        : "data.contact_id is required: the user who sent the message",
    );
  }

  const t = data.send_time;
  let sendTime: number;
  if (t === undefined || t === null || t === "") sendTime = nowSeconds();
  else if (typeof t === "number" && Number.isInteger(t) && t >= 0) sendTime = t;
  else if (typeof t === "string") sendTime = parseSendTime(t, "data.send_time");
  else {
    throw new KefuError(
      "wrong_type",
      `data.send_time must be epoch seconds or a date string, got ${typeName(t)} ${quote(t)}`,
    );
  }

  const id = boundedId(data, "id");
  const message: Message = {
    id: id || newMessageId(),
    direction: options.direction,
    // The channel that decoded it says which it is (the hub fills in a reply's from its contact).
    channel: "",
    contact,
    agent: options.agent ?? "",
    company: str(data, "company_id", "data") ?? "",
    type,
    content,
    media,
    sendTime,
    name: str(data, "name", "data") || contact,
    avatar: str(data, "avatar", "data") ?? "",
  };
  if (to !== undefined) message.to = to;
  return message;
}

// An id (user, agent, message): trimmed, at most MAX_ID_LENGTH characters.
function boundedId(data: Obj, key: string): string {
  const v = str(data, key, "data")?.trim() ?? "";
  if (v.length > MAX_ID_LENGTH) {
    throw new KefuError("wrong_type", `data.${key} is ${v.length} characters long: ids are at most ${MAX_ID_LENGTH}`);
  }
  return v;
}

/** What `data.msg` holds for each type. */
type MsgBody = Record<string, string>;

function msgBody(m: Message): MsgBody {
  const e = m.extra ?? {};
  switch (m.type) {
    case "text":
      return { content: m.content };
    case "location":
      return {
        content: m.content,
        latitude: e.Location_X ?? "",
        longitude: e.Location_Y ?? "",
        scale: e.Scale ?? "",
        label: e.Label ?? "",
      };
    case "link":
      return { content: m.content, title: e.Title ?? "", description: e.Description ?? "", url: e.Url ?? "" };
    case "miniprogrampage":
      return {
        content: m.content,
        title: e.Title ?? "",
        app_id: e.AppId ?? "",
        page_path: e.PagePath ?? "",
        thumb_url: e.ThumbUrl ?? "",
      };
    case "event": {
      const body: MsgBody = { content: m.content, event: e.Event ?? "", from_id: m.contact };
      if (e.EventKey) body.event_key = e.EventKey;
      if (e.Ticket) body.ticket = e.Ticket;
      return body;
    }
  }
  if (isMediaType(m.type)) {
    // Voice may carry WeChat's speech recognition as text.
    const body: MsgBody = m.content === "" ? { media_path: m.media } : { media_path: m.media, content: m.content };
    // What kefu's media work added: the stored file's type, or why there is no file.
    if (e.media_type) body.media_type = e.media_type;
    if (e.media_error) body.media_error = e.media_error;
    return body;
  }
  if (m.media === "") return { content: m.content };
  return m.content === "" ? { media_path: m.media } : { content: m.content, media_path: m.media };
}

const json = JSON.stringify;

// The parts of a system envelope that never change, already in JSON.
const SYSTEM_PARTS = `"name":${json("系统消息")},"avatar":"","msg_type":"system","contact_id":${json(SYSTEM_CONTACT)}`;

/**
 * Encode a `Message` as the envelope an agent receives (seed §1.2): `data.contact_id`
 * is the user, `msg` holds `content` for text and `media_path` for media. Events are
 * system envelopes (§1.1: code 102, contact `system01`) naming the user in `msg.from_id`.
 *
 * Once per delivered message, so written out field by field in the seed's order, with
 * `JSON.stringify` on the values only: the same bytes as stringifying the whole object.
 */
export function encodeEnvelope(m: Message): string {
  const { id, name, avatar, type, contact, company, sendTime } = m;
  const code = codeForType(type);
  if (
    typeof id !== "string" || typeof name !== "string" || typeof avatar !== "string" || typeof type !== "string" ||
    typeof contact !== "string" || typeof company !== "string" || typeof sendTime !== "number"
  ) {
    // Not a well-formed Message (a missing value would drop its key): the object route decides.
    return json(envelopeObject(m));
  }
  const msg = type === "text" && typeof m.content === "string" ? `{"content":${json(m.content)}}` : json(msgBody(m));
  const who = type === "event"
    ? SYSTEM_PARTS
    : `"name":${json(name)},"avatar":${json(avatar)},"msg_type":${json(type)},"contact_id":${json(contact)}`;
  return `{"data":{"id":${json(id)},${who},"company_id":${json(company)},"send_time":${
    json(sendTime)
  },"msg":${msg}},"result":{"code":${code},"message":"common"}}`;
}

// The envelope as an object, in the seed's field order.
function envelopeObject(m: Message): unknown {
  const event = m.type === "event";
  return {
    data: {
      id: m.id,
      name: event ? "系统消息" : m.name,
      avatar: event ? "" : m.avatar,
      msg_type: event ? "system" : m.type,
      contact_id: event ? SYSTEM_CONTACT : m.contact,
      company_id: m.company,
      send_time: m.sendTime,
      msg: msgBody(m),
    },
    result: { code: codeForType(m.type), message: "common" },
  };
}
