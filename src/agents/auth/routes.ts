/**
 * The sign-in endpoints, answering in seed 003's shape `{"code","msg","content"}`:
 * `GET /auth/websocket?uid&timestamp&sign` (the seed's token request),
 * `POST /auth/login` (the agent page's form; also sets the session cookie),
 * `POST /auth/logout` (revokes the token and clears the cookie: every tab of
 * the browser is signed out), `POST /auth/revoke` (an administrator, with
 * `Authorization: Bearer <AGENT_SECRET>`, revokes every token of an agent) and
 * `GET /auth/me` (who a token is).
 *
 * One sign-in serves every tab of a browser through an HttpOnly, SameSite=Strict
 * cookie rather than shared storage: the page's script never holds the token
 * (what an injected script could read from localStorage it cannot read from the
 * cookie), the browser adds it to the socket's handshake and to `<img>` and
 * `<audio>` requests, so no token rides in a URL, and a sign-out ends it for
 * every tab at once. Failed logins are throttled per agent id and per address.
 *
 * @module
 */

import { type Context, Hono } from "hono";
import { deleteCookie, setCookie } from "hono/cookie";
import { readBody } from "../../core/body.ts";
import { KefuError, quote } from "../../core/errors.ts";
import { agentAuth, type AgentEnv, SESSION_COOKIE, tokenOf as tokenOfRequest } from "../middleware.ts";
import { type Auth, AuthCode, AuthError, type IssuedToken } from "./auth.ts";
import { LoginThrottle, TooManyAttempts } from "./throttle.ts";

/** Seed 003's token request path. */
export const TOKEN_PATH = "/auth/websocket";
/** The agent page's login. */
export const LOGIN_PATH = "/auth/login";
/** Who the token (or, with sign-in off, `?userid=`) is. */
export const ME_PATH = "/auth/me";
/** Sign out: the token is revoked and the cookie cleared. */
export const LOGOUT_PATH = "/auth/logout";
/** An administrator revokes every token of an agent. */
export const REVOKE_PATH = "/auth/revoke";

/** The `code` of a request made while sign-in is off. */
const AUTH_OFF = 40005;

function issued(t: IssuedToken, agent: { id: string; name: string }) {
  return { code: AuthCode.ok, msg: "SUCCESS", content: { token: t.token, expire: t.expire, agent } };
}

/** Options of {@link authRoutes}. */
export interface AuthRoutesOptions {
  /** Failed logins per agent id and address; default a {@link LoginThrottle} of its own. */
  throttle?: LoginThrottle;
}

// The address a request came from (Deno.serve's remote address; behind a proxy, the proxy's).
function addressOf(c: Context): string {
  const info = c.env as { remoteAddr?: { hostname?: string } } | undefined;
  return info?.remoteAddr?.hostname ?? "unknown";
}

// The cookie is Secure when the page was reached over https (directly or through a proxy that says so).
function secureRequest(c: Context): boolean {
  return new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";
}

