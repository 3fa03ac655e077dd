// kefu agent test page: one WebSocket per agent, contacts on the left, the selected conversation on the right.
// Every piece of server or user data reaches the DOM through textContent, never innerHTML.
// With sign-in on (kefu has AGENT_SECRET) the agent signs in; the token (never the password) is kept in
// sessionStorage and goes with every agent request: the socket's ?token=, Authorization: Bearer, media ?token=.
"use strict";

const WS_PATH = "/im_component/wx_official_account/msg";
const CONTACTS_PATH = "/im_component/wx_official_account/contacts";
const UPLOAD_PATH = "/im_component/wx_official_account/media";
// Users' images, voice notes and videos, fetched, kept and converted by kefu (msg.media_path).
const KEFU_MEDIA_PATH = "/media/";
const HISTORY_PATH = "/im_component/wx_official_account/history";
const HISTORY_PAGE = 50;
// WeChat shows "typing…" for 15 s; a keystroke re-announces it at most this often.
const TYPING_EVERY_MS = 10000;
const CODE_OF_TYPE = { text: 1001, image: 1002, voice: 1003, video: 1004 };
const SEND_PATH = "/send";
const HEALTH_PATH = "/healthz";
const LOGIN_PATH = "/auth/login";
const ME_PATH = "/auth/me";
const TOKEN_KEY = "kefu.token";
// With sign-in off: the agent this tab is connected as, so that a reload connects again ("" after Disconnect).
const AGENT_KEY = "kefu.agent";
// The open conversation ("agent\ncontact"), opened again after a reload.
const SELECTED_KEY = "kefu.selected";
// Contacts whose last message is not on the page get it from the history, this many requests at a time.
const PREVIEW_LOOKUPS = 4;
// setTimeout's longest wait (about 24.8 days); a token that lives longer re-arms its expiry timer.
const MAX_TIMER_MS = 2 ** 31 - 1;
const SYSTEM_CONTACT = "system01";
const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30000;
// 4000: the server replaced this socket with a newer one of the same agent; reconnecting would fight it.
const NO_RECONNECT_CODES = new Set([4000]);
// 4401: no valid token (missing, malformed, expired); 4403: the token is another agent's. Both mean: sign in again.
const SIGN_IN_CODES = new Set([4401, 4403]);
const Code = { heartbeat: 101, system: 102, sent: 103, typing: 104, ack: 105, other: 1000, error: -1 };
const TYPE_OF_CODE = { 1001: "text", 1002: "image", 1003: "voice", 1004: "video" };
const MAX_SYSTEM_LINES = 50;
const TOAST_MS = 10000;

const state = {
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
  /**
   * contact id → { id, name, lastTime, messages, seen, unreadIds, serverUnread, toAck, draft, preview, history }.
   * Unread is the ids received and not yet shown; the contact list's count covers what kefu has not sent yet.
   */
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
};

function $(id) {
  return document.getElementById(id);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

function pad(n) {
  return String(n).padStart(2, "0");
}

function clock(d) {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function formatTime(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0) return "";
  const d = new Date(seconds * 1000);
  if (d.toDateString() === new Date().toDateString()) return clock(d);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function dayOf(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function hoursMinutes(d) {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const WEEKDAYS = ["周日", "周一", "周二", "周三", "周四", "周五", "周六"];

// Today and yesterday by name; an older day by its date and weekday (this browser's time zone).
function dayLabel(seconds) {
  const d = new Date(seconds * 1000);
  const now = new Date();
  if (dayOf(d) === dayOf(now)) return "今天 Today";
  if (dayOf(d) === dayOf(new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1))) return "昨天 Yesterday";
  return `${dayOf(d)} ${WEEKDAYS[d.getDay()]}`;
}

// The contact list's time: today's hour, 昨天, a day of this year, or the date.
function shortTime(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0) return "";
  const d = new Date(seconds * 1000);
  const now = new Date();
  if (dayOf(d) === dayOf(now)) return hoursMinutes(d);
  if (dayOf(d) === dayOf(new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1))) return "昨天";
  if (d.getFullYear() === now.getFullYear()) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return dayOf(d);
}

function timeElement(seconds, text) {
  const t = el("time", "", text);
  if (Number.isFinite(seconds) && seconds > 0) {
    const d = new Date(seconds * 1000);
    t.dateTime = d.toISOString();
    t.title = `${dayOf(d)} ${clock(d)}`;
  }
  return t;
}

// The seed sends the system code as a string ("102").
function parseCode(value) {
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^\s*-?\d+\s*$/.test(value)) return Number(value);
  return NaN;
}

function text(value) {
  return value === undefined || value === null ? "" : String(value);
}

// crypto.randomUUID exists only in secure contexts; the page may be opened over plain http on a LAN address.
function newId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function randomDigits(n) {
  const b = crypto.getRandomValues(new Uint8Array(n));
  return String((b[0] % 9) + 1) + Array.from(b.slice(1), (x) => x % 10).join("");
}

function isWebUrl(s) {
  return /^https?:\/\//i.test(s);
}

function toast(message) {
  const box = $("toasts");
  const t = el("div", "toast", message);
  t.setAttribute("role", "alert");
  t.dataset.testid = "toast";
  t.title = "click to dismiss";
  t.addEventListener("click", () => t.remove());
  box.append(t);
  while (box.children.length > 5) box.firstElementChild.remove();
  setTimeout(() => t.remove(), TOAST_MS);
}

function setStatus(stateName, message) {
  const s = $("status");
  s.dataset.state = stateName;
  s.textContent = message;
  $("connect").textContent = state.wanted ? "Disconnect" : "Connect";
  renderHeartbeat();
  updateReplyControls();
}

// The first heartbeat comes 30 s after connecting: until then the line says when to expect it, not that it is missing.
function renderHeartbeat() {
  const line = $("heartbeat");
  const open = state.socket !== null && state.socket.readyState === WebSocket.OPEN;
  if (state.lastBeat) {
    line.textContent = `last heartbeat ${clock(state.lastBeat)}`;
    line.dataset.state = "beat";
  } else {
    line.textContent = open ? "心跳每 30 秒 · heartbeat every 30 s" : "";
    line.dataset.state = open ? "waiting" : "";
  }
}

