/**
 * Who the agent is, for every agent-facing endpoint: one Hono middleware sets
 * `c.var.agent`, and the handlers act only for that agent.
 *
 * With sign-in on (`AGENT_SECRET`), the agent is the one a token names, from
 * `?token=`, `Authorization: Bearer` or the agent page's session cookie
 * (HttpOnly, SameSite=Strict; `?token=cookie` names it explicitly); a request
 * without a valid one is refused (401), and a `?userid=` that names another
 * agent is refused (403).
 *
 * A socket is refused before it is upgraded (HTTP 401) when it has no token or
 * one kefu did not issue: kefu reads no frame from a peer that cannot sign in
 * (an upgraded socket reads a whole frame, up to 64 MiB, even after its close).
 * A token kefu issued but no longer takes (expired, revoked, its agent removed)
 * and another agent's `?userid=` are upgraded and closed at once with 4401 /
 * 4403 and the reason, since a browser never sees the status of a refused
 * handshake and the page signs in again on them.
 *
 * With sign-in off, the agent is `?userid=` (or the seed test page's
 * `?userId=`), as the seed has it.
 *
 * @module
 */

import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { timingSafeEqual } from "node:crypto";
import { KefuError, quote } from "../core/errors.ts";
import { MAX_ID_LENGTH } from "../core/message.ts";
import { Close } from "../envelope/protocol.ts";
import type { Auth, TokenClaims } from "./auth/auth.ts";

/**
 * The Hono environment of agent routes: the resolved agent id, when its token expires (epoch s), and the token's
 * claims (with sign-in on).
 */
export interface AgentEnv {
  Variables: { agent: string; expiresAt?: number; claims?: TokenClaims };
}

/** The agent page's session cookie: the token, HttpOnly and SameSite=Strict (set by POST /auth/login). */
export const SESSION_COOKIE = "kefu_session";
/** `?token=cookie` (or `Bearer cookie`): "my token is the session cookie", for clients that always send one. */
export const COOKIE_TOKEN = "cookie";

// Control characters would corrupt log lines and close reasons.
const AGENT_ID_RE = new RegExp(`^[^\\x00-\\x1f\\x7f]{1,${MAX_ID_LENGTH}}$`);

const HOW = "sign in: POST /auth/login, or GET /auth/websocket?uid&timestamp&sign (seed 003), then send the token " +
  "as ?token= or Authorization: Bearer";

/** The agent id from `?userid=` or `?userId=` (the seed's test page); throws `KefuError` when missing or malformed. */
export function agentIdFrom(query: (name: string) => string | undefined): string {
  const id = (query("userid") ?? query("userId"))?.trim() ?? "";
  if (id === "") {
    throw new KefuError("missing_userid", "the agent id is required: add ?userid=ID (or ?userId=ID) to the URL");
  }
  if (!AGENT_ID_RE.test(id)) {
    throw new KefuError(
      "invalid_userid",
      `cannot use agent id ${quote(id)}: 1–${MAX_ID_LENGTH} characters, no control characters`,
    );
  }
  return id;
}

/** The token of a request: `?token=`, else `Authorization: Bearer …`, else the session cookie. */
export function tokenOf(c: Context): string | undefined {
  return presented(c)?.token;
}

// The token and whether it came from the cookie (which a browser adds by itself: its Origin is checked).
function presented(c: Context): { token: string; cookie: boolean } | undefined {
  const h = c.req.header("authorization");
  const given = c.req.query("token")?.trim() || (h === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(h))?.[1];
  if (given && given !== COOKIE_TOKEN) return { token: given, cookie: false };
  const cookie = getCookie(c, SESSION_COOKIE);
  return cookie ? { token: cookie, cookie: true } : undefined;
}

/**
 * Whether a request may use the session cookie: SameSite=Strict keeps other sites' requests from carrying it, and
 * an `Origin` other than kefu's own (another port or subdomain of the same site) is refused too.
 */
