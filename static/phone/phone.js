// The simulator's phone page: act as WeChat users, see what the account sends back.
// Everything the page shows comes from events (the live socket, history, or a send's answer), applied by `apply`;
// server and user data reach the DOM through textContent and element attributes, never innerHTML.
"use strict";

const API = "/phone/api";
// A real AMR-NB voice note (2 s, a copy of tests/fixtures/media/voice.amr): browsers record Opus or AAC, never AMR,
// which is what WeChat's app sends, so the voice button sends this file.
const SAMPLE_VOICE = "/phone/sample-voice.amr";
const USERS_KEY = "kefu-sim-users";
const SELECTED_KEY = "kefu-sim-selected";
const FAILURE_TEXT = "该公众号提供的服务出现故障，请稍后再试";
// WeChat hides "typing…" by itself after 15 s.
const TYPING_MS = 15000;
const MAX_EVENTS = 500;
const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30000;

const state = {
  settings: null,
  /** The simulator run the events come from. */
  run: "",
  /** [{ openid, nickname }] */
  users: [],
  selected: "",
  /** openid → { events: [], seqs: Set, unread: number } */
  conversations: new Map(),
  /** message id → { status: Element, done: boolean } for the selected conversation */
  bubbles: new Map(),
  typingTimer: 0,
  socket: null,
  backoff: MIN_BACKOFF_MS,
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

// crypto.randomUUID exists only in secure contexts; the page may be opened over plain http on a LAN address.
function randomId(prefix, length) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return prefix + Array.from(bytes, (b) => alphabet[b & 63]).join("");
}