// --- sign-in ---

/** Refusals come as {"code","msg"} (/auth/login) or kefu's error envelope (agent endpoints). */
function reasonOf(body, status) {
  return text(body?.data?.detail) || text(body?.msg) || `HTTP ${status}`;
}

/** Thrown by agentFetch once the page has signed out: the sign-in message says why, no toast needed. */
class SignedOut extends Error {}

// kefu refused the token (a 401, or a socket closed with 4401/4403): it has sign-in on, whatever the page believed.
// `reason` is "kind: detail", the same from either path.
function refused(reason) {
  state.auth = "on";
  signOut(`Signed out: kefu refused the sign-in (${reason}).`);
}

// An agent endpoint: the token goes along when signed in, and a 401 (token expired or refused) signs the page out.
async function agentFetch(url, init = {}) {
  const token = state.token;
  const headers = token ? { ...init.headers, authorization: `Bearer ${token}` } : init.headers;
  const res = await fetch(url, { cache: "no-store", ...init, headers });
  const body = await res.json().catch(() => null);
  // An answer for a sign-in that has ended since is of no use.
  if (token !== state.token) throw new SignedOut("signed out");
  if (res.status === 401) {
    const kind = text(body?.data?.error);
    refused(`${kind ? `${kind}: ` : ""}${reasonOf(body, res.status)}`);
    throw new SignedOut("signed out");
  }
  if (!res.ok) throw new Error(reasonOf(body, res.status));
  return body;
}

// kefu's own files: users' media under /media/, the agent's uploads under UPLOAD_PATH.
function isKefuFile(path) {
  return path.startsWith(KEFU_MEDIA_PATH) || path.startsWith(`${UPLOAD_PATH}/`);
}

// Media: an <img>, <audio> or <video> cannot send a header, so kefu's own files take ?token=. Other hosts never see it.
function mediaUrl(media) {
  if (!state.token) return media;
  let url;
  try {
    url = new URL(media, location.href);
  } catch {
    return media;
  }
  if (url.origin !== location.origin || !isKefuFile(url.pathname)) return media;
  return `${media}${media.includes("?") ? "&" : "?"}token=${encodeURIComponent(state.token)}`;
}

function showAuthMessage(message) {
  $("auth-message").textContent = message;
  $("auth-message").hidden = message === "";
}

// Which controls show: with sign-in on, the login form until signed in, then the agent's name and Sign out.
function renderAuth() {
  const on = state.auth === "on";
  const signedIn = state.token !== "";
  $("auth-off").hidden = state.auth !== "off";
  $("login-form").hidden = !on || signedIn;
  $("connect-form").hidden = on && !signedIn;
  $("agent-id-label").hidden = on;
  $("agent-id").hidden = on;
  $("who").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  $("agent-name").textContent = state.name;
  $("agent-id-shown").textContent = state.name !== state.agent ? state.agent : "";
  $("who").title = signedIn ? `agent ${state.agent}, signed in until ${formatTime(state.expireAt)}` : "";
}

async function detectAuth() {
  try {
    const res = await fetch(HEALTH_PATH, { cache: "no-store" });
    const body = await res.json();
    return body?.auth === "on" ? "on" : "off";
  } catch (e) {
    toast(`Cannot ask kefu whether sign-in is on (${HEALTH_PATH}): ${e.message}`);
    return "off";
  }
}

async function login() {
  const id = $("login-id").value.trim();
  const password = $("login-password").value;
  $("login").disabled = true;
  try {
    const res = await fetch(LOGIN_PATH, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id, password }),
    });
    const body = await res.json().catch(() => null);
    if (!res.ok || body?.code !== 0) throw new Error(reasonOf(body, res.status));
    const c = body.content;
    // `expire` is a duration: counted from this browser's clock, it does not depend on the server's.
    signIn(text(c.token), c.agent, nowSeconds() + Number(c.expire));
  } catch (e) {
    showAuthMessage(`Cannot sign in: ${e.message}`);
    $("login-password").focus();
  } finally {
    $("login-password").value = "";
    $("login").disabled = false;
  }
}

// After a reload: the kept token is checked before the page reconnects with it.
async function resume(token) {
  setStatus("connecting", "checking the kept sign-in…");
  try {
    const res = await fetch(ME_PATH, { cache: "no-store", headers: { authorization: `Bearer ${token}` } });
    const body = await res.json().catch(() => null);
    if (!res.ok || body?.code !== 0) {
      signOut(`Signed out: the kept sign-in is no longer valid (${reasonOf(body, res.status)}).`);
      return;
    }
    // expire_at is on the server's clock: move it to this browser's by the answer's Date header.
    const serverNow = Date.parse(res.headers.get("date") ?? "") / 1000;
    const skew = Number.isFinite(serverNow) ? serverNow - nowSeconds() : 0;
    signIn(token, body.content.agent, Number(body.content.expire_at) - skew);
  } catch (e) {
    signOut(`Signed out: cannot check the kept sign-in (${e.message}).`);
  }
}

function signIn(token, agent, expireAt) {
  state.token = token;
  state.expireAt = expireAt;
  state.name = text(agent?.name) || text(agent?.id);
  sessionStorage.setItem(TOKEN_KEY, token);
  // connect() reads the agent id from the (now hidden) field.
  $("agent-id").value = text(agent?.id);
  $("login-id").value = text(agent?.id);
  keepSelection(text(agent?.id));
  showAuthMessage("");
  connect();
  renderAuth();
  watchExpiry();
}

function watchExpiry() {
  clearTimeout(state.expiryTimer);
  const left = state.expireAt * 1000 - Date.now();
  if (left <= 0) {
    signOut(`Signed out: your sign-in expired at ${formatTime(state.expireAt)}. Sign in again.`);
    return;
  }
  state.expiryTimer = setTimeout(watchExpiry, Math.min(left, MAX_TIMER_MS));
}

