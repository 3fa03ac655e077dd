// What comes on the socket: heartbeats, users' messages and events, confirmations of replies, errors, and the
// live contact events (code 106) of the workflow. Read receipts go back for what is on screen.

import { Code, SYSTEM_CONTACT, TYPE_OF_CODE } from "./protocol.js";
import { ensureContact, state } from "./state.js";
import { $, el, newId, parseCode, text, toast } from "./dom.js";
import { t } from "./i18n.js";
import { formatTime, nowSeconds } from "./time.js";
import { isOpen, renderHeartbeat, sendFrame } from "./socket.js";
import { contactChanged, learnChannel, pageVisible, select } from "./contacts.js";
import { appendMessage, messageChanged, renderConversation } from "./conversation.js";
import { attend } from "./attention.js";
import { windowOnInbound, windowOnSent } from "./reply_window.js";
import { applyContactEvent } from "./workflow.js";
import { applyAgentEvent } from "./availability.js";
import { failureKey } from "./failure.js";
import { addNote, applyWatchEvent, teamChanged } from "./team.js";

const MAX_SYSTEM_LINES = 50;

// What kefu's media work adds beside media_path: shown with the file, not as fields of their own.
const MEDIA_FIELDS = new Set(["content", "media_path", "media_type", "media_error", "media_size", "media_original"]);
// What a location says: shown as one line, not as fields.
const LOCATION_FIELDS = new Set(["latitude", "longitude", "scale", "label"]);

// A global on purpose (main.js puts it on window): the browser tests feed it frames the server cannot be made to
// send on demand.
export function handleFrame(raw) {
  let env;
  try {
    env = JSON.parse(raw);
  } catch {
    addSystem(t("system.notJson", { raw }), nowSeconds());
    return;
  }
  const data = env && typeof env.data === "object" && env.data !== null ? env.data : {};
  const code = parseCode(env?.result?.code);
  if (code === Code.heartbeat) {
    state.lastBeat = new Date();
    renderHeartbeat();
  } else if (code === Code.contact) {
    applyContactEvent(data);
  } else if (code === Code.agent) {
    applyAgentEvent(data);
    teamChanged();
  } else if (code === Code.note) {
    addNote(data);
  } else if (code === Code.watch) {
    applyWatchEvent(data);
  } else if (code === Code.outbound) {
    addOutbound(data);
  } else if (code === Code.system || data.contact_id === SYSTEM_CONTACT) {
    addSystemFrame(data, code);
  } else if (code === Code.sent) {
    confirmReply(text(data.id), Number(data.send_time), text(data.status) || "sent");
  } else if (code === Code.typing) {
    // "skipped" is normal (WeChat allows typing only right after an exchange): nothing to tell the agent.
  } else if (code === Code.error) {
    replyFailed(text(data.detail) || text(data.error) || "unknown error", text(data.error), text(data.id), data);
  } else if (text(data.contact_id) !== "") {
    addIncoming(data, code);
  } else {
    addSystem(t("system.unrecognised", { raw }), nowSeconds());
  }
}

// A WeChat event (follow, menu click, scan, …) names its user in msg.from_id: it is that user's, in their
// conversation as the history has it, counted and acknowledged like their messages. Anything else is listed under
// System and acknowledged by its id (seed 003's receipt, which names no contact).
function addSystemFrame(data, code) {
  const user = text(data.msg?.from_id);
  if (user !== "") {
    addIncoming({ ...data, contact_id: user, name: "" }, code, true);
    return;
  }
  addSystem(text(data.msg?.content) || JSON.stringify(data), Number(data.send_time));
  const id = text(data.id);
  if (id !== "") sendFrame({ event: 3, data: { msg_id: id } });
}

export function addSystem(content, seconds) {
  const list = $("system");
  const li = el("li");
  li.append(el("time", "", formatTime(seconds || nowSeconds())), el("span", "", ` ${content}`));
  list.append(li);
  while (list.children.length > MAX_SYSTEM_LINES) list.firstElementChild.remove();
}

// A message's msg object: its text, its file (kefu's URL, its type, or why there is none) and any other fields.
export function bodyOf(raw, type) {
  const msg = raw && typeof raw === "object" ? raw : {};
  const body = {
    content: text(msg.content),
    media: text(msg.media_path),
    mediaType: text(msg.media_type),
    mediaError: text(msg.media_error),
    // Types beyond the seed's (link, mini program, …) carry more fields in msg: show them as they come.
    extra: Object.entries(msg)
      .filter(([k, v]) => !MEDIA_FIELDS.has(k) && v !== "" && v !== null && v !== undefined)
      .filter(([k]) => type !== "location" || !LOCATION_FIELDS.has(k))
      .map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)]),
  };
  if (type === "location") {
    body.location = {
      label: text(msg.label) || body.content,
      latitude: text(msg.latitude),
      longitude: text(msg.longitude),
    };
  }
  return body;
}

