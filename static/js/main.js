// kefu's agent page: one WebSocket per agent, contacts on the left, the open conversation on the right.
// This module wires the page together and starts it; each concern is a module of its own.

import { state } from "./state.js";
import { $ } from "./dom.js";
import { getLang, onLangChange, setLang, startLang } from "./i18n.js";
import { nowSeconds } from "./time.js";
import { AGENT_KEY, detectAuth, login, renderAuth, resume, signOut, TOKEN_KEY, watchExpiry } from "./auth.js";
import { connect, disconnect, renderHeartbeat, renderStatus } from "./socket.js";
import { handleFrame } from "./frames.js";
import { readOpenConversation, refreshTimes, renderContacts, select, wireContactList } from "./contacts.js";
import { flush } from "./batch.js";
import { followEnd, loadHistory, renderConversation, renderHeader, toEnd } from "./conversation.js";
import { updateReplyControls, wireComposer } from "./composer.js";
import { closeLightbox } from "./media.js";
import { attentionLog, renderBell, updateTitle, wireBell } from "./attention.js";
import { onWindowTick, renderWindowLine } from "./reply_window.js";
import { renderQueue, wireWorkflow } from "./workflow.js";
import { offerSimulate, wireSimulate } from "./simulate.js";
import { keepSelection } from "./state.js";
import { renderCanned, wireCanned } from "./canned.js";
import { wireTags } from "./tags.js";
import { wireAvailability } from "./availability.js";
import { renderTeam, team, wireTeam } from "./team.js";

// For the browser tests (and a curious agent's console): the state and the frame handler, which tests feed frames
// the server cannot be made to send on demand. `handleFrame` stays a global as the older tests call it.
globalThis.kefu = {
  state,
  handleFrame,
  nowSeconds,
  watchExpiry,
  attentionLog,
  // The list's rows and the conversation's scroll, drawn now rather than at the end of the task.
  flushContacts: flush,
  select,
  setLang,
  loadHistory,
  team,
};
globalThis.handleFrame = handleFrame;

function wire() {
  $("connect-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (state.wanted) disconnect();
    else connect();
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
  followEnd();
  $("lightbox").addEventListener("click", (e) => {
    if (e.target !== $("lightbox-open")) closeLightbox();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("lightbox").hidden) {
      e.preventDefault();
      closeLightbox();
    }
  });
  $("lang").addEventListener("click", () => setLang(getLang() === "zh" ? "en" : "zh"));
  // A desktop notification's click opens its conversation.
  document.addEventListener("kefu:open", (e) => state.contacts.has(e.detail) && select(e.detail));
  wireContactList();
  wireComposer();
  wireCanned();
  wireTags();
  wireAvailability();
  wireTeam();
  wireWorkflow();
  wireSimulate();
  wireBell();
  // Everything drawn is drawn again in the new language.
  onLangChange(() => {
    renderAuth();
    renderStatus();
    renderHeartbeat();
    renderBell();
    renderContacts();
    renderQueue();
    renderCanned();
    renderTeam();
    renderConversation("keep");
    updateTitle();
  });
  // Relative times and the reply window move on with the clock.
  onWindowTick(() => {
    renderWindowLine(state.contacts.get(state.selected));
    updateReplyControls();
  });
  setInterval(() => {
    refreshTimes();
    renderHeader();
    updateReplyControls();
  }, 60_000);
  // The title counts unread messages of every tab's list; another tab's changes come over its own socket.
  document.addEventListener("visibilitychange", () => {
    // Back in view: the conversation left open is read now (not while the tab was hidden).
    readOpenConversation();
    updateTitle();
    // A hidden tab's timers are slowed: its relative times catch up when it is shown.
    if (!document.hidden) refreshTimes();
  });
}

async function init() {
  startLang();
  const params = new URLSearchParams(location.search);
  const fromUrl = (params.get("userid") ?? params.get("userId") ?? "").trim();
  if (fromUrl !== "") $("agent-id").value = fromUrl;
  $("login-id").value = fromUrl;
  $("sim-to").value = $("agent-id").value;
  wire();
  offerSimulate();
  renderStatus();
  renderBell();
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

init();