// Forget the token and everything shown for its agent; `message` says why (empty: the agent chose to).
function signOut(message) {
  clearTimeout(state.expiryTimer);
  clearTimeout(state.reconnectTimer);
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = "";
  state.name = "";
  state.wanted = false;
  const ws = state.socket;
  state.socket = null;
  if (ws) ws.close(1000, "agent signed out");
  resetConversations();
  state.agent = "";
  state.lastBeat = null;
  sessionStorage.removeItem(AGENT_KEY);
  $("system").replaceChildren();
  showAuthMessage(message);
  renderAuth();
  setStatus("closed", "signed out");
  $($("login-id").value === "" ? "login-id" : "login-password").focus();
}

// --- connection ---

function connect() {
  if (state.auth === "on" && state.token === "") {
    showAuthMessage("Sign in first.");
    return;
  }
  const id = $("agent-id").value.trim();
  if (id === "") {
    toast("Enter an agent id first.");
    return;
  }
  if (id !== state.agent) resetConversations();
  state.agent = id;
  sessionStorage.setItem(AGENT_KEY, id);
  const to = $("sim-to");
  if (!to.dataset.edited) to.value = id;
  state.wanted = true;
  state.backoff = MIN_BACKOFF_MS;
  openSocket();
}

function disconnect() {
  state.wanted = false;
  // A reload keeps the agent's choice: it does not connect again by itself.
  sessionStorage.setItem(AGENT_KEY, "");
  clearTimeout(state.reconnectTimer);
  if (state.socket) state.socket.close(1000, "agent disconnected");
  else setStatus("closed", "disconnected");
}

function openSocket() {
  clearTimeout(state.reconnectTimer);
  // One socket a tab: one still open (Connect again, a new sign-in) is closed, and its events ignored.
  const old = state.socket;
  state.socket = null;
  if (old) old.close(1000, "agent reconnected");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const agent = state.agent;
  // ack=1: the page sends read receipts for what it has shown, so kefu sends the rest again after a reconnect.
  const token = state.token ? `&token=${encodeURIComponent(state.token)}` : "";
  const ws = new WebSocket(`${scheme}//${location.host}${WS_PATH}?userid=${encodeURIComponent(agent)}${token}&ack=1`);
  state.socket = ws;
  setStatus("connecting", `connecting as agent ${agent}…`);
  ws.onopen = () => {
    if (state.socket !== ws) return;
    state.backoff = MIN_BACKOFF_MS;
    state.lastBeat = null;
    setStatus("open", `connected as agent ${agent}`);
    loadContacts(agent, true);
  };
  ws.onmessage = (e) => {
    if (state.socket === ws) handleFrame(e.data);
  };
  ws.onclose = (e) => {
    if (state.socket !== ws) return;
    state.socket = null;
    if (SIGN_IN_CODES.has(e.code)) {
      refused(e.reason || `the connection closed with code ${e.code}`);
      return;
    }
    const why = `closed (code ${e.code}${e.reason ? `: ${e.reason}` : ""})`;
    failPending("the connection closed before the server confirmed the reply; its answer may still come");
    if (state.wanted && !NO_RECONNECT_CODES.has(e.code)) {
      const wait = state.backoff;
      state.backoff = Math.min(state.backoff * 2, MAX_BACKOFF_MS);
      state.reconnectTimer = setTimeout(openSocket, wait);
      setStatus("reconnecting", `${why}; reconnecting in ${wait / 1000} s`);
    } else {
      state.wanted = false;
      setStatus("closed", why);
    }
  };
}

// `connected`: the first list after the socket opened. Its unread counts are kept beside what the socket sends
// again (the page counts ids, so a message counted twice is not); later lists only add contacts.
async function loadContacts(agent, connected = false) {
  try {
    const body = await agentFetch(`${CONTACTS_PATH}?userid=${encodeURIComponent(agent)}`);
    if (agent !== state.agent) return;
    for (const c of body?.data?.contacts ?? []) {
      const id = text(c.contact_id);
      const known = state.contacts.has(id);
      const contact = ensureContact(id, text(c.name));
      contact.channel = text(c.channel);
      contact.account = text(c.account_id);
      contact.lastTime = Math.max(contact.lastTime, Number(c.last_message_time) || 0);
      if ((connected || !known) && id !== state.selected) contact.serverUnread = Number(c.unread) || 0;
    }
    // After a reload: the conversation that was open opens again (or, gone, the next message's does).
    const wanted = state.wantSelected;
    state.wantSelected = "";
    if (state.selected === "" && state.contacts.has(wanted)) select(wanted, false);
    const shown = state.contacts.get(state.selected);
    if (shown && shown.history === "") loadHistory(shown);
    renderContacts();
    loadPreviews();
  } catch (e) {
    if (!(e instanceof SignedOut)) toast(`Cannot load the contact list: ${e.message}`);
  }
}

// Contacts with nothing on the page (read before a reload, nothing sent again) show their last message from the
// history, a few requests at a time.
let previewLookups = 0;
function loadPreviews() {
  const agent = state.agent;
  // The most recent first: they are at the top of the list.
  const order = [...state.contacts.values()].sort((a, b) => b.lastTime - a.lastTime);
  for (const c of order) {
    if (previewLookups >= PREVIEW_LOOKUPS) return;
    if (c.messages.length > 0 || c.preview || c.previewLoading || c.history !== "") continue;
    c.previewLoading = true;
    previewLookups++;
    const url = `${HISTORY_PATH}?userid=${encodeURIComponent(agent)}&contact_id=${encodeURIComponent(c.id)}&limit=1`;
    agentFetch(url).then((body) => {
      const last = body?.data?.messages?.[0];
      if (last && agent === state.agent) c.preview = storedMessage(last);
    }).catch(() => {
      // No preview: the contact is still listed, and its conversation loads when opened.
    }).finally(() => {
      previewLookups--;
      if (agent !== state.agent) return;
      renderContactsSoon();
      loadPreviews();
    });
  }
}

// --- incoming frames ---

