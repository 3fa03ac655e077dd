// The page's state in one object, and the contact model. Modules read and change it; rendering is theirs.

import { text } from "./dom.js";
import { contactLabel } from "./labels.js";

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
  /** The contact list's filter: "all", "unread", "waiting" (待回复: see awaitingOf) or "resolved". */
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
      /** 待回复 as the server said it: `{value, id, time}` of its `last_message` (see awaitingOf); undefined: not told. */
      awaiting: undefined,
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

/** The name an agent sees: the one agents gave, else WeChat's, else a short label (用户·a1b2), else the id. */
export function displayName(c) {
  return contactLabel(c);
}

/**
 * The message a contact's row previews: the newest the customer or the agent wrote (a workflow line such as
 * "你接入了会话" never; a WeChat event only when there is nothing else), from the page or the server's summary.
 */
export function lastMessageOf(c) {
  let event = null;
  for (let i = c.messages.length - 1; i >= 0; i--) {
    const m = c.messages[i];
    // Workflow lines and internal notes (issue 22) are not what the user and the agent said.
    if (m.direction === "system" || m.direction === "note") continue;
    if (!m.event) return m;
    event ??= m;
  }
  const p = c.preview;
  if (p && p.direction !== "system" && (!p.event || event === null)) return p;
  return event;
}

/**
 * The contact's last reply failed (and was not sent again since): the newest reply on the page, else the server's
 * summary of the last message when it is a reply and says its state.
 */
export function lastReplyFailed(c) {
  for (let i = c.messages.length - 1; i >= 0; i--) {
    const m = c.messages[i];
    if (m.direction === "out") return m.status === "failed";
  }
  return c.preview?.direction === "out" && c.preview.status === "failed";
}

/** The newest message of the exchange on the page: a user's (not a WeChat event) or a reply that went out. */
function lastExchanged(c) {
  for (let i = c.messages.length - 1; i >= 0; i--) {
    const m = c.messages[i];
    if (m.direction === "in" && !m.event) return m;
    if (m.direction === "out" && (m.status === "sent" || m.status === "passive")) return m;
  }
  return null;
}

/**
 * 待回复: the user's last message (not a WeChat event) came after the agent's last reply, and the conversation is
 * not resolved. The server says it (`awaiting_reply`, as of its `last_message`); what the page saw since (a user
 * who wrote again, a reply that went out) is newer and decides.
 */
export function awaitingOf(c) {
  if (c.status === "resolved") return false;
  const last = lastExchanged(c);
  const told = c.awaiting;
  if (told !== undefined) {
    const stale = last !== null && last.id !== told.id &&
      (last.time > told.time || (last.time === told.time && c.seen.has(told.id)));
    if (!stale) return told.value;
  }
  if (last !== null) return last.direction === "in";
  // A server that does not say it: its summary of the last message.
  const p = c.preview;
  return p !== null && p.direction === "in" && !p.event;
}

/** Per window, the later `*_until` wins; on the same until, the fewer replies left (one was spent meanwhile). */
export function mergeWindow(mine, told) {
  if (told === null) return null;
  if (!mine) return { ...told };
  const w = { ...told };
  for (const k of ["message", "event"]) {
    const [until, left] = [`${k}_until`, `${k}_left`];
    const a = Number(mine[until]) || 0;
    const b = Number(told[until]) || 0;
    if (a > b) [w[until], w[left]] = [a, mine[left]];
    else if (a === b) w[left] = Math.min(Number(mine[left]) || 0, Number(told[left]) || 0);
  }
  return w;
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
  if (Array.isArray(s.tags)) c.tags = s.tags.map(text);
  if (s.reply_window !== undefined) {
    // A view may be older than what the page saw (a 106 "reopened" computed before the user's message was kept).
    c.replyWindow = mergeWindow(c.replyWindow, s.reply_window);
  }
  if (typeof s.awaiting_reply === "boolean") {
    const m = s.last_message;
    c.awaiting = { value: s.awaiting_reply, id: text(m?.id), time: Number(m?.send_time) || 0 };
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
