/**
 * The agent protocol's constants in one place: URL paths, `result.code` table,
 * WebSocket close codes, and the fixed envelopes (heartbeat, system, error).
 *
 * @module
 */

import type { ErrorKind } from "../core/errors.ts";
import { nowSeconds } from "../core/message.ts";

/** URL prefix of the seed's customer-service component. */
export const BASE_PATH = "/im_component/wx_official_account";
/** Agent WebSocket path (the seed's test also connects on `/`). */
export const WS_PATH = `${BASE_PATH}/msg`;
/** JSON (or XML) push. */
export const SEND_PATH = `${BASE_PATH}/send`;
/** Simplified WeChat XML push. */
export const SEND_XML_PATH = `${BASE_PATH}/send_xml`;
/** An agent's contact list. */
export const CONTACTS_PATH = `${BASE_PATH}/contacts`;
/** A page of one conversation from the store. */
export const HISTORY_PATH = `${BASE_PATH}/history`;
/** Users waiting for an agent (GET). */
export const QUEUE_PATH = `${BASE_PATH}/queue`;
/** The agents a contact can be transferred to (GET). */
export const AGENTS_PATH = `${BASE_PATH}/agents`;
/** Search an agent's contacts and messages (GET `?q=`). */
export const SEARCH_PATH = `${BASE_PATH}/search`;
/** Files an agent uploads to send (POST), and where each is served (GET `…/media/{id}`). */
export const UPLOAD_PATH = `${BASE_PATH}/media`;
/** The supervisor's view (issue 22): every agent's state and the queue; `…/team/contacts` every conversation. */
export const TEAM_PATH = `${BASE_PATH}/team`;
/** The seed's test alias: XML or JSON, told apart by content. */
export const TEST_SEND_PATH = "/send";

/** `contact_id` of system envelopes, as the seed fixes it. */
export const SYSTEM_CONTACT = "system01";

/**
 * `result.code` values. 101, 102, 1001–1004 and -1 are the seed's; 103, 104 and 1000
 * are kefu's additions. 0 is the code of a successful HTTP answer.
 */
export const Code = {
  ok: 0,
  heartbeat: 101,
  system: 102,
  /** kefu: an agent's reply went out (data.id is the reply's id, data.status how). */
  sent: 103,
  /** kefu: the answer to an agent's typing envelope. */
  typing: 104,
  /** kefu: an agent's read receipt (`msg_type` "ack"); not answered when it succeeds. */
  ack: 105,
  /** kefu: a contact changed hands or state (transferred, resolved, reopened, taken, queued, updated). */
  contact: 106,
  /** kefu: an agent's availability changed (在线 / 忙碌 / 离开), with its open conversations and capacity. */
  agent: 107,
  /** kefu: an internal note (内部备注) in a conversation, for the team only: `data` is its history item (issue 22). */
  note: 108,
  /** kefu: what happened in any agent's conversation, for supervisors watching the team (issue 22). */
  watch: 109,
  /**
   * kefu: a message that went to a contact without its agent sending it — kefu's automatic one (issue 22) — as the
   * history has it (`direction`, `state`, `automatic`).
   */
  outbound: 110,
  /** kefu: a message type the seed has no code for; `msg_type` keeps the source's type. */
  other: 1000,
  text: 1001,
  image: 1002,
  voice: 1003,
  /** Also `shortvideo` (msg_type keeps which). */
  video: 1004,
  /** kefu: a location the user shared. */
  location: 1005,
  /** kefu: a link the user shared. */
  link: 1006,
  /** kefu: a mini-program card. */
  miniprogram: 1007,
  error: -1,
} as const;

const TYPE_CODE: Record<string, number> = {
  text: Code.text,
  image: Code.image,
  voice: Code.voice,
  video: Code.video,
  shortvideo: Code.video,
  location: Code.location,
  link: Code.link,
  miniprogrampage: Code.miniprogram,
  event: Code.system,
};

const CODE_TYPE: Record<number, string> = {
  [Code.text]: "text",
  [Code.image]: "image",
  [Code.voice]: "voice",
  [Code.video]: "video",
};