function clock(ms) {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

function conversation(openid) {
  let c = state.conversations.get(openid);
  if (!c) state.conversations.set(openid, c = { events: [], seqs: new Set(), unread: 0 });
  return c;
}

// ---- users ----

function loadUsers() {
  try {
    const list = JSON.parse(localStorage.getItem(USERS_KEY) ?? "[]");
    if (Array.isArray(list)) state.users = list.filter((u) => u && typeof u.openid === "string");
  } catch {
    state.users = [];
  }
  if (state.users.length === 0) state.users = [{ openid: randomId("o", 27), nickname: "测试用户" }];
  const selected = localStorage.getItem(SELECTED_KEY);
  state.selected = state.users.some((u) => u.openid === selected) ? selected : state.users[0].openid;
  saveUsers();
}

function saveUsers() {
  localStorage.setItem(USERS_KEY, JSON.stringify(state.users));
  localStorage.setItem(SELECTED_KEY, state.selected);
}

function nickname(openid) {
  return state.users.find((u) => u.openid === openid)?.nickname || openid;
}

function renderUsers() {
  const list = $("users");
  list.replaceChildren();
  for (const u of state.users) {
    const item = el("li", u.openid === state.selected ? "user selected" : "user");
    item.dataset.openid = u.openid;
    item.append(el("span", "nick", u.nickname || u.openid), el("span", "openid", u.openid));
    const unread = conversation(u.openid).unread;
    if (unread > 0) item.append(el("span", "badge", String(unread)));
    const remove = el("button", "remove", "×");
    remove.type = "button";
    remove.title = "Remove from this page 移除";
    remove.addEventListener("click", (e) => {
      e.stopPropagation();
      removeUser(u.openid);
    });
    item.append(remove);
    item.addEventListener("click", () => select(u.openid));
    list.append(item);
  }
  $("new-openid").value ||= randomId("o", 27);
}

function addUser(openid, name) {
  if (!state.users.some((u) => u.openid === openid)) state.users.push({ openid, nickname: name });
  select(openid);
  if (state.socket?.readyState === WebSocket.OPEN) loadHistory(openid);
}

function removeUser(openid) {
  state.users = state.users.filter((u) => u.openid !== openid);
  if (state.users.length === 0) state.users = [{ openid: randomId("o", 27), nickname: "测试用户" }];
  if (state.selected === openid) state.selected = state.users[0].openid;
  select(state.selected);
}

function select(openid) {
  state.selected = openid;
  conversation(openid).unread = 0;
  saveUsers();
  renderUsers();
  $("title").textContent = `${nickname(openid)} → ${state.settings?.account ?? "公众号"}`;
  $("text").disabled = $("send").disabled = false;
  showTyping(false);
  renderChat();
}

// ---- chat ----

function renderChat() {
  state.bubbles.clear();
  $("chat").replaceChildren();
  for (const e of conversation(state.selected).events) draw(e);
  scrollDown();
}

function scrollDown() {
  const chat = $("chat");
  chat.scrollTop = chat.scrollHeight;
}

function line(className, text) {
  const node = el("div", `line ${className}`, text);
  $("chat").append(node);
  return node;
}

function describeUserEvent(input) {
  switch (input.type) {
    case "subscribe":
      return input.scene ? `你扫码关注了公众号（场景 ${input.scene}） · followed by QR` : "你关注了公众号 · followed";
    case "unsubscribe":
      return "你取消关注了公众号 · unfollowed";
    case "scan":
      return `你扫描了二维码（场景 ${input.scene}） · scanned`;
    case "click":
      return `你点击了菜单 ${input.eventKey} · menu click`;
    case "view":
      return `你打开了菜单链接 ${input.url}`;
    case "report_location":
      return `你上报了位置 ${input.latitude}, ${input.longitude}`;
  }
  return "";
}

function userBubbleBody(input) {
  switch (input.type) {
    case "text":
      return el("div", "text", input.content);
    case "image": {
      const img = el("img", "photo");
      img.src = input.picUrl;
      img.alt = "image 图片";
      return img;
    }
    case "voice": {
      // As WeChat shows a voice note: its length in seconds (the simulator measured the AMR frames).
      const seconds = Number(input.seconds);
      const note = el(
        "div",
        "text voice-note",
        `语音 ${Number.isFinite(seconds) ? `${Math.round(seconds)}″ ` : ""})))`,
      );
      note.title = `voice note, ${input.format ?? "amr"}, MediaId ${input.mediaId}`;
      return note;
    }
    case "location":
      return el("div", "text", `📍 ${input.label || "位置"} (${input.latitude}, ${input.longitude})`);
    case "link":
      return el("div", "text", `🔗 ${input.title} ${input.url}`);
  }
  return el("div", "text", JSON.stringify(input));
}

function bubble(side, body, tag, at) {
  const row = el("div", `row ${side}`);
  const b = el("div", "bubble");
  b.append(el("div", "tag", [clock(at ?? Date.now()), tag].filter(Boolean).join(" · ")));
  b.append(body);
  row.append(b);
  $("chat").append(row);
  return row;
}

function media(kind, url, label) {
  if (!url) return el("div", "text", `[${label}]`);
  if (kind === "image") {
    const img = el("img", "photo");
    img.src = url;
    img.alt = label;
    return img;
  }
  const player = el(kind === "voice" ? "audio" : "video", "player");
  player.controls = true;
  player.src = url;
  return player;
}

function replyBody(reply) {
  switch (reply.type) {
    case "text":
      return el("div", "text", reply.content);
    case "image":
    case "voice":
    case "video":
      return media(reply.type, reply.mediaUrl, `${reply.type} ${reply.mediaId}`);
    case "news":
      return articles(reply.articles ?? []);
    case "music":
      return el("div", "text", `🎵 ${reply.title ?? ""} ${reply.musicUrl ?? ""}`);
  }
  return el("div", "text", JSON.stringify(reply));
}

function articles(list) {
  const box = el("div", "articles");
  for (const a of list) {
    const link = el("a", "article", a.title || a.url);
    if (/^https?:\/\//.test(a.url ?? "")) link.href = a.url;
    link.target = "_blank";
    link.rel = "noopener";
    box.append(link);
    if (a.description) box.append(el("div", "article-text", a.description));
  }
  return box;
}

// A customer-service message as WeChat shows it; `message` is the body the gateway posted.
function customBody(e) {
  const m = e.message ?? {};
  const part = m[m.msgtype] ?? {};
  switch (m.msgtype) {
    case "text":
      return el("div", "text", part.content ?? "");
    case "image":
    case "voice":
    case "video":
      return media(m.msgtype, e.mediaUrl, `${m.msgtype} ${part.media_id ?? ""}`);
    case "news":
      return articles((part.articles ?? []).map((a) => ({ ...a, picUrl: a.picurl })));
    case "msgmenu": {
      const box = el("div", "text", part.head_content ?? "");
      for (const item of part.list ?? []) box.append(el("div", "menu-item", `· ${item.content}`));
      if (part.tail_content) box.append(el("div", "", part.tail_content));
      return box;
    }
  }
  return el("div", "text", `[${m.msgtype}] ${JSON.stringify(part)}`);
}

function statusText(result) {
  const retries = result.attempts > 1
    ? ` (attempt ${result.attempts}/${result.maxAttempts} 第${result.attempts}次)`
    : "";
  if (result.status === "failed") return `✗ failed 失败${retries}: ${result.error ?? ""}`;
  return result.status === "replied" ? `✓ delivered, passive reply 已送达${retries}` : `✓ delivered 已送达${retries}`;
}

// Draw one event into the selected conversation's chat.
function draw(e) {
  switch (e.kind) {
    case "user": {
      const label = describeUserEvent(e.input);
      const node = label ? line("event", label) : bubble("me", userBubbleBody(e.input), "", e.at);
      const status = el("div", "status", "sending 发送中…");
      status.dataset.state = "pending";
      (label ? node : node.firstChild).append(status);
      if (e.msgId) status.title = `MsgId ${e.msgId}`;
      state.bubbles.set(e.id, { status, done: false });
      break;
    }
    case "attempt": {
      const b = state.bubbles.get(e.id);
      if (!b || b.done) break;
      b.status.textContent = `attempt ${e.attempt}/${e.of} 第${e.attempt}次投递…`;
      b.status.dataset.state = e.attempt > 1 ? "retrying" : "pending";
      break;
    }
    case "result": {
      const b = state.bubbles.get(e.id);
      if (b) {
        b.done = true;
        b.status.textContent = statusText(e.result);
        b.status.dataset.state = e.result.status;
      }
      if (e.result.status === "failed") line("failure", e.result.shown || FAILURE_TEXT);
      if (e.result.reply) bubble("them", replyBody(e.result.reply), "被动回复 passive reply", e.at);
      break;
    }
    case "custom":
      showTyping(false);
      bubble("them", customBody(e), "客服消息 customer service", e.at);
      break;
    case "typing":
      showTyping(e.typing);
      break;
  }
}

function showTyping(on) {
  clearTimeout(state.typingTimer);
  $("typing").hidden = !on;
  if (on) state.typingTimer = setTimeout(() => ($("typing").hidden = true), TYPING_MS);
}

// Keep an event (once) and show it if its conversation is open.
function apply(e) {
  if (!e || typeof e.openid !== "string") return;
  const c = conversation(e.openid);
  if (e.seq !== undefined) {
    if (c.seqs.has(e.seq)) return;
    c.seqs.add(e.seq);
  }
  // A send's own answer and the socket bring the same message and result: whichever comes second is dropped.
  if ((e.kind === "user" || e.kind === "result") && c.events.some((x) => x.kind === e.kind && x.id === e.id)) return;
  if (e.kind !== "typing" && e.kind !== "attempt") {
    c.events.push(e);
    if (c.events.length > MAX_EVENTS) c.events.splice(0, c.events.length - MAX_EVENTS);
  }
  if (!state.users.some((u) => u.openid === e.openid)) {
    state.users.push({ openid: e.openid, nickname: "" });
    saveUsers();
  }
  if (e.openid === state.selected) {
    draw(e);
    scrollDown();
  } else if (e.kind === "custom" || e.kind === "result") {
    c.unread++;
    renderUsers();
  }
}

// ---- sending ----

// Images and voice notes go as their bytes (the simulator gives them a MediaId), everything else as JSON.
async function send(input) {
  const openid = state.selected;
  const id = randomId("m", 16);
  try {
    const file = input.type === "image" || input.type === "voice" ? input.file : null;
    const res = file
      ? await fetch(
        `${API}/${input.type}?openid=${encodeURIComponent(openid)}&id=${id}&name=${encodeURIComponent(file.name)}`,
        { method: "POST", body: file, headers: { "content-type": file.type } },
      )
      : await fetch(`${API}/send`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...input, openid, id }),
      });
    const answer = await res.json();
    if (!res.ok) throw new Error(answer.detail ?? `HTTP ${res.status}`);
    // Without the live socket the page still shows the message and what happened to it.
    const c = conversation(openid);
    if (!c.events.some((x) => x.kind === "user" && x.id === id)) {
      apply({ kind: "user", openid, id, msgId: answer.msgId, input: answer.input });
    }
    apply({ kind: "result", openid, id, result: answer });
  } catch (err) {
    if (openid === state.selected) line("failure", `✗ not sent 未发送: ${err.message}`);
  }
}

