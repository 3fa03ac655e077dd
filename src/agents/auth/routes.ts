/**
 * The sign-in endpoints, answering in seed 003's shape `{"code","msg","content"}`:
 * `GET /auth/websocket?uid&timestamp&sign` (the seed's token request),
 * `POST /auth/login` (the agent page's form) and `GET /auth/me` (who a token is).
 *
 * @module
 */

import { Hono } from "hono";
import { readBody } from "../../core/body.ts";
import { KefuError } from "../../core/errors.ts";
import { agentAuth, type AgentEnv } from "../middleware.ts";
import { type Auth, AuthCode, AuthError, type IssuedToken } from "./auth.ts";

/** Seed 003's token request path. */
export const TOKEN_PATH = "/auth/websocket";
/** The agent page's login. */
export const LOGIN_PATH = "/auth/login";
/** Who the token (or, with sign-in off, `?userid=`) is. */
export const ME_PATH = "/auth/me";

/** The `code` of a request made while sign-in is off. */
const AUTH_OFF = 40005;

function issued(t: IssuedToken, agent: { id: string; name: string }) {
  return { code: AuthCode.ok, msg: "SUCCESS", content: { token: t.token, expire: t.expire, agent } };
}

/** The sign-in routes, as a sub-app to mount at `/`; `auth` undefined: sign-in is off. */
export function authRoutes(auth: Auth | undefined): Hono<AgentEnv> {
  const app = new Hono<AgentEnv>();
  // Seed 003's answers carry their own code: a refusal is {"code":≠0,"msg"}, not kefu's error envelope.
  app.onError((e, c) => {
    if (e instanceof AuthError) return c.json({ code: e.code, msg: e.message }, e.status as 400);
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
    const t = await auth.login(id.trim(), password);
    return c.json(issued(t, { id: id.trim(), name: name(id.trim()) }));
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