// A message as kefu sent it (a frame) or keeps it (a history item); `event`: a WeChat event of the user.
function messageOf(data, code, event) {
  const type = event ? "event" : text(data.msg_type) || TYPE_OF_CODE[code] || `code ${code}`;
  const body = bodyOf(data.msg, type);
  if (event) {
    // The page words the line from what happened (the server's line is Chinese and names the openid).
    body.extra = [];
    body.wxEvent = text(data.msg?.event);
    body.eventKey = text(data.msg?.event_key);
  }
  return { id: text(data.id), direction: "in", code, type, event, ...body, time: Number(data.send_time) || 0 };
}

// A history item: the envelope's data as the agent got (or sent) it, with direction, state and detail. Workflow
// lines (transfer, resolve, reopen) are `direction: "system"` with what happened in `event`.
export function storedMessage(d) {
  // An internal note (内部备注, issue 22): the team's, never the user's; `author` wrote it.
  if (d.direction === "note") {
    return {
      id: text(d.id),
      direction: "note",
      type: "note",
      author: text(d.agent_id),
      content: text(d.msg?.content),
      media: "",
      time: Number(d.send_time) || 0,
    };
  }
  if (d.direction === "system") {
    return {
      id: text(d.id),
      direction: "system",
      type: "system",
      workflow: d.event && typeof d.event === "object" ? d.event : null,
      content: text(d.msg?.content),
      media: "",
      time: Number(d.send_time) || 0,
    };
  }
  const event = d.contact_id === SYSTEM_CONTACT || d.msg_type === "system";
  const m = messageOf(d, parseCode(d.code), event);
  // A user's file kefu is still fetching or converting: it comes live, under this id, once it is ready.
  if (d.direction !== "out" && text(d.state) === "media") m.preparing = true;
  if (d.direction === "out") {
    m.direction = "out";
    // Only a failed reply has a reason to show; a sent one's detail says how it went ("sent", "passive").
    const stored = text(d.state);
    m.status = stored === "queued" ? "pending" : stored === "sent" && d.detail === "passive" ? "passive" : stored;
    m.detail = stored === "failed" ? text(d.detail) : "";
    // Why, as the agent reads it: the error's kind when the history keeps it, else the generic sentence.
    if (stored === "failed") m.failure = failureKey(text(d.error), d);
    // kefu's own message (welcome, closed reply, please-wait…), not an agent's: labelled apart.
    if (d.automatic) m.automatic = text(d.automatic);
  }
  return m;
}

/**
 * A contact's `last_message` as GET …/contacts summarises it (`{id, msg_type, content, direction, send_time}`,
 * content cut at 120 characters, "" for media): enough for the list's preview line.
 */
export function summaryMessage(s) {
  const type = text(s.msg_type);
  const direction = text(s.direction) || "in";
  return {
    id: text(s.id),
    direction,
    type,
    // A WeChat event is a line of its own kind; a workflow line is direction "system".
    event: direction !== "system" && (type === "event" || type === "system"),
    // A workflow line carries what happened (`event`), for the page to word in its language.
    workflow: s.event && typeof s.event === "object" ? s.event : null,
    content: text(s.content),
    media: "",
    time: Number(s.send_time) || 0,
    // A reply's state ("queued", "sent", "failed"), when the server says it: the list marks a failed last reply.
    status: direction === "out" && Object.hasOwn(OUT_STATUS, text(s.state)) ? OUT_STATUS[text(s.state)] : "",
    // kefu's own line (welcome, closed reply…): previewed as 自动回复, not as the agent's.
    automatic: direction === "out" ? text(s.automatic) : "",
  };
}

// A stored reply's state as the page names it.
const OUT_STATUS = { queued: "pending", sent: "sent", failed: "failed" };

