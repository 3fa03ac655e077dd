// Sign-in: with sign-in on (kefu has AGENT_SECRET) the agent signs in; the token (never the password) is kept in
// sessionStorage and goes with every agent request: the socket's ?token=, Authorization: Bearer, media ?token=.

import { HEALTH_PATH, LOGIN_PATH, ME_PATH } from "./protocol.js";
import { state } from "./state.js";
import { $, text, toast } from "./dom.js";
import { t } from "./i18n.js";
import { formatTime, nowSeconds } from "./time.js";
import { reasonOf } from "./api.js";
import { connect, setStatus } from "./socket.js";
import { resetConversations } from "./contacts.js";
import { keepSelection } from "./state.js";

export const TOKEN_KEY = "kefu.token";
// With sign-in off: the agent this tab is connected as, so that a reload connects again ("" after Disconnect).
export const AGENT_KEY = "kefu.agent";
// setTimeout's longest wait (about 24.8 days); a token that lives longer re-arms its expiry timer.
const MAX_TIMER_MS = 2 ** 31 - 1;

export function showAuthMessage(message) {
  $("auth-message").textContent = message;
  $("auth-message").hidden = message === "";
}

// kefu refused the token (a 401, or a socket closed with 4401/4403): it has sign-in on, whatever the page believed.
// `reason` is "kind: detail", the same from either path.
export function refused(reason) {
  state.auth = "on";
  signOut(t("auth.refused", { reason }));
}

// Which controls show: with sign-in on, the login form until signed in, then the agent's name and Sign out.
export function renderAuth() {
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
  $("who").title = signedIn ? t("auth.who", { agent: state.agent, until: formatTime(state.expireAt) }) : "";
}

export async function detectAuth() {
  try {
    const res = await fetch(HEALTH_PATH, { cache: "no-store" });
    const body = await res.json();
    return body?.auth === "on" ? "on" : "off";
  } catch (e) {
    toast(t("auth.cannotDetect", { path: HEALTH_PATH, reason: e.message }));
    return "off";
  }
}

export async function login() {
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
    showAuthMessage(t("auth.cannotSignIn", { reason: e.message }));
    $("login-password").focus();
  } finally {
    $("login-password").value = "";
    $("login").disabled = false;
  }
}

// After a reload: the kept token is checked before the page reconnects with it.
export async function resume(token) {
  setStatus("connecting", t("status.checking"));
  try {
    const res = await fetch(ME_PATH, { cache: "no-store", headers: { authorization: `Bearer ${token}` } });
    const body = await res.json().catch(() => null);
    if (!res.ok || body?.code !== 0) {
      signOut(t("auth.keptInvalid", { reason: reasonOf(body, res.status) }));
      return;
    }
    // expire_at is on the server's clock: move it to this browser's by the answer's Date header.
    const serverNow = Date.parse(res.headers.get("date") ?? "") / 1000;
    const skew = Number.isFinite(serverNow) ? serverNow - nowSeconds() : 0;
    signIn(token, body.content.agent, Number(body.content.expire_at) - skew);
  } catch (e) {
    signOut(t("auth.cannotCheck", { reason: e.message }));
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

export function watchExpiry() {
  clearTimeout(state.expiryTimer);
  const left = state.expireAt * 1000 - Date.now();
  if (left <= 0) {
    signOut(t("auth.expired", { at: formatTime(state.expireAt) }));
    return;
  }
  state.expiryTimer = setTimeout(watchExpiry, Math.min(left, MAX_TIMER_MS));
}

// Forget the token and everything shown for its agent; `message` says why (empty: the agent chose to).
export function signOut(message) {
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
  setStatus("closed", t("status.signedOut"));
  $($("login-id").value === "" ? "login-id" : "login-password").focus();
}
