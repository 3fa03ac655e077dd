// WeChat's reply windows as the server counts them (src/channels/wx_official/reply_window.ts), kept per contact
// from what the server said (`reply_window` of GET …/contacts and of the 106 events) and moved on live by the same
// rules: a user's message opens 48 hours / 5 replies, a follow, menu click or scan 1 minute / 3 replies; a sent
// reply spends the event window's quota first while it is open, else the message window's. The page can then
// say how long is left, and refuse a reply before WeChat would.

import { EVENT_WINDOW, MESSAGE_WINDOW, WINDOW_EVENTS } from "./protocol.js";
import { state } from "./state.js";
import { $ } from "./dom.js";
import { t } from "./i18n.js";
import { formatLeft } from "./time.js";

/**
 * What a window allows at `nowMs`: `{ open, parts: [{ kind, left, ms }], reason }`; `reason` is an i18n key saying
 * why it is closed. `w` is `{message_until, message_left, event_until, event_left}` (epoch seconds, 0 = never).
 */
export function windowState(w, nowMs = Date.now()) {
  const messageMs = w.message_until * 1000 - nowMs;
  const eventMs = w.event_until * 1000 - nowMs;
  const parts = [];
  if (eventMs > 0 && w.event_left > 0) parts.push({ kind: "event", left: w.event_left, ms: eventMs });
  if (messageMs > 0 && w.message_left > 0) parts.push({ kind: "message", left: w.message_left, ms: messageMs });
  if (parts.length > 0) return { open: true, parts, reason: "" };
  let reason = "window.expired";
  if (messageMs > 0) reason = "window.quotaMessage";
  else if (eventMs > 0) reason = "window.quotaEvent";
  else if (!w.message_until && !w.event_until) reason = "window.never";
  else if (!w.message_until) reason = "window.eventExpired";
  return { open: false, parts, reason };
}

/** Why a reply to `c` would be refused now ("" when it would not, or when the page cannot know). */
export function windowRefusal(c, nowMs = Date.now()) {
  if (!c?.replyWindow) return "";
  const s = contactWindow(c, nowMs);
  return s.open ? "" : t(s.reason);
}

/**
 * The window of a contact. The server forgets windows closed for good (a swept row reads as never opened): a user
 * the page knows has written is "more than 48 hours ago", not "never".
 */
function contactWindow(c, nowMs = Date.now()) {
  const s = windowState(c.replyWindow, nowMs);
  if (s.reason === "window.never" && userHasWritten(c)) s.reason = "window.expired";
  return s;
}

function userHasWritten(c) {
  const known = c.messages.length > 0 ? c.messages : c.preview ? [c.preview] : [];
  return known.some((m) => m.direction === "in" && !m.event);
}

function eventName(m) {
  // kefu names an event `…ev:<CreateTime>:<Event>` (src/channels/wx_official/events.ts).
  return m.id.split(":").at(-1);
}

// A message this recent is one that has just come (not one sent again after a reconnect).
const LIVE_SECONDS = 120;

/** A user's message or event came: the window it opens (only for a contact whose channel has one). */
export function windowOnInbound(c, m) {
  const w = c.replyWindow;
  if (!w) return;
  // A message that comes live opens its window now, as the server counts it (WeChat's CreateTime is a little
  // earlier, and a 106 "reopened" computed before the message was kept is older still: see mergeWindow). One sent
  // again after a reconnect keeps its own time; never later than now (a clock ahead must not lengthen the window).
  const now = Date.now() / 1000;
  const live = m.time >= now - LIVE_SECONDS;
  const at = live ? now : m.time;
  if (!m.event) {
    openWindow(w, "message", at, MESSAGE_WINDOW, live);
  } else {
    const name = eventName(m);
    if (name === "unsubscribe") {
      Object.assign(w, { message_until: 0, message_left: 0, event_until: 0, event_left: 0 });
    } else if (WINDOW_EVENTS.includes(name)) {
      openWindow(w, "event", at, EVENT_WINDOW, live);
    }
  }
  if (state.selected === c.id) renderWindowLine(c);
}

/**
 * Open (or renew) one window at `at`. A live message always renews it with its full quota: in the second the last
 * one opened it too its until is no later, so it is made a second later than the one it replaces, or a view of the
 * window from before the message (same until, fewer left) would win the merge (mergeWindow) and undo it.
 */
function openWindow(w, kind, at, rule, live) {
  const [until, left] = [`${kind}_until`, `${kind}_left`];
  const next = Math.floor(at + rule.ms / 1000);
  if (next > w[until]) {
    w[until] = next;
    w[left] = rule.quota;
  } else if (live) {
    w[until] += 1;
    w[left] = rule.quota;
  }
}

/** A reply went out through WeChat's customer-service API: it spent one of the window's replies. */
export function windowOnSent(c, status) {
  const w = c.replyWindow;
  // A passive reply (the answer to WeChat's own request) spends nothing.
  if (!w || status === "passive") return;
  const now = Date.now();
  if (w.event_until * 1000 > now && w.event_left > 0) w.event_left--;
  else if (w.message_left > 0) w.message_left--;
  if (state.selected === c.id) renderWindowLine(c);
}

/** The header's window line: "还可回复 5 条 · 剩余 47小时59分", or that the window is closed. */
export function renderWindowLine(c) {
  const line = $("reply-window");
  if (!c?.replyWindow) {
    line.hidden = true;
    line.textContent = "";
    line.dataset.state = "";
    return;
  }
  const s = contactWindow(c);
  line.hidden = false;
  line.dataset.state = s.open ? "open" : "closed";
  // Closed: a short word here; why, once, above the reply box (composer.js).
  line.textContent = s.open
    ? s.parts.map((p) => t(`window.open.${p.kind}`, { n: p.left, left: formatLeft(p.ms) })).join(" ｜ ")
    : t("window.closed");
  line.title = s.open ? "" : t(s.reason);
  scheduleTick(s);
}

// The line counts down: each minute, each second while the 1-minute window is open; and at the moment a window
// closes, so the reply box is disabled then and not a minute later.
let tick = 0;
function scheduleTick(s) {
  clearTimeout(tick);
  if (!s.open) return;
  const next = Math.min(...s.parts.map((p) => p.ms));
  const step = s.parts.some((p) => p.kind === "event") ? 1000 : 60_000;
  tick = setTimeout(onTick, Math.max(50, Math.min(step, next + 20)));
}

let onTickHandler = () => {};
/** What to do on each tick (main.js: redraw the line and the reply controls). */
export function onWindowTick(fn) {
  onTickHandler = fn;
}
function onTick() {
  onTickHandler();
}
