// The page's state in one object, and the contact model. Modules read and change it; rendering is theirs.

import { text } from "./dom.js";

export const MIN_BACKOFF_MS = 1000;

export const state = {
  /** "on": agents sign in; "off": anyone names an agent with ?userid=; "" until /healthz answers. */
  auth: "",
  /** The signed-in agent's token, display name and expiry (epoch seconds, this browser's clock); "" when signed out. */
  token: "",
  name: "",
  expireAt: 0,
  expiryTimer: 0,
  agent: "",
  socket: null,
  /** The user wants to be connected: false after Disconnect, which stops reconnecting. */
  wanted: false,
  backoff: MIN_BACKOFF_MS,
  reconnectTimer: 0,
  /** contact id → contact (see ensureContact). */
  contacts: new Map(),
  selected: "",
  /** After a reload: the conversation to open again once its contact is known ("" once settled). */
  wantSelected: "",
  /** When the last heartbeat (code 101) came on this socket; null until the first. */
  lastBeat: null,
  /** Replies sent and not yet confirmed, oldest first: the server answers each frame in order. */
  pending: [],
  /** contact id → ms of the last typing envelope sent. */
  typingSent: new Map(),
  /** The conversation is scrolled to its end: media that load later keep it there. */
  atBottom: true,
  /** The element focused before the image overlay opened, focused again when it closes. */
  lightboxOpener: null,
  /** The contact list's filter: "all", "unread", "waiting" (the user wrote last) or "resolved". */
  filter: "all",
  /** Users waiting for an agent (GET …/queue), as server contacts. */
  queue: [],
};

/** The contact `id`, created when new. */
export function ensureContact(id, name) {
  let c = state.contacts.get(id);
  if (!c) {
    c = {
      id,
      name: name || id,
      /** Set by an agent (PATCH …/contacts/{id}); shown instead of the name when not "". */
      displayName: "",
      note: "",
      /** "open" or "resolved". */
      status: "open",
      /** The owner as the server last said ("" unknown). */
      agentId: "",
      channel: undefined,
      account: "",
      lastTime: 0,
      /** The conversation, oldest first; only a window of its end is drawn. */
      messages: [],
      seen: new Set(),
      // Received and not yet shown: the unread count, and the ids acknowledged once the conversation is on screen.
      unreadIds: new Set(),
      toAck: new Set(),
      // The unread count of the contact list when the socket opened (messages kefu has not sent yet count too).
      serverUnread: 0,
      // The reply typed for this contact and not sent (kept in this tab's sessionStorage: a reload brings it back).
      draft: loadDraft(id),
      // "", "loading", "more" or "done": how much of the store's history is on the page.
      history: "",
      /** The last message as the server summarised it (`last_message`), until the page has messages of its own. */
      preview: null,
      /** WeChat's reply window as the server said it (null: this channel has none; undefined: not told). */
      replyWindow: undefined,
    };
    state.contacts.set(id, c);
  } else if (name && name !== id) {
    c.name = name;
  }
  return c;
}

export function unreadOf(c) {
  return Math.max(c.unreadIds.size, c.serverUnread);
}

/** The name an agent sees: the one agents gave, else WeChat's, else the id. */
export function displayName(c) {
  return c.displayName || c.name || c.id;
}

/** The contact's last message, from the page or the server's summary. */
export function lastMessageOf(c) {
  return c.messages.at(-1) ?? c.preview ?? null;
}

/** Copy what the server says of a contact (GET …/contacts, a 106 event) into the page's contact. */
export function applyServerContact(c, s) {
  if (s.name !== undefined && text(s.name) !== "") c.name = text(s.name);
  if (s.display_name !== undefined) c.displayName = text(s.display_name);
  if (s.note !== undefined) c.note = text(s.note);
  if (s.status !== undefined) c.status = text(s.status) || "open";
  if (s.agent_id !== undefined) c.agentId = text(s.agent_id);
  if (s.channel !== undefined) c.channel = text(s.channel);
  if (s.account_id !== undefined) c.account = text(s.account_id);
  if (s.reply_window !== undefined) {
    c.replyWindow = s.reply_window === null ? null : { ...s.reply_window };
    c.windowAt = Date.now();
  }
  c.lastTime = Math.max(c.lastTime, Number(s.last_message_time) || 0);
  return c;
}

// The open conversation ("agent\ncontact"), opened again after a reload.
export const SELECTED_KEY = "kefu.selected";

/** The conversation this tab had open for `agent` opens again once its contact is known. */
export function keepSelection(agent) {
  const [who, contact] = (sessionStorage.getItem(SELECTED_KEY) ?? "").split("\n");
  state.wantSelected = who === agent && contact ? contact : "";
}

// Unsent replies, one key per agent and contact ("kefu.draft\nagent\ncontact"), for this tab: a reload keeps them,
// sending (or the contact leaving this agent) clears them.
const DRAFT_KEY = "kefu.draft";

function draftKey(id) {
  return `${DRAFT_KEY}\n${state.agent}\n${id}`;
}

function loadDraft(id) {
  try {
    return sessionStorage.getItem(draftKey(id)) ?? "";
  } catch {
    return "";
  }
}

/** The reply typed for `c`, kept (or forgotten when ""). */
export function saveDraft(c, value) {
  c.draft = value;
  try {
    if (value === "") sessionStorage.removeItem(draftKey(c.id));
    else sessionStorage.setItem(draftKey(c.id), value);
  } catch {
    // Storage full or refused: the draft lives on in memory until the reload.
  }
}