function askLocation() {
  const raw = prompt("纬度,经度 地点 — latitude,longitude label", "23.134521,113.358803 广州塔");
  if (raw === null) return null;
  const m = /^\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*(.*)$/.exec(raw);
  if (!m) {
    alert("Expected: latitude,longitude label");
    return null;
  }
  return { type: "location", latitude: m[1], longitude: m[2], scale: "15", label: m[3].trim() };
}

async function sendSampleVoice() {
  try {
    const res = await fetch(SAMPLE_VOICE);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const file = new File([await res.blob()], "voice.amr", { type: "audio/amr" });
    await send({ type: "voice", file });
  } catch (err) {
    line("failure", `✗ not sent 未发送: cannot load the sample voice note (${err.message})`);
  }
}

function onAction(action) {
  switch (action) {
    case "subscribe":
    case "unsubscribe":
      return send({ type: action });
    case "click": {
      const eventKey = prompt("Menu EventKey 菜单 key", "V1001_TODAY_MUSIC");
      return eventKey ? send({ type: "click", eventKey }) : undefined;
    }
    case "scan": {
      const scene = prompt("QR scene 二维码场景值", "1001");
      return scene ? send({ type: "scan", scene }) : undefined;
    }
    case "location": {
      const input = askLocation();
      return input ? send(input) : undefined;
    }
    case "image":
      return $("image-file").click();
    case "voice":
      return sendSampleVoice();
  }
}