export function sameOrigin(c: Context, publicOrigin?: string): boolean {
  const origin = c.req.header("origin");
  if (origin === undefined || origin === "null") return origin === undefined;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  if (publicOrigin !== undefined && origin === publicOrigin) return true;
  return host === (c.req.header("x-forwarded-host") ?? c.req.header("host"));
}

function resolve(c: Context<AgentEnv>, auth: Auth | undefined): void {
  if (auth === undefined) {
    c.set("agent", agentIdFrom((name) => c.req.query(name)));
    return;
  }
  const p = presented(c);
  if (p === undefined) throw new KefuError("auth_required", `this endpoint needs an agent's token: ${HOW}`, 401);
  if (p.cookie && !sameOrigin(c)) {
    throw new KefuError(
      "auth_required",
      `the session cookie is not taken from the page of another origin (${quote(c.req.header("origin"))}): ${HOW}`,
      401,
    );
  }
  const claims = auth.verify(p.token);
  const { agent, expiresAt } = claims;
  const asked = (c.req.query("userid") ?? c.req.query("userId"))?.trim();
  if (asked && asked !== agent) {
    throw new KefuError("agent_mismatch", `the token is for agent ${quote(agent)}, not ${quote(asked)}`, 403);
  }
  c.set("agent", agent);
  c.set("expiresAt", expiresAt);
  c.set("claims", claims);
}

/**
 * Whether a request may read the service's details (`/healthz`): sign-in off, an agent's valid token (header, query
 * or the page's cookie from its own origin), or the operators' `METRICS_TOKEN` as a Bearer token.
 */
export function mayReadDetails(c: Context, auth: Auth | undefined, metricsToken?: string): boolean {
  if (auth === undefined) return true;
  const p = presented(c);
  if (p === undefined) return false;
  if (metricsToken !== undefined && !p.cookie) {
    const [x, y] = [new TextEncoder().encode(p.token), new TextEncoder().encode(metricsToken)];
    if (x.length === y.length && timingSafeEqual(x, y)) return true;
  }
  if (p.cookie && !sameOrigin(c)) return false;
  try {
    auth.verify(p.token);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolve the agent of a request into `c.var.agent`, or refuse it saying what is missing and how to sign in.
 * `auth` undefined: sign-in is off.
 */
export function agentAuth(auth: Auth | undefined): MiddlewareHandler<AgentEnv> {
  return async (c, next) => {
    try {
      resolve(c, auth);
    } catch (e) {
      if (!(e instanceof KefuError) || (e.status !== 401 && e.status !== 403)) throw e;
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") throw e;
      // No token, or none kefu issued: refused before the upgrade. A token kefu issued gets its close code.
      if (auth === undefined || !issuedByKefu(c, auth)) throw e;
      return refuseSocket(c.req.raw, e);
    }
    await next();
  };
}

function issuedByKefu(c: Context, auth: Auth): boolean {
  const p = presented(c);
  if (p === undefined) return false;
  try {
    auth.signed(p.token);
    return true;
  } catch {
    return false;
  }
}

// Upgrade, then close with 4401 (4403 for another agent's id) and the reason: what a browser's WebSocket can read.
// Only for tokens kefu issued: their holders signed in once, and the page needs the code to ask for a sign-in.
function refuseSocket(req: Request, e: KefuError): Response {
  const offered = req.headers.get("sec-websocket-protocol");
  const protocol = offered?.split(",")[0].trim() || undefined;
  const { socket, response } = Deno.upgradeWebSocket(req, { protocol });
  const code = e.status === 403 ? Close.forbidden : Close.unauthorized;
  socket.onopen = () => socket.close(code, closeReason(`${e.kind}: ${e.message}`));
  return response;
}

// A close reason is at most 123 bytes of UTF-8.
function closeReason(s: string): string {
  const bytes = new TextEncoder().encode(s);
  if (bytes.length <= 123) return s;
  return new TextDecoder().decode(bytes.slice(0, 120)).replace(/\uFFFD$/, "") + "…";
}
