// The agent's WebSocket: one a tab, reconnected with back-off unless the agent disconnected, the server replaced
// it, or the sign-in was refused.

import { Close, WS_PATH } from "./protocol.js";
import { MIN_BACKOFF_MS, state } from "./state.js";
import { $, toast } from "./dom.js";
import { t } from "./i18n.js";
import { clock } from "./time.js";
import { AGENT_KEY, refused, showAuthMessage } from "./auth.js";
import { loadContacts, resetConversations } from "./contacts.js";
import { failPending, handleFrame } from "./frames.js";
import { updateReplyControls } from "./composer.js";
import { loadQueue } from "./workflow.js";
import { loadAvailability } from "./availability.js";
import { loadTeam } from "./team.js";
import { loadRole } from "./supervisor.js";

const MAX_BACKOFF_MS = 30_000;
// Replaced by a newer socket of the same agent: reconnecting would fight it.
const NO_RECONNECT_CODES = new Set([Close.replaced]);
// No valid token (missing, malformed, expired), or the token is another agent's: sign in again.
const SIGN_IN_CODES = new Set([Close.unauthorized, Close.forbidden]);

/** Status line: "open", "connecting", "reconnecting" or "closed", with what it says. */
let statusKey = { key: "status.disconnected", params: {} };

export function isOpen() {
  return state.socket !== null && state.socket.readyState === WebSocket.OPEN;
}

/** Send one envelope; false when the socket is not open. */
export function sendFrame(envelope) {
  if (!isOpen()) return false;
  state.socket.send(JSON.stringify(envelope));
  return true;
}

export function setStatus(name, key, params = {}) {
  statusKey = { key, params };
  const s = $("status");
  s.dataset.state = name;
  renderStatus();
  renderHeartbeat();
  updateReplyControls();
}

/** The status line and the Connect button in the current language. */
export function renderStatus() {
  $("status").textContent = t(statusKey.key, statusKey.params);
  $("connect").textContent = state.wanted ? t("connect.disconnect") : t("connect.connect");
}

// The first heartbeat comes 30 s after connecting: until then the line says when to expect it, not that it is missing.
export function renderHeartbeat() {
  const line = $("heartbeat");
  if (state.lastBeat) {
    line.textContent = t("heartbeat.last", { time: clock(state.lastBeat) });
    line.dataset.state = "beat";
  } else {
    line.textContent = isOpen() ? t("heartbeat.waiting") : "";
    line.dataset.state = isOpen() ? "waiting" : "";
  }
}

export function connect() {
  if (state.auth === "on" && state.token === "") {
    showAuthMessage(t("auth.signInFirst"));
    return;
  }
  const id = $("agent-id").value.trim();
  if (id === "") {
    toast(t("connect.needId"));
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

export function disconnect() {
  state.wanted = false;
  // A reload keeps the agent's choice: it does not connect again by itself.
  sessionStorage.setItem(AGENT_KEY, "");
  clearTimeout(state.reconnectTimer);
  if (state.socket) state.socket.close(Close.normal, "agent disconnected");
  else setStatus("closed", "status.disconnected");
}

function openSocket() {
  clearTimeout(state.reconnectTimer);
  // One socket a tab: one still open (Connect again, a new sign-in) is closed, and its events ignored.
  const old = state.socket;
  state.socket = null;
  if (old) old.close(Close.normal, "agent reconnected");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const agent = state.agent;
  // ack=1: the page sends read receipts for what it has shown, so kefu sends the rest again after a reconnect.
  const token = state.token ? `&token=${encodeURIComponent(state.token)}` : "";
  // watch=1: a supervisor's tab also hears every conversation of the team (issue 22); kefu ignores it for an agent.
  const ws = new WebSocket(
    `${scheme}//${location.host}${WS_PATH}?userid=${encodeURIComponent(agent)}${token}&ack=1&watch=1`,
  );
  state.socket = ws;
  setStatus("connecting", "status.connecting", { agent });
  ws.onopen = () => {
    if (state.socket !== ws) return;
    state.backoff = MIN_BACKOFF_MS;
    state.lastBeat = null;
    setStatus("open", "status.open", { agent });
    loadContacts(agent, true);
    loadQueue();
    loadAvailability();
    // The role first: only a supervisor or an admin asks for the team (an agent's page makes no request it is refused).
    loadRole().then((leads) => loadTeam(leads));
  };
  ws.onmessage = (e) => {
    if (state.socket === ws) handleFrame(e.data);
  };
  ws.onclose = (e) => {
    if (state.socket !== ws) return;
    state.socket = null;
    if (SIGN_IN_CODES.has(e.code)) {
      refused(e.reason || t("status.closedWith", { code: e.code }));
      return;
    }
    const why = { code: e.code, reason: e.reason ? `: ${e.reason}` : "" };
    failPending(t("reply.unconfirmedDetail"));
    if (state.wanted && !NO_RECONNECT_CODES.has(e.code)) {
      // A node draining (a rolling restart): the load balancer has another node for us now, so no back-off.
      const wait = e.code === Close.reconnect ? 0 : state.backoff;
      if (wait > 0) state.backoff = Math.min(state.backoff * 2, MAX_BACKOFF_MS);
      state.reconnectTimer = setTimeout(openSocket, wait);
      setStatus("reconnecting", "status.reconnecting", { ...why, s: wait / 1000 });
    } else {
      state.wanted = false;
      setStatus("closed", "status.closed", why);
    }
  };
}
