/**
 * The workplace's HTTP API: one contact, its name and note, transfer, resolve, reopen and take; the users waiting for
 * an agent; the agents to transfer to; search. Every route goes through {@link agentAuth}; the actions themselves
 * are the hub's {@link Workflow}.
 *
 * @module
 */

import { Hono } from "hono";
import { readBody } from "../core/body.ts";
import { KefuError, quote } from "../core/errors.ts";
import { AGENTS_PATH, Code, CONTACTS_PATH, QUEUE_PATH, SEARCH_PATH } from "../envelope/protocol.ts";
import type { Hub } from "../hub/hub.ts";
import { lastOf } from "../hub/routing.ts";
import type { Auth } from "./auth/auth.ts";
import {
  addAvailabilityRoutes,
  MY_AVAILABILITY_PATH,
  queueWithPlaces,
  withAvailability,
} from "./availability_routes.ts";
import { agentAuth, type AgentEnv } from "./middleware.ts";
import { cannedRoutes } from "./canned_routes.ts";
import { teamRoutes } from "./team_routes.ts";
import { reportsRoutes } from "../reports/routes.ts";

/** Options for {@link workplaceRoutes}. */
export interface WorkplaceRoutesOptions {
  hub: Hub;
  /** Agent sign-in; undefined: off. */
  auth?: Auth;
}

// An action's body is a small JSON object.
const MAX_BODY_BYTES = 16 * 1024;
const MAX_SEARCH_CHARS = 100;

/** A workplace answer: `data` and the result code. */
export function ok(data: unknown, message = "common") {
  return { data, result: { code: Code.ok, message } };
}

/** The JSON object of a request (an empty body is {}); a clear 400 for anything else. */
export async function bodyOf(req: Request): Promise<Record<string, unknown>> {
  const text = (await readBody(req, MAX_BODY_BYTES)).trim();
  if (text === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new KefuError("invalid_json", `cannot read the request body as JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new KefuError("invalid_json", "the request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new KefuError("wrong_type", `${field} must be a string, got ${quote(v)}`);
  return v;
}

/** The workplace routes, as a sub-app to mount at `/`. */
export function workplaceRoutes(options: WorkplaceRoutesOptions): Hono<AgentEnv> {
  const { hub } = options;
  const flow = hub.workflow;
  const app = new Hono<AgentEnv>();
  const auth = agentAuth(options.auth);
  for (const path of [`${CONTACTS_PATH}/*`, QUEUE_PATH, AGENTS_PATH, SEARCH_PATH]) app.use(path, auth);
  const one = `${CONTACTS_PATH}/:contact_id`;

  app.get(one, async (c) => c.json(ok({ contact: await flow.contact(c.var.agent, c.req.param("contact_id")) })));

  app.patch(one, async (c) => {
    const body = await bodyOf(c.req.raw);
    const displayName = optionalString(body, "display_name");
    const note = optionalString(body, "note");
    const tags = body.tags;
    if (tags !== undefined && (!Array.isArray(tags) || tags.some((t) => typeof t !== "string"))) {
      throw new KefuError("wrong_type", `tags must be an array of strings, got ${quote(tags)}`);
    }
    if (displayName === undefined && note === undefined && tags === undefined) {
      throw new KefuError("missing_field", "send display_name, note and/or tags: the fields to change");
    }
    const contact = await flow.update(c.var.agent, c.req.param("contact_id"), { displayName, note, tags });
    return c.json(ok({ contact }));
  });

  app.post(`${one}/transfer`, async (c) => {
    const body = await bodyOf(c.req.raw);
    const to = optionalString(body, "to_agent_id")?.trim();
    if (to === undefined || to === "") {
      throw new KefuError("missing_field", "to_agent_id is required: the agent who takes the contact over");
    }
    const note = optionalString(body, "note")?.trim() ?? "";
    const contact = await flow.transfer(c.var.agent, c.req.param("contact_id"), to, note);
    return c.json(ok({ contact }, "transferred"));
  });

  // Back to the queue: any agent may take the user from there.
  app.post(`${one}/release`, async (c) => {
    const note = optionalString(await bodyOf(c.req.raw), "note")?.trim() ?? "";
    const contact = await flow.transfer(c.var.agent, c.req.param("contact_id"), "", note);
    return c.json(ok({ contact }, "queued"));
  });

  app.post(`${one}/resolve`, async (c) => {
    await bodyOf(c.req.raw);
    return c.json(ok({ contact: await flow.setStatus(c.var.agent, c.req.param("contact_id"), "resolved") }));
  });

  app.post(`${one}/reopen`, async (c) => {
    await bodyOf(c.req.raw);
    return c.json(ok({ contact: await flow.setStatus(c.var.agent, c.req.param("contact_id"), "open") }));
  });

  app.post(`${one}/take`, async (c) => {
    await bodyOf(c.req.raw);
    return c.json(ok({ contact: await flow.take(c.var.agent, c.req.param("contact_id")) }));
  });

  app.get(QUEUE_PATH, async (c) => c.json(ok({ contacts: await queueWithPlaces(hub, await flow.queue()) })));

  app.get(
    AGENTS_PATH,
    async (c) => c.json(ok({ agent_id: c.var.agent, agents: await withAvailability(hub, await flow.agents()) })),
  );
  app.use(MY_AVAILABILITY_PATH, auth);
  addAvailabilityRoutes(app, hub);

  app.get(SEARCH_PATH, async (c) => {
    const q = c.req.query("q")?.trim() ?? "";
    if (q === "") throw new KefuError("missing_field", "?q= is required: the text to look for");
    if ([...q].length > MAX_SEARCH_CHARS) {
      throw new KefuError("wrong_type", `?q= is longer than ${MAX_SEARCH_CHARS} characters`);
    }
    const rawLimit = c.req.query("limit") ?? "50";
    const limit = Number(rawLimit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
      throw new KefuError("wrong_type", `?limit= must be an integer from 1 to 200, got ${quote(rawLimit)}`);
    }
    const found = await flow.search(c.var.agent, q, limit);
    const messages = found.messages.map((m) => {
      const l = lastOf(m);
      return {
        contact_id: m.contact,
        id: m.id,
        msg_type: m.type,
        content: m.content,
        direction: l.direction,
        send_time: m.sendTime,
        // A workflow line: what happened, for the page to word in its language.
        ...(l.event ? { event: l.event } : {}),
      };
    });
    return c.json(ok({ q, contacts: found.contacts, messages }));
  });
  app.route("/", cannedRoutes({ hub, auth }));
  app.route("/", teamRoutes({ hub, auth }));
  app.route("/", reportsRoutes({ hub, auth }));
  return app;
}