/** The `result.code` for a message type: 1001–1007, 102 for events, or 1000 for any other type. */
export function codeForType(type: string): number {
  // Own keys only: a MsgType of "constructor" or "toString" must not reach Object.prototype.
  return Object.hasOwn(TYPE_CODE, type) ? TYPE_CODE[type] : Code.other;
}

/** The message type a code stands for, if it names one of the four seed types. */
export function typeForCode(code: number): string | undefined {
  return Object.hasOwn(CODE_TYPE, code) ? CODE_TYPE[code] : undefined;
}

/** WebSocket close codes kefu uses. */
export const Close = {
  normal: 1000,
  /** Server shutting down (SIGINT/SIGTERM). */
  goingAway: 1001,
  /** A binary frame: the protocol is JSON text. */
  unsupportedData: 1003,
  /** A frame over MAX_WS_MESSAGE_BYTES. */
  tooBig: 1009,
  /** kefu: the agent opened more than MAX_SOCKETS_PER_AGENT sockets; the oldest is closed. */
  replaced: 4000,
  /** kefu: the socket did not read: over MAX_BUFFERED_BYTES unsent. Its messages come again on reconnect. */
  tooSlow: 4001,
  /** kefu: this node is draining (SIGTERM among several nodes): reconnect at once, another node takes the socket. */
  reconnect: 4002,
  /** The server could not read the agent's unacknowledged messages (store failure). */
  internalError: 1011,
  /** kefu: sign-in is on and the socket had no valid token (the reason says how to get one). */
  unauthorized: 4401,
  /** kefu: the token is for another agent than the `?userid=` given. */
  forbidden: 4403,
} as const;

/** The heartbeat envelope, exactly as the seed writes it (§1.3); sent as one shared string. */
export const HEARTBEAT = JSON.stringify({ data: {}, result: { code: Code.heartbeat, message: "heartbeat" } });

/**
 * An error envelope (§1.4) as an object: `result` as the seed has it, `data` says what was wrong. Agents get it
 * on their socket ({@link errorEnvelope}); HTTP error answers are the same body.
 */
export function errorObject(kind: ErrorKind, detail: string, extra?: Record<string, unknown>): unknown {
  return { data: { error: kind, detail, ...extra }, result: { code: Code.error, message: "error" } };
}

/** The error envelope as text, for a socket. */
export function errorEnvelope(kind: ErrorKind, detail: string, extra?: Record<string, unknown>): string {
  return JSON.stringify(errorObject(kind, detail, extra));
}

/** A system envelope (§1.1) carrying a readable text in `msg.content`. */
export function systemEnvelope(content: string, company = "", id = ""): string {
  return JSON.stringify({
    data: {
      id,
      name: "系统消息",
      avatar: "",
      msg_type: "system",
      contact_id: SYSTEM_CONTACT,
      company_id: company,
      send_time: nowSeconds(),
      msg: { content },
    },
    result: { code: Code.system, message: "common" },
  });
}

/** A message sent to a contact not by its agent (code 110): `data` is the history's item for it. */
export function outboundEnvelope(data: Record<string, unknown>): string {
  return JSON.stringify({ data, result: { code: Code.outbound, message: "outbound" } });
}

/** A contact event (code 106): what happened to a contact, and the contact as it is now. */
export function contactEnvelope(data: Record<string, unknown>): string {
  return JSON.stringify({ data, result: { code: Code.contact, message: "contact" } });
}

/** An availability event (code 107): `{agent_id, availability, since, open, capacity}`. */
export function agentEnvelope(data: object): string {
  return JSON.stringify({ data, result: { code: Code.agent, message: "agent" } });
}

/** The confirmation of an agent's reply (code 103); `status` says how it went out. */
export function sentEnvelope(id: string, contact: string, sendTime: number, status = "sent"): string {
  return JSON.stringify({
    data: { id, contact_id: contact, send_time: sendTime, status },
    result: { code: Code.sent, message: "sent" },
  });
}

/** The answer to an agent's typing envelope (code 104). */
export function typingEnvelope(contact: string, status: string, detail?: string): string {
  return JSON.stringify({
    data: detail === undefined ? { contact_id: contact, status } : { contact_id: contact, status, detail },
    result: { code: Code.typing, message: "typing" },
  });
}