// A global on purpose: the browser test feeds it frames the server cannot be made to send on demand.
function handleFrame(raw) {
  let env;
  try {
    env = JSON.parse(raw);
  } catch {
    addSystem(`(not JSON) ${raw}`, nowSeconds());
    return;
  }
  const data = env && typeof env.data === "object" && env.data !== null ? env.data : {};
  const code = parseCode(env?.result?.code);
  if (code === Code.heartbeat) {
    state.lastBeat = new Date();
    renderHeartbeat();
  } else if (code === Code.system || data.contact_id === SYSTEM_CONTACT) {
    addSystemFrame(data, code);
  } else if (code === Code.sent) {
    confirmReply(text(data.id), Number(data.send_time), text(data.status) || "sent");
  } else if (code === Code.typing) {
    // "skipped" is normal (WeChat allows typing only right after an exchange): nothing to tell the agent.
  } else if (code === Code.error) {
    replyFailed(text(data.detail) || text(data.error) || "unknown error", text(data.error), text(data.id));
  } else if (text(data.contact_id) !== "") {
    addIncoming(data, code);
  } else {
    addSystem(`unrecognised frame: ${raw}`, nowSeconds());
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
  const ws = state.socket;
  if (id !== "" && ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ event: 3, data: { msg_id: id } }));
}

function addSystem(content, seconds) {
  const list = $("system");
  const li = el("li");
  li.append(el("time", "", formatTime(seconds || nowSeconds())), el("span", "", ` ${content}`));
  list.append(li);
  while (list.children.length > MAX_SYSTEM_LINES) list.firstElementChild.remove();
}

function resetConversations() {
  state.contacts.clear();
  state.selected = "";
  state.pending = [];
  $("reply-text").value = "";
  renderContacts();
  renderConversation();
}

function ensureContact(id, name) {
  let c = state.contacts.get(id);
  if (!c) {
    c = {
      id,
      name: name || id,
      lastTime: 0,
      messages: [],
      seen: new Set(),
      // Received and not yet shown: the unread count, and the ids acknowledged once the conversation is on screen.
      unreadIds: new Set(),
      toAck: new Set(),
      // The unread count of the contact list when the socket opened (messages kefu has not sent yet count too).
      serverUnread: 0,
      // The reply typed for this contact and not sent.
      draft: "",
      history: "",
    };
    state.contacts.set(id, c);
  } else if (name && name !== id) {
    c.name = name;
  }
  return c;
}

function unreadOf(c) {
  return Math.max(c.unreadIds.size, c.serverUnread);
}

// The envelope does not name a contact's channel: a contact first seen live is looked up in the contact list.
let channelLookup = 0;
function learnChannel(c) {
  if (c.channel !== undefined || channelLookup) return;
  channelLookup = setTimeout(() => {
    channelLookup = 0;
    if (state.agent) loadContacts(state.agent);
  }, 300);
}

// What kefu's media work adds beside media_path: shown with the file, not as fields of their own.
const MEDIA_FIELDS = new Set(["content", "media_path", "media_type", "media_error", "media_size", "media_original"]);
// What a location says: shown as one line, not as fields.
const LOCATION_FIELDS = new Set(["latitude", "longitude", "scale", "label"]);

// A message's msg object: its text, its file (kefu's URL, its type, or why there is none) and any other fields.
function bodyOf(raw, type) {
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
  // An event's fields (its user, key, ticket) are in its line already.
  if (event) body.extra = [];
  return { id: text(data.id), direction: "in", code, type, event, ...body, time: Number(data.send_time) || 0 };
}

// A history item: the envelope's data as the agent got (or sent) it, with direction, state and detail.
function storedMessage(d) {
  const event = d.contact_id === SYSTEM_CONTACT || d.msg_type === "system";
  const m = messageOf(d, parseCode(d.code), event);
  if (d.direction === "out") {
    m.direction = "out";
    // Only a failed reply has a reason to show; a sent one's detail says how it went ("sent", "passive").
    const stored = text(d.state);
    m.status = stored === "queued" ? "pending" : stored === "sent" && d.detail === "passive" ? "passive" : stored;
    m.detail = stored === "failed" ? text(d.detail) : "";
  }
  return m;
}

function addIncoming(data, code, event = false) {
  const c = ensureContact(text(data.contact_id), text(data.name));
  learnChannel(c);
  const id = text(data.id);
  // A file the agent asked kefu to try again comes back under the same id: it takes the failed one's place.
  const retried = id !== "" && c.retrying?.delete(id)
    ? c.messages.find((m) => m.id === id && m.direction === "in")
    : undefined;
  if (retried) {
    Object.assign(retried, bodyOf(data.msg, retried.type));
    retried.mediaNode = undefined;
    c.toAck.add(id);
    if (state.selected === c.id) renderConversation();
    return;
  }
  // The server sends unacknowledged messages again after a reconnect: acknowledge, do not show twice.
  if (id !== "" && c.seen.has(id)) {
    c.toAck.add(id);
    // Not waiting to be read (shown already, or in the history on screen): its receipt was lost on the way.
    if (state.selected === c.id || !c.unreadIds.has(id)) acknowledge(c, [id]);
    return;
  }
  if (id !== "") c.seen.add(id);
  const m = messageOf(data, code, event);
  m.time ||= nowSeconds();
  c.messages.push(m);
  c.lastTime = Math.max(c.lastTime, m.time);
  if (id !== "") c.toAck.add(id);
  // The first message opens its conversation when none is open (after a reload: the one that was open, once known).
  if (state.selected === "" && (state.wantSelected === "" || state.wantSelected === c.id)) select(c.id, false);
  if (state.selected !== c.id) c.unreadIds.add(id !== "" ? id : newId());
  renderContacts();
  if (state.selected === c.id) renderConversation("append");
}

// Read receipts for what is on screen: kefu sends unacknowledged messages again after a reconnect.
function acknowledgeShown(c) {
  if (c.toAck.size === 0) return;
  const ids = [...c.toAck];
  if (acknowledge(c, ids)) c.toAck.clear();
}

function acknowledge(c, ids) {
  const ws = state.socket;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  // At most 1000 ids a receipt.
  for (let i = 0; i < ids.length; i += 1000) {
    ws.send(JSON.stringify({
      data: { msg_type: "ack", contact_id: c.id, ids: ids.slice(i, i + 1000) },
      result: { code: Code.ack, message: "ack" },
    }));
  }
  for (const id of ids) c.toAck.delete(id);
  return true;
}

