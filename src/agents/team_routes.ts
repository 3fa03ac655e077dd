/**
 * The supervisor's HTTP API (issue 22), beside the workplace's: every agent's state and the queue
 * (`GET …/team`), every conversation (`GET …/team/contacts`), a contact assigned to any agent
 * (`POST …/contacts/{id}/assign`), and internal notes (`POST …/contacts/{id}/notes`, also for a contact's own agent).
 * Who may do what is the hub's {@link Team}; here are the wire shapes.
 *
 * @module
 */

import { Hono, type MiddlewareHandler } from "hono";
import { KefuError, quote } from "../core/errors.ts";
import { historyItem } from "../envelope/items.ts";
import { CONTACTS_PATH, TEAM_PATH } from "../envelope/protocol.ts";
import type { Hub } from "../hub/hub.ts";
import { queueWithPlaces } from "./availability_routes.ts";
import type { AgentEnv } from "./middleware.ts";
import { bodyOf, ok } from "./workplace_routes.ts";

function stringField(body: Record<string, unknown>, field: string, what: string): string {
  const v = body[field];
  if (typeof v !== "string" || v.trim() === "") {
    throw new KefuError("missing_field", `${field} is required: ${what}, got ${quote(v)}`);
  }
  return v.trim();
}

/** The supervisor's routes, as a sub-app to mount at `/`; `auth` resolves the agent. */
export function teamRoutes(options: { hub: Hub; auth: MiddlewareHandler<AgentEnv> }): Hono<AgentEnv> {
  const { hub } = options;
  const team = hub.team;
  const app = new Hono<AgentEnv>();
  app.use(TEAM_PATH, options.auth);
  app.use(`${TEAM_PATH}/*`, options.auth);
  // `${CONTACTS_PATH}/*` is behind the workplace's auth already.

  app.get(TEAM_PATH, async (c) => {
    const { agents, queue } = await team.state(c.var.agent);
    return c.json(ok({ agent_id: c.var.agent, role: hub.roleOf(c.var.agent), agents, queue }));
  });

  // ?agent_id= one agent's conversations; ?queue=1 the users waiting for an agent; neither: all of them.
  app.get(`${TEAM_PATH}/contacts`, async (c) => {
    const agent = c.req.query("agent_id")?.trim();
    const queue = /^(1|true|yes)$/i.test(c.req.query("queue") ?? "");
    if (queue && agent) throw new KefuError("wrong_type", "ask for ?agent_id= or ?queue=1, not both");
    if (agent === "") throw new KefuError("missing_field", "?agent_id= is empty: name the agent (or ?queue=1)");
    const contacts = await team.contacts(c.var.agent, queue ? "" : agent);
    return c.json(ok({ contacts: queue ? await queueWithPlaces(hub, contacts) : contacts }));
  });

  app.post(`${CONTACTS_PATH}/:contact_id/assign`, async (c) => {
    const body = await bodyOf(c.req.raw);
    const to = stringField(body, "to_agent_id", "the agent who gets the contact");
    const from = body.from_agent_id;
    if (from !== undefined && typeof from !== "string") {
      throw new KefuError("wrong_type", `from_agent_id must be a string (the owner you saw), got ${quote(from)}`);
    }
    const contact = await team.assign(c.var.agent, c.req.param("contact_id"), to, from?.trim());
    return c.json(ok({ contact }, "assigned"));
  });

  app.post(`${CONTACTS_PATH}/:contact_id/notes`, async (c) => {
    const body = await bodyOf(c.req.raw);
    const note = await team.note(c.var.agent, c.req.param("contact_id"), body.content);
    return c.json(ok({ note: historyItem(note, "sent") }, "noted"));
  });
  return app;
}