function addIncoming(data, code, event = false) {
  const isNew = !state.contacts.has(text(data.contact_id));
  const c = ensureContact(text(data.contact_id), text(data.name));
  learnChannel(c);
  const id = text(data.id);
  // A file the agent asked kefu to try again comes back under the same id: it takes the failed one's place.
  const retried = id !== "" && c.retrying?.delete(id)
    ? c.messages.find((m) => m.id === id && m.direction === "in")
    : undefined;
  // A file still being fetched when the history was read (shown as 正在获取文件…) comes live once it is ready.
  const fetched = !retried && id !== "" && c.seen.has(id)
    ? c.messages.find((m) => m.id === id && m.direction === "in" && m.preparing)
    : undefined;
  if (fetched) {
    Object.assign(fetched, bodyOf(data.msg, fetched.type), { preparing: false });
    fetched.mediaNode = undefined;
    c.toAck.add(id);
    messageChanged(c, fetched);
    if (!c.unreadIds.has(id) && (state.selected !== c.id || pageVisible())) acknowledge(c, [id]);
    return;
  }
  if (retried) {
    Object.assign(retried, bodyOf(data.msg, retried.type));
    retried.mediaNode = undefined;
    c.toAck.add(id);
    messageChanged(c, retried);
    return;
  }
  // The server sends unacknowledged messages again after a reconnect: acknowledge, do not show twice.
  if (id !== "" && c.seen.has(id)) {
    c.toAck.add(id);
    // Not waiting to be read (shown already, or in the history on screen): its receipt was lost on the way.
    if (!c.unreadIds.has(id) && (state.selected !== c.id || pageVisible())) acknowledge(c, [id]);
    return;
  }
  if (id !== "") c.seen.add(id);
  const m = messageOf(data, code, event);
  m.time ||= nowSeconds();
  c.messages.push(m);
  c.lastTime = Math.max(c.lastTime, m.time);
  // A user who writes again reopens a resolved conversation (the server says so too, with a 106 "reopened").
  if (!event && c.status === "resolved") c.status = "open";
  windowOnInbound(c, m);
  if (id !== "") c.toAck.add(id);
  // Reads are the agent's: a message never opens a conversation by itself (after a reload, the one this tab had open
  // opens again once known), and one that comes while the tab is hidden stays unread until the agent looks.
  if (state.selected === "" && state.wantSelected === c.id) select(c.id, false);
  if (state.selected !== c.id || !pageVisible()) c.unreadIds.add(id !== "" ? id : newId());
  contactChanged(c);
  if (state.selected === c.id) appendMessage(c, m);
  attend(c, m, isNew);
}

// kefu's own message to one of this agent's contacts (a welcome, a closed reply, a closing message), live: drawn
// as the history draws it, once (the history, loaded before or after, has the same id).
function addOutbound(data) {
  const c = state.contacts.get(text(data.contact_id));
  const id = text(data.id);
  if (!c || id === "" || c.seen.has(id)) return;
  c.seen.add(id);
  const m = storedMessage(data);
  m.time ||= nowSeconds();
  c.messages.push(m);
  c.lastTime = Math.max(c.lastTime, m.time);
  if (m.status === "sent") windowOnSent(c, "sent");
  contactChanged(c);
  if (state.selected === c.id) appendMessage(c, m);
}

// Read receipts for what is on screen: kefu sends unacknowledged messages again after a reconnect. A hidden tab's
// conversation is on no one's screen: its receipts wait until the agent comes back (markRead).
export function acknowledgeShown(c) {
  if (c.toAck.size === 0 || !pageVisible()) return;
  const ids = [...c.toAck];
  if (acknowledge(c, ids)) c.toAck.clear();
}

function acknowledge(c, ids) {
  if (!isOpen()) return false;
  // At most 1000 ids a receipt.
  for (let i = 0; i < ids.length; i += 1000) {
    sendFrame({
      data: { msg_type: "ack", contact_id: c.id, ids: ids.slice(i, i + 1000) },
      result: { code: Code.ack, message: "ack" },
    });
  }
  for (const id of ids) c.toAck.delete(id);
  return true;
}

function confirmReply(id, seconds, status) {
  const i = state.pending.findIndex((p) => p.msg.id === id);
  if (i < 0) return;
  const [p] = state.pending.splice(i, 1);
  p.msg.status = status;
  p.msg.detail = "";
  const c = state.contacts.get(p.contact);
  if (Number.isFinite(seconds) && seconds > 0) {
    // kefu's time, as its contact list and history will say it.
    if (c && c.lastTime === p.msg.time) c.lastTime = Math.max(p.lastTimeBefore, seconds);
    p.msg.time = seconds;
  }
  if (!c) return;
  windowOnSent(c, status);
  contactChanged(c);
  messageChanged(c, p.msg);
}

// An error envelope that names a reply (data.id) fails it: said in the agent's words (what happened, what to do),
// the server's detail in the tooltip only. Typing, receipts and bad frames name none: a short line, detail likewise.
function replyFailed(detail, kind, id, data) {
  const i = id === "" ? -1 : state.pending.findIndex((p) => p.msg.id === id);
  const why = kind ? `${kind}: ${detail}` : detail;
  if (i < 0) {
    toast(t("server.failed"), "error", why);
    return;
  }
  const [p] = state.pending.splice(i, 1);
  p.msg.status = "failed";
  p.msg.detail = why;
  p.msg.failure = failureKey(kind, data);
  toast(t(p.msg.failure), "error", why);
  const c = state.contacts.get(p.contact);
  if (!c) return;
  // The list marks a contact whose last reply failed.
  contactChanged(c);
  messageChanged(c, p.msg);
}

// The server may still send them (its answer comes to the next socket of this agent): not failed, unconfirmed.
export function failPending(detail) {
  for (const p of state.pending) {
    p.msg.status = "unconfirmed";
    p.msg.detail = detail;
  }
  if (state.pending.length > 0) renderConversation();
}
