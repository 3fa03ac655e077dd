/**
 * Who the agent is, for every agent-facing endpoint: one Hono middleware sets
 * `c.var.agent`, and the handlers act only for that agent.
 *
 * With sign-in on (`AGENT_SECRET`), the agent is the one a token names, from
 * `?token=` or `Authorization: Bearer`; a request without a valid one is
 * refused (401, or a socket closed with 4401 right after the upgrade, since a
 * browser never sees the status of a refused handshake), and a `?userid=` that
 * names another agent is refused (403 / 4403). With sign-in off, the agent is
 * `?userid=` (or the seed test page's `?userId=`), as the seed has it.
 *
 * @module
 */

import type { Context, MiddlewareHandler } from "hono";
import { KefuError, quote } from "../core/errors.ts";
import { MAX_ID_LENGTH } from "../core/message.ts";
import { Close } from "../envelope/protocol.ts";
import type { Auth } from "./auth/auth.ts";

/** The Hono environment of agent routes: the resolved agent id, and when its token expires (epoch s). */
export interface AgentEnv {
  Variables: { agent: string; expiresAt?: number };
}

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

/** The token of a request: `?token=`, else `Authorization: Bearer …`. */
export function tokenOf(c: Context): string | undefined {
  const q = c.req.query("token")?.trim();
  if (q) return q;
  const h = c.req.header("authorization");
  const m = h === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

function resolve(c: Context<AgentEnv>, auth: Auth | undefined): void {
  if (auth === undefined) {
    c.set("agent", agentIdFrom((name) => c.req.query(name)));
    return;
  }
  const token = tokenOf(c);
  if (token === undefined) throw new KefuError("auth_required", `this endpoint needs an agent's token: ${HOW}`, 401);
  const { agent, expiresAt } = auth.verify(token);
  const asked = (c.req.query("userid") ?? c.req.query("userId"))?.trim();
  if (asked && asked !== agent) {
    throw new KefuError("agent_mismatch", `the token is for agent ${quote(agent)}, not ${quote(asked)}`, 403);
  }
  c.set("agent", agent);
  c.set("expiresAt", expiresAt);
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
      return refuseSocket(c.req.raw, e);
    }
    await next();
  };
}

// Upgrade, then close with 4401 (4403 for another agent's id) and the reason: what a browser's WebSocket can read.
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