// The past of a conversation from kefu's store (after a reload), older pages on demand.
async function loadHistory(c) {
  if (c.history === "loading" || c.history === "done") return;
  // The first page is the newest (it may hold messages read before a reload); later pages go back from there.
  const oldest = c.oldestStored;
  c.history = "loading";
  try {
    const url = `${HISTORY_PATH}?userid=${encodeURIComponent(state.agent)}&contact_id=${encodeURIComponent(c.id)}` +
      `&limit=${HISTORY_PAGE}${oldest ? `&before=${encodeURIComponent(oldest.id)}` : ""}`;
    const body = await agentFetch(url);
    const older = [];
    for (const d of (body.data.messages ?? []).toReversed()) {
      const id = text(d.id);
      if (id !== "" && c.seen.has(id)) continue;
      if (id !== "") c.seen.add(id);
      older.push(storedMessage(d));
    }
    const page = body.data.messages ?? [];
    if (page.length > 0) c.oldestStored = text(page.at(-1).id);
    c.messages.push(...older);
    c.messages.sort((a, b) => a.time - b.time);
    c.history = body.data.has_more ? "more" : "done";
  } catch (e) {
    c.history = "";
    if (!(e instanceof SignedOut)) toast(`Cannot load the history of ${c.id}: ${e.message}`);
  }
  renderContacts();
  if (state.selected === c.id) renderConversation("older");
}

function confirmReply(id, seconds, status) {
  const i = state.pending.findIndex((p) => p.msg.id === id);
  if (i < 0) return;
  const [p] = state.pending.splice(i, 1);
  p.msg.status = status;
  p.msg.detail = "";
  if (Number.isFinite(seconds) && seconds > 0) {
    // kefu's time, as its contact list and history will say it.
    const c = state.contacts.get(p.contact);
    if (c && c.lastTime === p.msg.time) c.lastTime = Math.max(p.lastTimeBefore, seconds);
    p.msg.time = seconds;
  }
  renderContacts();
  if (state.selected === p.contact) renderConversation();
}

// Today's error envelope does not name the reply, but the server answers frames in order: it is the oldest pending
// one. An envelope that does carry data.id is matched by it.
function replyFailed(detail, kind, id) {
  toast(kind ? `${kind}: ${detail}` : detail);
  // Only an error that names a reply fails it: typing, receipts and bad frames name none.
  const i = id === "" ? -1 : state.pending.findIndex((p) => p.msg.id === id);
  if (i < 0) return;
  const [p] = state.pending.splice(i, 1);
  if (!p) return;
  p.msg.status = "failed";
  p.msg.detail = detail;
  if (state.selected === p.contact) renderConversation();
}

// The server may still send them (its answer comes to the next socket of this agent): not failed, unconfirmed.
function failPending(detail) {
  for (const p of state.pending) {
    p.msg.status = "unconfirmed";
    p.msg.detail = detail;
  }
  if (state.pending.length > 0) renderConversation();
}

// --- replies ---

function openSocketOrWarn() {
  const ws = state.socket;
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    toast("Not connected: the reply was not sent.");
    return null;
  }
  return ws;
}

// One reply envelope (seed §1.2 shape, contact_id = the user); shown as pending until the server answers 103 or -1.
function sendEnvelope(c, type, msgBody) {
  const ws = openSocketOrWarn();
  if (!ws) return;
  const id = newId();
  ws.send(JSON.stringify({
    data: { id, msg_type: type, contact_id: c.id, msg: msgBody },
    result: { code: CODE_OF_TYPE[type], message: "common" },
  }));
  const msg = {
    id,
    direction: "out",
    code: CODE_OF_TYPE[type],
    type,
    content: text(msgBody.content),
    media: text(msgBody.media_path),
    time: nowSeconds(),
    status: "pending",
  };
  c.messages.push(msg);
  c.seen.add(id);
  state.pending.push({ contact: c.id, msg, lastTimeBefore: c.lastTime });
  c.lastTime = Math.max(c.lastTime, msg.time);
  state.typingSent.delete(c.id);
  renderContacts();
  // The agent's own reply: the conversation goes to its end.
  renderConversation("bottom");
}

function sendReply() {
  const box = $("reply-text");
  const content = box.value.trim();
  const c = state.contacts.get(state.selected);
  if (content === "" || !c) return;
  if (!openSocketOrWarn()) return;
  sendEnvelope(c, "text", { content });
  box.value = "";
  c.draft = "";
}

// "typing…" on the user's phone while the agent writes (kefu checks WeChat's rules and may skip it).
function announceTyping() {
  const c = state.contacts.get(state.selected);
  const ws = state.socket;
  if (!c || !ws || ws.readyState !== WebSocket.OPEN || $("reply-text").value.trim() === "") return;
  const last = state.typingSent.get(c.id) ?? 0;
  if (Date.now() - last < TYPING_EVERY_MS) return;
  state.typingSent.set(c.id, Date.now());
  ws.send(JSON.stringify({ data: { msg_type: "typing", contact_id: c.id }, result: { code: Code.typing } }));
}

// A file goes to kefu first (it uploads it to WeChat when the reply is sent), then the reply names it.
async function sendFile(file) {
  const c = state.contacts.get(state.selected);
  if (!c || !file) return;
  const type = file.type.startsWith("image/")
    ? "image"
    : file.type.startsWith("audio/")
    ? "voice"
    : file.type.startsWith("video/")
    ? "video"
    : "";
  if (type === "") {
    toast(`Cannot send ${file.name}: WeChat takes images, voice (mp3/amr) and video (mp4)`);
    return;
  }
  try {
    const url = `${UPLOAD_PATH}?userid=${encodeURIComponent(state.agent)}&filename=${encodeURIComponent(file.name)}`;
    const body = await agentFetch(url, { method: "POST", body: file, headers: { "content-type": file.type } });
    sendEnvelope(c, type, { media_path: text(body.data.media_path) });
  } catch (e) {
    if (!(e instanceof SignedOut)) toast(`Cannot upload ${file.name}: ${e.message}`);
  }
}

// --- rendering ---

