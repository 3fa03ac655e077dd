/**
 * The seed 003 dialect: `{"event":N,"data":{…}}` frames, as the seed's
 * notification service writes them. Spoken on the seed's own URL
 * (`ws://host?token=…`: the root path with a token and no `?userid=`), on
 * `/notify`, and wherever `?dialect=seed003` asks for it.
 *
 * Server → client: `0` an error `{"code","error"}` (2000 unknown, 2001 data
 * cannot be parsed, 2002 no such event); `1` a new message
 * `{"msg":{"_id","title","content","create_time"}}` with kefu's `contact_id`,
 * `msg_type`, `media_path`, `send_time` beside the seed's fields; `2` the
 * unread list on connect `{"msg_list":[…]}`, oldest first, a page per frame;
 * `5` (kefu's) a reply went out `{"id","contact_id","status","send_time"}`.
 * Client → server: `3` read report `{"msg_id"}` (the seed's own example of it
 * says `"event": 2`, so that is read as a read report too); `4` (kefu's) a
 * reply `{"contact_id","content"}` or `{"contact_id","msg_type","media_path"}`
 * with an optional `id`. The text `ping` keeps the socket alive (no answer).
 *
 * @module
 */

import { KefuError, quote } from "../../core/errors.ts";
import { isMediaType, MAX_ID_LENGTH, type Message, newMessageId, nowSeconds } from "../../core/message.ts";
import type { AgentEvent } from "../../hub/events.ts";
import type { AgentCommand, AgentDialect } from "../dialect.ts";

/** The seed's event numbers, and kefu's two additions (4, 5). */
export const Event = { error: 0, message: 1, unread: 2, read: 3, reply: 4, replyStatus: 5 } as const;

/** The seed's error codes (event 0). */
export const ErrorCode = { unknown: 2000, unparsable: 2001, noSuchEvent: 2002 } as const;

/** The seed 003 path besides `/`. */
export const NOTIFY_PATH = "/notify";

const pad = (n: number) => String(n).padStart(2, "0");

/** `YYYY-MM-DD HH:MM:SS` in Beijing time (UTC+08:00), the form of the seed's `create_time`. */
export function createTime(epochSeconds: number): string {
  const d = new Date((epochSeconds + 8 * 3600) * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

// The seed's four fields first, kefu's beside them.
function msgOf(m: Message): Record<string, unknown> {
  const event = m.type === "event";
  const msg: Record<string, unknown> = {
    _id: m.id,
    title: event ? "系统消息" : m.name || m.contact,
    content: m.content,
    create_time: createTime(m.sendTime),
    contact_id: event ? "system01" : m.contact,
    msg_type: event ? "system" : m.type,
    send_time: m.sendTime,
  };
  if (m.media !== "") msg.media_path = m.media;
  if (event) msg.from_id = m.contact;
  return msg;
}

function frame(event: number, data: unknown): string {
  return JSON.stringify({ event, data });
}

function encode(e: AgentEvent): string {
  switch (e.kind) {
    case "message":
      return frame(Event.message, { msg: msgOf(e.message) });
    case "reply_status":
      return frame(Event.replyStatus, { id: e.id, contact_id: e.contact, status: e.status, send_time: e.sendTime });
    case "error": {
      const code = e.error === "invalid_json"
        ? ErrorCode.unparsable
        : e.error === "unknown_event"
        ? ErrorCode.noSuchEvent
        : ErrorCode.unknown;
      return frame(Event.error, { code, error: e.detail, kind: e.error, ...e.data });
    }
    case "notice":
      return frame(Event.message, {
        msg: { _id: newMessageId(), title: "系统消息", content: e.content, create_time: createTime(nowSeconds()) },
      });
    // The seed has no frame for these: its sockets are kept alive by the protocol's own ping, and its agents'
    // clients know no conversation workflow (they see a transferred user's next message from its new owner).
    case "heartbeat":
    case "typing":
    case "contact":
    case "agent":
    case "note":
    case "reply":
    case "watch":
    case "outbound":
      return "";
  }
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function idOf(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : typeof v === "number" ? String(v) : undefined;
}

function decode(text: string, agent: string): AgentCommand {
  if (text.trim() === "ping") return { kind: "ping" };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new KefuError("invalid_json", `cannot parse JSON: ${(e as Error).message}`);
  }
  if (!isObject(value) || !isObject(value.data)) {
    throw new KefuError("invalid_json", 'expected {"event":N,"data":{…}}');
  }
  const data = value.data;
  switch (value.event) {
    // The seed's example of the read report says event 2: a client that follows it is understood.
    case Event.read:
    case Event.unread: {
      const id = idOf(data.msg_id);
      if (id === undefined || id.length > MAX_ID_LENGTH) {
        throw new KefuError("invalid_json", "a read report needs data.msg_id: the _id of the message read");
      }
      return { kind: "ack", refs: [{ contact: "", id }] };
    }
    case Event.reply:
      return { kind: "reply", message: reply(data, agent) };
    default:
      throw new KefuError(
        "unknown_event",
        `no such event ${typeof value.event === "number" ? value.event : quote(value.event)}: ` +
          "clients send 3 (read report) or 4 (reply)",
      );
  }
}

function reply(data: Obj, agent: string): Message {
  const id = idOf(data.id) ?? newMessageId();
  const contact = typeof data.contact_id === "string" ? data.contact_id.trim() : "";
  const type = typeof data.msg_type === "string" && data.msg_type !== "" ? data.msg_type : "text";
  const content = typeof data.content === "string" ? data.content : "";
  const media = typeof data.media_path === "string" ? data.media_path.trim() : "";
  const bad = (detail: string) => new KefuError("invalid_json", detail, 400, { id });
  if (contact === "" || contact.length > MAX_ID_LENGTH) {
    throw bad("a reply needs data.contact_id: the user to reply to");
  }
  if (type === "text" && content === "") throw bad("a text reply needs data.content");
  if (isMediaType(type) && media === "") throw bad(`a ${type} reply needs data.media_path`);
  return {
    id,
    direction: "out",
    channel: "",
    contact,
    agent,
    company: "",
    type,
    content,
    media,
    sendTime: nowSeconds(),
    name: contact,
    avatar: "",
  };
}

/** The seed 003 event dialect. */
export const seed003: AgentDialect = {
  name: "seed003",
  paths: [NOTIFY_PATH],
  // The seed's own URL: the root with a token and no agent id of the seed 004 kind.
  claims: (url) =>
    url.pathname === "/" && url.searchParams.has("token") && !url.searchParams.has("userid") &&
    !url.searchParams.has("userId"),
  // Event 3 is part of the protocol: what was not reported read comes again in the next connect's list.
  acks: true,
  encode,
  // Also when nothing is unread: the client learns so on connect, as the seed has it.
  backlog: (messages) => [frame(Event.unread, { msg_list: messages.map(msgOf) })],
  decode,
};