// ---- live socket ----

function setLive(stateName, text) {
  const live = $("live");
  live.dataset.state = stateName;
  live.textContent = text;
}

function showSettings(s) {
  state.settings = s;
  $("setup").textContent = `${s.account} · ${s.mode} · webhook ${s.webhook} · ${s.timeoutMs} ms × ${s.maxAttempts}`;
  $("title").textContent = `${nickname(state.selected)} → ${s.account}`;
}

async function loadHistory(openid) {
  try {
    const res = await fetch(`${API}/history?openid=${encodeURIComponent(openid)}`);
    if (!res.ok) return;
    const { events } = await res.json();
    for (const e of events) apply(e);
  } catch {
    // The socket's reconnect loads it again.
  }
}

function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${API}/live`;
  const socket = new WebSocket(url);
  state.socket = socket;
  setLive("connecting", "connecting 连接中…");
  socket.addEventListener("message", (m) => {
    let e;
    try {
      e = JSON.parse(m.data);
    } catch {
      return;
    }
    if (e.kind === "hello") {
      state.backoff = MIN_BACKOFF_MS;
      // The simulator restarted: its history (and event numbering) starts over.
      if (state.run && state.run !== e.run) {
        state.conversations.clear();
        renderUsers();
        renderChat();
      }
      state.run = e.run;
      setLive("open", "live 已连接");
      showSettings(e);
      for (const u of state.users) loadHistory(u.openid);
      return;
    }
    apply(e);
  });
  socket.addEventListener("close", () => {
    setLive("closed", "offline 未连接 — reconnecting");
    setTimeout(connect, state.backoff);
    state.backoff = Math.min(state.backoff * 2, MAX_BACKOFF_MS);
  });
}

// ---- start ----

function start() {
  loadUsers();
  $("add-user").addEventListener("submit", (e) => {
    e.preventDefault();
    const openid = $("new-openid").value.trim();
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(openid)) return;
    addUser(openid, $("new-nickname").value.trim());
    $("new-openid").value = randomId("o", 27);
    $("new-nickname").value = "";
  });
  $("compose").addEventListener("submit", (e) => {
    e.preventDefault();
    const content = $("text").value;
    if (content.trim() === "") return;
    $("text").value = "";
    send({ type: "text", content });
  });
  $("text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("compose").requestSubmit();
    }
  });
  for (const b of document.querySelectorAll("[data-action]")) {
    b.addEventListener("click", () => onAction(b.dataset.action));
  }
  $("image-file").addEventListener("change", () => {
    const file = $("image-file").files[0];
    $("image-file").value = "";
    if (file) send({ type: "image", file });
  });
  fetch(`${API}/config`).then((r) => r.json()).then(showSettings).catch(() => {});
  select(state.selected);
  connect();
}

start();
