/**
 * WeChat-style XML ⇄ `Message`. Pure: no I/O, no state.
 *
 * Inbound: the seed's simplified WeChat XML, `ToUserName` = the agent (may be
 * empty: kefu assigns one), `FromUserName` = the user. Outbound: a WeChat
 * passive-reply XML, `ToUserName` = the user.
 *
 * @module
 */

import { XMLParser, XMLValidator } from "fast-xml-parser";
import { KefuError } from "../../core/errors.ts";
import { MAX_ID_LENGTH, type Message, newMessageId, nowSeconds, parseSendTime } from "../../core/message.ts";
import { cdata, refuseDeclarations } from "../../core/xml.ts";
import { eventId, eventText } from "./events.ts";

// No value is ever turned into a number (MsgId is 64-bit), attributes are
// ignored, and only the five predefined entities are expanded: documents that
// declare their own (DOCTYPE/ENTITY) are refused before the parser sees them
// (`refuseDeclarations`).
// `jPath: false` spares building a path string per tag for callbacks we do not set.
const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: true,
  htmlEntities: false,
  trimValues: false,
  jPath: false,
});

// Fields mapped onto Message's own properties; everything else goes to `extra`.
const MAPPED = new Set(["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "PicUrl"]);

// fast-xml-parser reads malformed XML without complaint, so its validator goes first.
function parseFully(text: string): Record<string, unknown> {
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    const { msg, line, col } = valid.err;
    throw new KefuError("invalid_xml", `cannot parse XML at line ${line}${col ? `, column ${col}` : ""}: ${msg}`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(text) as Record<string, unknown>;
  } catch (e) {
    // The validator lets a few malformed documents through (e.g. "<A/"), which the parser then throws on.
    throw new KefuError("invalid_xml", `cannot parse XML: ${(e as Error).message}`);
  }
  const xml = doc.xml;
  if (xml === null || typeof xml !== "object" || Array.isArray(xml)) {
    throw new KefuError("invalid_xml", `cannot read message: the root element must be <xml> with fields inside`);
  }
  return xml as Record<string, unknown>;
}

function field(xml: Record<string, unknown>, name: string): string | undefined {
  const v = xml[name];
  if (v === undefined) return undefined;
  if (typeof v === "string") return v;
  throw new KefuError(
    "wrong_type",
    `cannot read <${name}>: it must appear once and hold text, got ${
      Array.isArray(v) ? `${v.length} elements` : "nested elements"
    }`,
  );
}

function required(xml: Record<string, unknown>, name: string, why: string): string {
  const v = field(xml, name)?.trim();
  if (!v) throw new KefuError("missing_field", `<${name}> is required: ${why}`);
  return v;
}

// An id, trimmed; over MAX_ID_LENGTH it is refused, its length quoted (the value itself is too long to).
function bounded(what: string, v: string): string {
  if (v.length > MAX_ID_LENGTH) {
    throw new KefuError("wrong_type", `${what} is ${v.length} characters long: ids are at most ${MAX_ID_LENGTH}`);
  }
  return v;
}

/** Decode one WeChat XML message into a `Message` (direction `in`); throws `KefuError` on bad input. */
export function decodeXml(text: string): Message {
  refuseDeclarations(text);
  const x = parseFully(text);
  const contact = bounded("<FromUserName>", required(x, "FromUserName", "the WeChat user who sent the message"));
  const type = required(x, "MsgType", "the message type (text, image, voice, video, …)");
  const created = field(x, "CreateTime");
  const msgId = bounded("<MsgId>", field(x, "MsgId")?.trim() ?? "");
  const picUrl = field(x, "PicUrl")?.trim() ?? "";
  const mediaId = field(x, "MediaId")?.trim() ?? "";

  let extra: Record<string, string> | undefined;
  for (const key in x) {
    if (MAPPED.has(key) || key === "#text") continue;
    const v = x[key];
    if (typeof v !== "string") continue;
    (extra ??= {})[key] = v;
  }

  // Each type's text: what an agent reads first (voice: WeChat's speech recognition).
  let content = field(x, "Content") ?? "";
  let id = msgId;
  if (type === "event") {
    content = eventText(extra ?? {}, contact);
    id ||= bounded("the event's id (from <MsgID>, or <CreateTime> and <Event>)", eventId(extra ?? {}, created ?? ""));
  } else if (content === "") {
    content = extra?.Recognition ?? extra?.Label ?? extra?.Title ?? "";
  }

  const to = bounded("<ToUserName>", field(x, "ToUserName")?.trim() ?? "");
  const m: Message = {
    id: id || newMessageId(),
    direction: "in",
    // The channel that decoded it says which it is.
    channel: "",
    contact,
    agent: "",
    company: "",
    type,
    content,
    media: picUrl || mediaId,
    sendTime: created === undefined || created.trim() === "" ? nowSeconds() : parseSendTime(created),
    name: contact,
    avatar: "",
    extra,
  };
  // ToUserName: the Official Account's original id from WeChat, the agent in the seed's push.
  if (to !== "") m.to = to;
  return m;
}

const MEDIA_ELEMENT: Record<string, string> = { image: "Image", voice: "Voice", video: "Video" };

/**
 * Encode a user's message (direction `in`) as WeChat sends it: the round trip of {@link decodeXml}, `ToUserName`
 * from `to`.
 */
export function encodeXml(m: Message): string {
  let body = head(m.to ?? "", m.contact, m);
  if (m.type === "text" || (m.content !== "" && !derived(m))) {
    body += `<Content>${cdata(m.content)}</Content>`;
  }
  if (m.media !== "" && m.media !== m.extra?.MediaId) {
    body += m.type === "image" ? `<PicUrl>${cdata(m.media)}</PicUrl>` : `<MediaId>${cdata(m.media)}</MediaId>`;
  }
  if (m.extra) {
    for (const key in m.extra) body += `<${key}>${cdata(m.extra[key])}</${key}>`;
  }
  return m.type === "event" ? `${body}</xml>` : `${body}<MsgId>${m.id}</MsgId></xml>`;
}

/**
 * Encode a reply as WeChat's passive-reply XML: to the user `m.contact`, from the account `from` (its original
 * id), media under `<Image|Voice|Video><MediaId>`.
 */
export function encodeReplyXml(m: Message, from: string): string {
  const el = MEDIA_ELEMENT[m.type];
  const body = el ? `<${el}><MediaId>${cdata(m.media)}</MediaId></${el}>` : `<Content>${cdata(m.content)}</Content>`;
  return `${head(m.contact, from, m)}${body}</xml>`;
}

function head(to: string, from: string, m: Message): string {
  return `<xml><ToUserName>${cdata(to)}</ToUserName><FromUserName>${cdata(from)}</FromUserName>` +
    `<CreateTime>${m.sendTime}</CreateTime><MsgType>${cdata(m.type)}</MsgType>`;
}

// Whether `content` was made by decodeXml from another field rather than read from <Content>.
function derived(m: Message): boolean {
  if (m.type === "event") return true;
  const e = m.extra;
  return e !== undefined && (m.content === e.Recognition || m.content === e.Label || m.content === e.Title);
}