// Open a contact's conversation; `focus`: the agent chose it (the reply box takes the keyboard).
function select(id, focus = true) {
  const box = $("reply-text");
  // Each contact keeps its own unsent reply.
  const before = state.contacts.get(state.selected);
  if (before) before.draft = box.value;
  state.selected = id;
  state.wantSelected = "";
  sessionStorage.setItem(SELECTED_KEY, `${state.agent}\n${id}`);
  const c = state.contacts.get(id);
  box.value = c ? c.draft : "";
  if (c) {
    c.unreadIds.clear();
    c.serverUnread = 0;
    if (c.history === "") loadHistory(c);
  }
  renderContacts();
  renderConversation("bottom");
  if (focus) box.focus();
}

// How each channel is named beside a contact: where the user wrote from.
const CHANNEL_LABELS = {
  wx_official_account: "公众号",
  pc_hook: "个人号 · PC",
  wxbot: "个人号 · WXBot",
  http_push: "HTTP",
};

// Many answers in a row (previews) redraw the list once.
let contactsTimer = 0;
function renderContactsSoon() {
  if (contactsTimer) return;
  contactsTimer = setTimeout(() => {
    contactsTimer = 0;
    renderContacts();
  }, 30);
}

function renderContacts() {
  const list = $("contacts");
  const sorted = [...state.contacts.values()].sort((a, b) => b.lastTime - a.lastTime);
  list.replaceChildren(...sorted.map((c) => {
    const li = el("li", c.id === state.selected ? "contact selected" : "contact");
    li.dataset.contactId = c.id;
    li.dataset.testid = "contact";
    li.title = c.id;
    li.tabIndex = 0;
    const top = el("div", "contact-top");
    top.append(el("span", "contact-name", c.name));
    if (c.channel) {
      const tag = el("span", "channel-tag", CHANNEL_LABELS[c.channel] ?? c.channel);
      tag.dataset.channel = c.channel;
      tag.dataset.testid = "channel";
      tag.title = c.account ? `${c.channel} · ${c.account}` : c.channel;
      top.append(tag);
    }
    const unread = unreadOf(c);
    if (unread > 0) {
      const badge = el("span", "unread", String(unread));
      badge.dataset.testid = "unread";
      badge.title = `${unread} 条未读 unread`;
      top.append(badge);
    }
    li.dataset.time = String(c.lastTime);
    const sub = el("div", "contact-sub");
    sub.append(
      el("span", "contact-preview", previewOf(c.messages.at(-1) ?? c.preview)),
      timeElement(c.lastTime, shortTime(c.lastTime)),
    );
    li.append(top, sub);
    li.addEventListener("click", () => select(c.id));
    li.addEventListener("keydown", (e) => {
      if (e.key === "Enter") select(c.id);
    });
    return li;
  }));
  $("contacts-empty").hidden = sorted.length > 0;
  updateReplyControls();
}

const TYPE_LABELS = { image: "[图片]", voice: "[语音]", video: "[视频]", shortvideo: "[视频]", location: "[位置]" };

// A contact's last message in one line: "我: " before the agent's own.
function previewOf(m) {
  if (!m) return "";
  if (m.event) return m.content;
  const label = TYPE_LABELS[m.type];
  const body = m.type === "location"
    ? `${label} ${m.location?.label ?? ""}`.trim()
    : m.content || label || `[${m.type}]`;
  return m.direction === "out" ? `我: ${body}` : body;
}

// Only http(s) URLs become links: a javascript: URL from a message must stay text.
function link(url) {
  const a = el("a", "", url);
  a.href = url;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

// "0:02", "12:05", "1:02:03": a voice note's or a video's length.
function formatDuration(seconds) {
  const s = Math.round(seconds);
  const [h, m] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60)];
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

// What to show a file as: by its stored type when kefu says it, else by the message type.
function mediaKind(m) {
  const [major] = text(m.mediaType).split("/");
  if (major === "image" || m.type === "image") return "image";
  if (major === "audio" || m.type === "voice") return "voice";
  if (major === "video" || m.type === "video" || m.type === "shortvideo") return "video";
  return "file";
}

// A file kefu or the browser cannot show: the reason, and a link to the file itself when there is one.
function mediaProblem(wrap, message, src) {
  const line = el("div", "media-error", message);
  line.dataset.testid = "media-error";
  line.setAttribute("role", "note");
  wrap.append(line);
  if (src) {
    const a = link(src);
    a.textContent = "打开文件 Open the file";
    wrap.append(a);
  }
}

// Ask kefu to fetch a failed file again; the message comes back under its id, with its file or a new reason.
function retryButton(m) {
  const b = el("button", "media-retry", "重试 Retry");
  b.type = "button";
  b.dataset.testid = "media-retry";
  b.addEventListener("click", () => {
    const c = state.contacts.get(state.selected);
    const ws = state.socket;
    if (!c || !ws || ws.readyState !== WebSocket.OPEN) return toast("Not connected: cannot ask for the file again");
    (c.retrying ??= new Set()).add(m.id);
    b.disabled = true;
    b.textContent = "重试中… Retrying";
    ws.send(JSON.stringify({ data: { msg_type: "media_retry", contact_id: c.id, id: m.id } }));
  });
  return b;
}

// The conversation grows when an image or a player learns its size: stay at the end if the agent was there.
function keepAtBottom() {
  if (state.atBottom) $("conversation").scrollTop = $("conversation").scrollHeight;
}

function renderImage(wrap, src) {
  // A link, so a middle click still opens the file in a tab; a plain click enlarges it here.
  const a = link(src);
  a.textContent = "";
  a.className = "thumb";
  a.title = "点击放大 Click to enlarge";
  a.dataset.testid = "thumb";
  const img = el("img");
  img.src = src;
  img.alt = "图片 image";
  img.addEventListener("load", keepAtBottom);
  img.addEventListener("error", () => {
    a.hidden = true;
    mediaProblem(wrap, "图片无法显示 The image could not be loaded", src);
  }, { once: true });
  a.append(img);
  a.addEventListener("click", (e) => {
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    openLightbox(src, a);
  });
  wrap.append(a);
}

