/**
 * Who the agent is, for every agent-facing endpoint: one Hono middleware sets
 * `c.var.agent`, and the handlers act only for that agent. Today the id comes
 * from `?userid=` (or the seed test page's `?userId=`); signed tokens go here.
 *
 * @module
 */

import { createMiddleware } from "hono/factory";
import { KefuError, quote } from "../core/errors.ts";
import { MAX_ID_LENGTH } from "../core/message.ts";

/** The Hono environment of agent routes: the resolved agent id. */
export interface AgentEnv {
  Variables: { agent: string };
}

// Control characters would corrupt log lines and close reasons.
const AGENT_ID_RE = new RegExp(`^[^\\x00-\\x1f\\x7f]{1,${MAX_ID_LENGTH}}$`);

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

/** Resolve the agent of a request into `c.var.agent`, or refuse it (400) saying what is missing. */
export const agentAuth = createMiddleware<AgentEnv>(async (c, next) => {
  c.set("agent", agentIdFrom((name) => c.req.query(name)));
  await next();
});
