// The agent protocol's constants, as the server has them (src/envelope/protocol.ts and
// src/channels/wx_official/reply_window.ts). tests/static/protocol_test.ts asserts they are equal, so a change on
// one side that the other misses fails a test instead of a customer-service agent.

export const BASE_PATH = "/im_component/wx_official_account";
/** The agent WebSocket. */
export const WS_PATH = `${BASE_PATH}/msg`;
/** An agent's contact list; `${CONTACTS_PATH}/{contact_id}` one contact (and its actions below it). */
export const CONTACTS_PATH = `${BASE_PATH}/contacts`;
/** A page of one conversation from the store. */
export const HISTORY_PATH = `${BASE_PATH}/history`;
/** Files an agent uploads to send (POST), and where each is served (GET `…/media/{id}`). */
export const UPLOAD_PATH = `${BASE_PATH}/media`;
/** The seed's push alias (XML or JSON), used by the page's "simulate a user" panel. */
export const TEST_SEND_PATH = "/send";
/** Users' images, voice notes and videos as kefu keeps them. */
export const MEDIA_PATH = "/media";
export const HEALTH_PATH = "/healthz";
export const LOGIN_PATH = "/auth/login";
export const ME_PATH = "/auth/me";

/** `contact_id` of system envelopes. */
export const SYSTEM_CONTACT = "system01";

/** `result.code` values. */
export const Code = {
  ok: 0,
  heartbeat: 101,
  system: 102,
  sent: 103,
  typing: 104,
  ack: 105,
  /** A contact changed hands or state (transferred, resolved, reopened, taken, queued, updated). */
  contact: 106,
  /** An agent's availability changed (在线 / 忙碌 / 离开), with its open conversations and capacity (issue 22). */
  agent: 107,
  /** An internal note (内部备注) in a conversation, for the team only (issue 22). */
  note: 108,
  /** What happened in any agent's conversation, for supervisors watching the team (issue 22). */
  watch: 109,
  /** A message kefu sent to a contact by itself (welcome, closed reply, please-wait, closing), as the history has it. */
  outbound: 110,
  other: 1000,
  text: 1001,
  image: 1002,
  voice: 1003,
  video: 1004,
  location: 1005,
  link: 1006,
  miniprogram: 1007,
  error: -1,
};

/** The four seed message types by code (what a frame without msg_type is). */
export const TYPE_OF_CODE = { 1001: "text", 1002: "image", 1003: "voice", 1004: "video" };
/** The code of each type an agent sends. */
export const CODE_OF_TYPE = { text: Code.text, image: Code.image, voice: Code.voice, video: Code.video };

/** WebSocket close codes kefu uses. */
export const Close = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  tooBig: 1009,
  replaced: 4000,
  tooSlow: 4001,
  reconnect: 4002,
  internalError: 1011,
  unauthorized: 4401,
  forbidden: 4403,
};

const HOUR = 3_600_000;
/** WeChat's reply rule after a user's message: 5 replies within 48 hours. */
export const MESSAGE_WINDOW = { ms: 48 * HOUR, quota: 5 };
/** WeChat's reply rule after a follow, a menu click or a QR scan: 3 replies within a minute. */
export const EVENT_WINDOW = { ms: 60_000, quota: 3 };
/** WeChat events that open the 1-minute window (menu events that push to the server count as clicks). */
export const WINDOW_EVENTS = ["subscribe", "SCAN", "CLICK", "scancode_push", "scancode_waitmsg"];

// The workflow endpoints (issue 14): users waiting for an agent, agents to transfer to, search.
export const QUEUE_PATH = `${BASE_PATH}/queue`;
export const AGENTS_PATH = `${BASE_PATH}/agents`;
export const SEARCH_PATH = `${BASE_PATH}/search`;
// The supervisor's view (issue 22): every agent's state and the queue; `${TEAM_PATH}/contacts` every conversation.
export const TEAM_PATH = `${BASE_PATH}/team`;