/** The sign-in routes, as a sub-app to mount at `/`; `auth` undefined: sign-in is off. */
export function authRoutes(auth: Auth | undefined, options: AuthRoutesOptions = {}): Hono<AgentEnv> {
  const app = new Hono<AgentEnv>();
  const throttle = options.throttle ?? new LoginThrottle();
  // Seed 003's answers carry their own code: a refusal is {"code":≠0,"msg"}, not kefu's error envelope.
  app.onError((e, c) => {
    if (e instanceof AuthError) return c.json({ code: e.code, msg: e.message }, e.status as 400);
    if (e instanceof TooManyAttempts) {
      return c.json({ code: AuthCode.throttled, msg: e.message, retry_after: e.retryAfter }, 429, {
        "retry-after": String(e.retryAfter),
      });
    }
    throw e;
  });
  const off = () =>
    new AuthError(
      AUTH_OFF,
      "agent sign-in is off on this kefu (no AGENT_SECRET): agents connect with ?userid=ID",
      404,
    );
  const name = (id: string) => auth?.agent(id)?.name || id;

  app.get(TOKEN_PATH, (c) => {
    if (auth === undefined) throw off();
    const t = auth.request(c.req.query("uid"), c.req.query("timestamp"), c.req.query("sign"));
    const id = c.req.query("uid")!.trim();
    return c.json(issued(t, { id, name: name(id) }));
  });

  app.post(LOGIN_PATH, async (c) => {
    if (auth === undefined) throw off();
    let body: { id?: unknown; password?: unknown };
    try {
      body = JSON.parse(await readBody(c.req.raw, 4096));
    } catch (e) {
      if (e instanceof KefuError && e.status === 413) throw e;
      throw new AuthError(AuthCode.badRequest, 'expected JSON {"id":"…","password":"…"}', 400);
    }
    const { id, password } = body ?? {};
    if (typeof id !== "string" || typeof password !== "string" || id.trim() === "") {
      throw new AuthError(AuthCode.badRequest, 'expected JSON {"id":"…","password":"…"}', 400);
    }
    const agent = id.trim();
    // Throttled before the password is checked: a blocked guess costs no scrypt.
    const keys = [`agent:${agent}`, `addr:${addressOf(c)}`];
    throttle.check(keys);
    let t: IssuedToken;
    try {
      t = await auth.login(agent, password);
    } catch (e) {
      if (e instanceof AuthError && e.code === AuthCode.wrongPassword) throttle.failed(keys);
      throw e;
    }
    throttle.succeeded(keys[0]);
    // The page's session: every tab of this browser is signed in by it; its script never reads it.
    setCookie(c, SESSION_COOKIE, t.token, {
      httpOnly: true,
      sameSite: "Strict",
      secure: secureRequest(c),
      path: "/",
      maxAge: t.expire,
    });
    return c.json(issued(t, { id: agent, name: name(agent) }));
  });

  // Signing out revokes the token (every tab and socket using it ends) and clears the cookie. A token already
  // refused has nothing left to revoke: the cookie is cleared all the same.
  app.post(LOGOUT_PATH, async (c) => {
    if (auth === undefined) throw off();
    await c.req.raw.body?.cancel();
    const token = tokenOfRequest(c);
    let revoked = false;
    if (token !== undefined) {
      try {
        const claims = auth.verify(token);
        await auth.revoke(claims.agent, claims.tokenId || undefined, claims.expiresAt);
        revoked = true;
      } catch (e) {
        if (!(e instanceof KefuError) || e.status !== 401) throw e;
      }
    }
    deleteCookie(c, SESSION_COOKIE, { path: "/", secure: secureRequest(c), httpOnly: true, sameSite: "Strict" });
    return c.json({ code: AuthCode.ok, msg: "SUCCESS", content: { revoked } });
  });

  // An administrator (whoever holds AGENT_SECRET, who could sign any token anyway) revokes an agent's tokens.
  app.post(REVOKE_PATH, async (c) => {
    if (auth === undefined) throw off();
    const h = c.req.header("authorization");
    const given = h === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(h)?.[1];
    if (given === undefined || !auth.isSecret(given)) {
      await c.req.raw.body?.cancel();
      throw new AuthError(AuthCode.wrongSign, "revoking needs Authorization: Bearer <AGENT_SECRET>", 401);
    }
    let body: { agent_id?: unknown };
    try {
      body = JSON.parse(await readBody(c.req.raw, 4096));
    } catch (e) {
      if (e instanceof KefuError && e.status === 413) throw e;
      throw new AuthError(AuthCode.badRequest, 'expected JSON {"agent_id":"…"}', 400);
    }
    const agent = typeof body?.agent_id === "string" ? body.agent_id.trim() : "";
    if (agent === "") throw new AuthError(AuthCode.badRequest, 'expected JSON {"agent_id":"…"}', 400);
    await auth.revoke(agent);
    return c.json({
      code: AuthCode.ok,
      msg: "SUCCESS",
      content: { agent_id: agent, detail: `every token of agent ${quote(agent)} issued until now is revoked` },
    });
  });

  app.get(ME_PATH, agentAuth(auth), (c) => {
    const agent = c.var.agent;
    return c.json({
      code: AuthCode.ok,
      msg: "SUCCESS",
      content: { agent: { id: agent, name: name(agent) }, auth: auth ? "on" : "off", expire_at: c.var.expiresAt },
    });
  });
  return app;
}
