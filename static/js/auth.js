// Sign-in: with sign-in on (kefu has AGENT_SECRET) the agent signs in once for every tab of the browser. kefu keeps
// the token in an HttpOnly, SameSite=Strict cookie: this script never holds it (an injected script could read
// storage, not the cookie), the browser adds it to the socket's handshake and to <img>/<audio> requests (no token in
// a URL), and signing out revokes it on the server, so every tab ends with it. The page's requests name it with the
// marker COOKIE_TOKEN ("cookie") where they used to put the token. Other tabs hear of a sign-in or sign-out at once
// over a BroadcastChannel (no secret goes over it).

import { LOGIN_PATH, ME_PATH } from "./protocol.js";
import { state } from "./state.js";
import { $, text, toast } from "./dom.js";
import { t } from "./i18n.js";
import { formatTime, nowSeconds } from "./time.js";
import { connect, setStatus } from "./socket.js";
import { resetConversations } from "./contacts.js";
import { keepSelection } from "./state.js";

// What this tab keeps in sessionStorage under TOKEN_KEY while signed in: the marker, never the token.
export const TOKEN_KEY = "kefu.token";
/** "My token is the session cookie": what state.token holds while signed in. */
export const COOKIE_TOKEN = "cookie";
// Sign out (the token is revoked on the server and the cookie cleared). Not in protocol.js: only this module uses it.
const LOGOUT_PATH = "/auth/logout";
// Tabs of this browser tell each other of a sign-in and a sign-out.
const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("kefu.auth") : null;
// Why the kept sign-in ended, found while detecting sign-in, said when the login form shows.
let pending = "";
// With sign-in off: the agent this tab is connected as, so that a reload connects again ("" after Disconnect).
export const AGENT_KEY = "kefu.agent";
// setTimeout's longest wait (about 24.8 days); a token that lives longer re-arms its expiry timer.
const MAX_TIMER_MS = 2 ** 31 - 1;

export function showAuthMessage(message) {
  $("auth-message").textContent = message;
  $("auth-message").hidden = message === "";
}

// What kefu's refusal means, in the page's language: `kind` is kefu's error kind (or seed 003's code).
function refusalText(kind) {
  switch (kind) {
    case "token_expired":
      return t("auth.expiredNow");
    case "token_revoked":
      return t("auth.revoked");
    case "invalid_token":
      return t("auth.invalid");
    case "auth_required":
      return t("auth.required");
    case "agent_mismatch":
      return t("auth.mismatch");
    default:
      return t("auth.refusedPlain");
  }
}

// kefu refused the token (a 401, or a socket closed with 4401/4403): it has sign-in on, whatever the page believed.
// `reason` is "kind: detail", the same from either path; the page says it in its own language.
export function refused(reason) {
  state.auth = "on";
  const kind = /^([a-z_]+):/.exec(String(reason))?.[1] ?? "";
  signOut(refusalText(kind));
}

// Why a login was refused, in the page's language (seed 003's codes: 40004 wrong password, 40006 throttled).
function loginRefusal(res, body) {
  if (res.status === 429) {
    const s = Number(res.headers.get("retry-after") ?? body?.retry_after ?? 1);
    return t("auth.tooMany", { s: Number.isFinite(s) && s > 0 ? s : 1 });
  }
  if (body?.code === 40004) return t("auth.wrongPassword");
  if (res.status === 400) return t("auth.badRequest");
  if (res.status === 404) return t("auth.offNow");
  return t("auth.failedStatus", { status: res.status });
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

// Whether kefu has sign-in on, asked of /auth/me: 200 (this browser is signed in: the cookie), 401 (on, not signed
// in), anything else (off: it wants ?userid=). A kept sign-in is then resumed by main.js through TOKEN_KEY.
export async function detectAuth() {
  try {
    const res = await fetch(ME_PATH, { cache: "no-store" });
    const body = await res.json().catch(() => null);
    if (res.ok && body?.code === 0 && body.content?.auth === "on") {
      sessionStorage.setItem(TOKEN_KEY, COOKIE_TOKEN);
      return "on";
    }
    if (res.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      const kind = text(body?.data?.error);
      // No cookie at all is no news; an expired or revoked one is said.
      pending = kind === "auth_required" ? "" : refusalText(kind);
      return "on";
    }
    return "off";
  } catch (e) {
    toast(t("auth.cannotDetect", { path: ME_PATH, reason: e.message }));
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
    if (!res.ok || body?.code !== 0) {
      showAuthMessage(loginRefusal(res, body));
      $("login-password").focus();
      return;
    }
    const c = body.content;
    // kefu set the session cookie; the token in the answer (for seed 003 clients) is not kept. `expire` is a
    // duration: counted from this browser's clock, it does not depend on the server's.
    signIn(COOKIE_TOKEN, c.agent, nowSeconds() + Number(c.expire));
    channel?.postMessage({ type: "signed-in" });
  } catch {
    showAuthMessage(t("auth.network"));
    $("login-password").focus();
  } finally {
    $("login-password").value = "";
    $("login").disabled = false;
  }
}

// After a reload, or in a tab opened later: the session is checked before the page connects with it.
export async function resume(token = COOKIE_TOKEN) {
  setStatus("connecting", t("status.checking"));
  try {
    // The cookie goes by itself; a token kept by an older page goes as before.
    const headers = token === COOKIE_TOKEN ? {} : { authorization: `Bearer ${token}` };
    const res = await fetch(ME_PATH, { cache: "no-store", headers });
    const body = await res.json().catch(() => null);
    if (!res.ok || body?.code !== 0) {
      signOut(
        res.status === 401 ? refusalText(text(body?.data?.error)) : t("auth.failedStatus", { status: res.status }),
      );
      return;
    }
    // expire_at is on the server's clock: move it to this browser's by the answer's Date header.
    const serverNow = Date.parse(res.headers.get("date") ?? "") / 1000;
    const skew = Number.isFinite(serverNow) ? serverNow - nowSeconds() : 0;
    signIn(token === COOKIE_TOKEN ? COOKIE_TOKEN : token, body.content.agent, Number(body.content.expire_at) - skew);
  } catch {
    signOut(t("auth.network"));
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

// Forget the sign-in and everything shown for its agent; `message` says why (empty: the agent chose to, and then
// the sign-in ends everywhere: kefu revokes the token and clears the cookie, and the other tabs are told).
export function signOut(message) {
  if (message === "" && state.token !== "") {
    fetch(LOGOUT_PATH, { method: "POST", keepalive: true }).catch(() => {}).finally(() => {
      channel?.postMessage({ type: "signed-out" });
    });
  }
  if (message === "" && state.token === "" && pending !== "") {
    message = pending;
  }
  pending = "";
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

// Another tab signed in (this one resumes with the same cookie) or out (this one ends too).
channel?.addEventListener("message", (e) => {
  if (state.auth !== "on") return;
  if (e.data?.type === "signed-in" && state.token === "") resume(COOKIE_TOKEN);
  else if (e.data?.type === "signed-out" && state.token !== "") signOut(t("auth.signedOutElsewhere"));
});