function renderPlayer(wrap, kind, src) {
  const player = el(kind === "voice" ? "audio" : "video", `player ${kind}`);
  player.controls = true;
  // Enough to learn the length; the rest loads when the agent plays it (kefu answers Range requests).
  player.preload = "metadata";
  player.dataset.testid = kind;
  const info = el("span", "media-info", kind === "voice" ? "语音 voice" : "视频 video");
  info.dataset.testid = "duration";
  const showLength = () => {
    if (!Number.isFinite(player.duration)) return;
    info.textContent = `${kind === "voice" ? "语音 voice" : "视频 video"} ${formatDuration(player.duration)}`;
    wrap.dataset.duration = String(player.duration);
  };
  player.addEventListener("loadedmetadata", () => {
    showLength();
    keepAtBottom();
  });
  player.addEventListener("durationchange", showLength);
  player.addEventListener("error", () => {
    player.remove();
    info.remove();
    // Chromium says which: a format it cannot play, or an answer that was not the file (expired sign-in, …).
    const why = text(player.error?.message) || "the file could not be loaded or played";
    mediaProblem(wrap, `无法播放 Cannot play: ${why}`, src);
  }, { once: true });
  player.src = src;
  const row = el("div", "player-row");
  row.append(player, info);
  wrap.append(row);
}

// Images inline (click to enlarge), voice and video in players with their length; never the bare URL.
function renderMedia(m) {
  const wrap = el("div", "media");
  wrap.dataset.testid = "media";
  // kefu serves its own files (users' media, the agent's uploads); other http(s) URLs are shown as they are.
  const src = m.media !== "" && (isWebUrl(m.media) || isKefuFile(m.media)) ? mediaUrl(m.media) : "";
  if (m.mediaError) {
    // With no file kefu could not fetch it; with one it kept the file as it came (not converted).
    const what = src ? "文件未能转换" : "文件未能转存";
    mediaProblem(wrap, `${what}: ${m.mediaError}`, src);
    if (!src && m.id) wrap.append(retryButton(m));
    return wrap;
  }
  if (src === "") {
    // A MediaId rather than a URL: there is nothing to show or link to.
    wrap.append(el("code", "", m.media));
    return wrap;
  }
  const kind = mediaKind(m);
  wrap.dataset.kind = kind;
  if (kind === "image") renderImage(wrap, src);
  else if (kind === "voice" || kind === "video") renderPlayer(wrap, kind, src);
  else {
    const a = link(src);
    a.textContent = "打开文件 Open the file";
    wrap.append(a);
  }
  return wrap;
}

// --- the image overlay ---

function openLightbox(src, opener) {
  state.lightboxOpener = opener;
  $("lightbox-img").src = src;
  $("lightbox-open").href = src;
  $("lightbox").hidden = false;
  $("lightbox-close").focus();
}

function closeLightbox() {
  if ($("lightbox").hidden) return;
  $("lightbox").hidden = true;
  $("lightbox-img").removeAttribute("src");
  const opener = state.lightboxOpener;
  state.lightboxOpener = null;
  if (opener?.isConnected) opener.focus();
}

function renderExtra(fields) {
  const dl = el("dl", "msg-extra");
  for (const [key, value] of fields) {
    const dd = el("dd");
    if (isWebUrl(value)) dd.append(link(value));
    else dd.textContent = value;
    dl.append(el("dt", "", key), dd);
  }
  return dl;
}

const STATUS_LABELS = {
  pending: "发送中 sending",
  sent: "已发送 sent",
  passive: "已回复 passive",
  failed: "失败 failed",
  unconfirmed: "未确认 unconfirmed",
};

// Coordinates as WeChat sends them: a decimal number, nothing else (they go into a map link).
function isCoordinate(s) {
  return /^-?\d{1,3}(\.\d+)?$/.test(s);
}

// A location as one line: its label, its coordinates and a map link (高德地图 reads WeChat's GCJ-02 coordinates).
function renderLocation(loc) {
  const line = el("div", "msg-location");
  line.dataset.testid = "location";
  line.append(el("span", "location-label", loc.label || "位置 Location"));
  if (isCoordinate(loc.latitude) && isCoordinate(loc.longitude)) {
    line.append(el("span", "coords", ` · ${loc.latitude}, ${loc.longitude} `));
    const a = link(
      `https://uri.amap.com/marker?position=${loc.longitude},${loc.latitude}&name=${encodeURIComponent(loc.label)}`,
    );
    a.textContent = "地图 Map";
    line.append(a);
  }
  return line;
}

// A WeChat event (follow, menu click, scan…): a line of the conversation, not a bubble.
function renderEvent(m) {
  const div = el("div", "msg event");
  div.dataset.testid = "event";
  div.dataset.id = m.id;
  const t = new Date(m.time * 1000);
  div.append(timeElement(m.time, hoursMinutes(t)), el("span", "msg-text", m.content));
  return div;
}

function renderMessage(m) {
  if (m.event) return renderEvent(m);
  const div = el("div", `msg ${m.direction}`);
  div.dataset.testid = "message";
  div.dataset.id = m.id;
  div.dataset.direction = m.direction;
  if (m.status) div.dataset.status = m.status;
  const head = el("div", "msg-head");
  if (m.type !== "text") head.append(el("span", "badge", m.type));
  head.append(timeElement(m.time, m.time > 0 ? hoursMinutes(new Date(m.time * 1000)) : ""));
  if (m.status) head.append(el("span", `msg-status ${m.status}`, STATUS_LABELS[m.status] ?? m.status));
  div.append(head);
  if (m.location) div.append(renderLocation(m.location));
  else if (m.content !== "") div.append(el("div", "msg-text", m.content));
  // Rendered once per message: re-rendering the conversation keeps a playing voice note playing.
  if (m.media !== "" || m.mediaError) div.append(m.mediaNode ??= renderMedia(m));
  if (m.extra?.length) div.append(renderExtra(m.extra));
  if (m.detail) div.append(el("div", "msg-error", m.detail));
  return div;
}

function daySeparator(seconds) {
  const div = el("div", "day", dayLabel(seconds));
  div.dataset.testid = "day";
  div.setAttribute("role", "separator");
  return div;
}

