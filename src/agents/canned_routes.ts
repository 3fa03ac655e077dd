/**
 * The canned replies' HTTP API (issue 22), beside the workplace's: list the team's and one's own, add, change and
 * delete them. Who may do what is the hub's {@link CannedReplies}; here are the wire shapes.
 *
 * @module
 */

import { Hono, type MiddlewareHandler } from "hono";
import { KefuError, quote } from "../core/errors.ts";
import { leadsTeam } from "../core/roles.ts";
import { BASE_PATH } from "../envelope/protocol.ts";
import type { CannedReplies } from "../hub/canned.ts";
import type { Hub } from "../hub/hub.ts";
import type { CannedReply, CannedScope } from "../store/store.ts";
import type { AgentEnv } from "./middleware.ts";
import { bodyOf, ok } from "./workplace_routes.ts";

/** The canned replies: GET lists, POST adds; `/:id` takes PATCH and DELETE. */
export const CANNED_PATH = `${BASE_PATH}/canned_replies`;

/** A canned reply as the API shows it to `agent`. */
export interface CannedView {
  id: number;
  scope: CannedScope;
  shortcut: string;
  text: string;
  /** The agent a personal reply belongs to; "" for the team's. */
  owner: string;
  updated_by: string;
  /** Epoch ms. */
  updated_at: number;
  /** Whether the agent asking may change or delete it. */
  editable: boolean;
}

function viewOf(canned: CannedReplies, agent: string, r: CannedReply): CannedView {
  return {
    id: r.id,
    scope: r.scope,
    shortcut: r.shortcut,
    text: r.text,
    owner: r.owner,
    updated_by: r.updatedBy,
    updated_at: r.updatedAt,
    editable: canned.mayEdit(agent, r),
  };
}

function idOf(raw: string): number {
  const id = Number(raw);
  if (!/^[1-9][0-9]{0,14}$/.test(raw) || !Number.isSafeInteger(id)) {
    throw new KefuError("wrong_type", `the canned reply id must be a positive integer, got ${quote(raw)}`);
  }
  return id;
}

function scopeOf(value: unknown): CannedScope {
  if (value === undefined) return "personal";
  if (value === "team" || value === "personal") return value;
  throw new KefuError("wrong_type", `scope must be "personal" (default) or "team", got ${quote(value)}`);
}

/** The canned replies' routes, as a sub-app to mount at `/`; `auth` resolves the agent. */
export function cannedRoutes(options: { hub: Hub; auth: MiddlewareHandler<AgentEnv> }): Hono<AgentEnv> {
  const { hub } = options;
  const canned = hub.canned;
  const app = new Hono<AgentEnv>();
  app.use(CANNED_PATH, options.auth);
  app.use(`${CANNED_PATH}/*`, options.auth);

  app.get(CANNED_PATH, async (c) => {
    const agent = c.var.agent;
    const role = hub.roleOf(agent);
    const replies = (await canned.list(agent)).map((r) => viewOf(canned, agent, r));
    return c.json(ok({ agent_id: agent, role, manages_team: leadsTeam(role), replies }));
  });

  app.post(CANNED_PATH, async (c) => {
    const body = await bodyOf(c.req.raw);
    const agent = c.var.agent;
    const reply = await canned.add(agent, scopeOf(body.scope), { shortcut: body.shortcut, text: body.text });
    return c.json(ok({ reply: viewOf(canned, agent, reply) }, "added"));
  });

  app.patch(`${CANNED_PATH}/:id`, async (c) => {
    const id = idOf(c.req.param("id"));
    const body = await bodyOf(c.req.raw);
    if (body.scope !== undefined) {
      throw new KefuError("wrong_type", "a canned reply's scope cannot change: add a new one and delete this one");
    }
    const agent = c.var.agent;
    const reply = await canned.update(agent, id, { shortcut: body.shortcut, text: body.text });
    return c.json(ok({ reply: viewOf(canned, agent, reply) }, "changed"));
  });

  app.delete(`${CANNED_PATH}/:id`, async (c) => {
    const id = idOf(c.req.param("id"));
    await canned.remove(c.var.agent, id);
    return c.json(ok({ id }, "deleted"));
  });
  return app;
}
