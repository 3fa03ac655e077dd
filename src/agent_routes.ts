/**
 * Agent-facing HTTP: the WebSocket upgrade (on the seed's path and on `/` for
 * the seed's test page) and an agent's contact list.
 *
 * @module
 */

import { Hono } from "hono";
import { agentIdFrom, type AgentSocketOptions, isUpgrade, upgradeAgent } from "./agent_socket.ts";
import { KefuError } from "./errors.ts";
import { Code, CONTACTS_PATH, WS_PATH } from "./protocol.ts";

/** The agent routes, as a sub-app to mount at `/`. A plain GET `/` falls through to the static page. */
export function agentRoutes(options: AgentSocketOptions): Hono {
  const app = new Hono();
  app.get(WS_PATH, (c) => {
    if (!isUpgrade(c.req.raw)) {
      throw new KefuError("upgrade_required", `${WS_PATH} is a WebSocket endpoint: connect with ws://`, 426);
    }
    return upgradeAgent(c.req.raw, agentIdFrom(new URL(c.req.url)), options);
  });
  app.get("/", (c, next) => {
    if (!isUpgrade(c.req.raw)) return next();
    return upgradeAgent(c.req.raw, agentIdFrom(new URL(c.req.url)), options);
  });
  app.get(CONTACTS_PATH, (c) => {
    const agent = agentIdFrom(new URL(c.req.url));
    return c.json({
      data: { agent_id: agent, online: options.hub.isOnline(agent), contacts: options.hub.contactsOf(agent) },
      result: { code: Code.ok, message: "common" },
    });
  });
  return app;
}