// The conversation, with a separator before each day's first message. Where it scrolls to (`how`):
// "bottom" (another contact, the agent's own reply) to the end; "append" (a new message) to the end if the agent was
// there, else where the agent reads, with the "new messages" marker; "older" (history above) keeps what is on
// screen in place; "keep" (a status changed) stays.
function renderConversation(how = "keep") {
  const box = $("conversation");
  const c = state.contacts.get(state.selected);
  const id = c ? c.id : "";
  const other = box.dataset.contactId !== id;
  const { scrollTop, scrollHeight } = box;
  const atBottom = state.atBottom;
  box.dataset.contactId = id;
  $("conv-title").textContent = c ? (c.name !== c.id ? `${c.name} (${c.id})` : c.name) : "Select a contact";
  const items = [];
  if (c && c.history === "more") {
    const more = el("button", "load-older", "Load older messages 更早的消息");
    more.type = "button";
    more.addEventListener("click", () => loadHistory(c));
    items.push(more);
  }
  let day = "";
  for (const m of c ? c.messages : []) {
    if (m.time > 0) {
      const d = dayOf(new Date(m.time * 1000));
      if (d !== day) items.push(daySeparator(m.time));
      day = d;
    }
    items.push(renderMessage(m));
  }
  box.replaceChildren(...items);
  if (other || how === "bottom" || atBottom) {
    box.scrollTop = box.scrollHeight;
    state.atBottom = true;
    $("new-below").hidden = true;
  } else if (how === "older") {
    box.scrollTop = box.scrollHeight - (scrollHeight - scrollTop);
  } else {
    box.scrollTop = scrollTop;
    if (how === "append") $("new-below").hidden = false;
  }
  updateReplyControls();
  if (c) acknowledgeShown(c);
}

function toEnd() {
  const box = $("conversation");
  box.scrollTop = box.scrollHeight;
  state.atBottom = true;
  $("new-below").hidden = true;
}

function updateReplyControls() {
  const ready = state.socket !== null && state.socket.readyState === WebSocket.OPEN &&
    state.contacts.has(state.selected);
  $("reply-text").disabled = !ready;
  $("reply-send").disabled = !ready;
  $("reply-file").disabled = !ready;
}

// --- simulate a WeChat user ---

function cdata(s) {
  return `<![CDATA[${s.replaceAll("]]>", "]]]]><![CDATA[>")}]]>`;
}

async function simulate() {
  const out = $("sim-result");
  const field = (id) => $(id).value;
  const xml = `<xml><ToUserName>${cdata(field("sim-to").trim())}</ToUserName>` +
    `<FromUserName>${cdata(field("sim-from").trim())}</FromUserName>` +
    `<CreateTime>${nowSeconds()}</CreateTime><MsgType>${cdata(field("sim-type").trim() || "text")}</MsgType>` +
    `<Content>${cdata(field("sim-content"))}</Content><MsgId>${randomDigits(18)}</MsgId></xml>`;
  out.dataset.status = "sending";
  out.textContent = "sending…";
  try {
    const res = await fetch(SEND_PATH, { method: "POST", headers: { "content-type": "text/xml" }, body: xml });
    const body = await res.text();
    let json;
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    const status = text(json?.data?.status) || (json?.data?.error ? "error" : `HTTP ${res.status}`);
    const detail = text(json?.data?.detail);
    out.dataset.status = status;
    out.textContent = `${res.status} ${status}${detail ? `: ${detail}` : ""}\n${
      json ? JSON.stringify(json, null, 2) : body
    }`;
  } catch (e) {
    out.dataset.status = "error";
    out.textContent = `request failed: ${e.message}`;
  }
}

// --- wiring ---

async function init() {
  const params = new URLSearchParams(location.search);
  const fromUrl = (params.get("userid") ?? params.get("userId") ?? "").trim();
  if (fromUrl !== "") $("agent-id").value = fromUrl;
  $("login-id").value = fromUrl;
  $("sim-to").value = $("agent-id").value;
  $("sim-to").addEventListener("input", (e) => e.target.dataset.edited = "1");
  $("connect-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (state.wanted) disconnect();
    else connect();
  });
  $("reply-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sendReply();
  });
  $("reply-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendReply();
    }
  });
  $("reply-text").addEventListener("input", () => {
    const c = state.contacts.get(state.selected);
    if (c) c.draft = $("reply-text").value;
    announceTyping();
  });
  $("reply-file").addEventListener("change", (e) => {
    const file = e.target.files?.[0];
    e.target.value = "";
    sendFile(file);
  });
  $("sim-form").addEventListener("submit", (e) => {
    e.preventDefault();
    simulate();
  });
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    login();
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("conversation").addEventListener("scroll", (e) => {
    const box = e.target;
    state.atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    if (state.atBottom) $("new-below").hidden = true;
  });
  $("new-below").addEventListener("click", toEnd);
  $("lightbox").addEventListener("click", (e) => {
    if (e.target !== $("lightbox-open")) closeLightbox();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("lightbox").hidden) {
      e.preventDefault();
      closeLightbox();
    }
  });
  renderContacts();
  renderConversation();
  // Until kefu says whether sign-in is on, the page is today's (Connect with an agent id).
  state.auth = await detectAuth();
  renderAuth();
  if (state.auth !== "on") {
    // ?userid= connects at once, and a reload connects again as the agent this tab was (unless it disconnected).
    const kept = sessionStorage.getItem(AGENT_KEY);
    const agent = kept === "" ? "" : fromUrl || kept || "";
    // Connect pressed while kefu was being asked: connected already.
    if (agent === "" || state.wanted) return;
    $("agent-id").value = agent;
    keepSelection(agent);
    connect();
    return;
  }
  const kept = sessionStorage.getItem(TOKEN_KEY) ?? "";
  if (kept !== "") resume(kept);
  else signOut("");
}

// The conversation this tab had open for `agent` opens again once its contact is known.
function keepSelection(agent) {
  const [who, contact] = (sessionStorage.getItem(SELECTED_KEY) ?? "").split("\n");
  state.wantSelected = who === agent && contact ? contact : "";
}

init();
