/**
 * The workplace's availability routes (issue 22): an agent sets 在线 / 忙碌 / 离开 (`PATCH …/agents/me`), the agents
 * list shows each one's availability, open conversations and capacity, and the queue shows each waiting user's
 * position and waiting time. The decisions are the hub's {@link Assigner} (and the store's).
 *
 * @module
 */

import type { Hono } from "hono";
import { readBody } from "../core/body.ts";
import { KefuError } from "../core/errors.ts";
import { AGENTS_PATH, Code } from "../envelope/protocol.ts";
import type { Hub } from "../hub/hub.ts";
import type { AgentEnv } from "./middleware.ts";

/** Where an agent sets its own availability. */
export const MY_AVAILABILITY_PATH = `${AGENTS_PATH}/me`;

const MAX_BODY_BYTES = 4 * 1024;

/** Add `PATCH …/agents/me` to the workplace's app (its auth middleware is the caller's). */
export function addAvailabilityRoutes(app: Hono<AgentEnv>, hub: Hub): void {
  app.patch(MY_AVAILABILITY_PATH, async (c) => {
    const text = (await readBody(c.req.raw, MAX_BODY_BYTES)).trim();
    let body: unknown;
    try {
      body = JSON.parse(text === "" ? "{}" : text);
    } catch (e) {
      throw new KefuError("invalid_json", `cannot read the request body as JSON: ${(e as Error).message}`);
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw new KefuError("invalid_json", "the request body must be a JSON object");
    }
    const value = (body as Record<string, unknown>).availability;
    if (value === undefined) {
      throw new KefuError("missing_field", "availability is required: online, busy or away");
    }
    const agent = await hub.assignment.setAvailability(c.var.agent, value);
    return c.json({ data: { agent }, result: { code: Code.ok, message: "common" } });
  });
}

/** The agents list's entries with availability, open conversations and capacity beside who is online. */
export async function withAvailability<T extends { agent_id: string }>(hub: Hub, agents: T[]) {
  const states = await hub.assignment.agents(agents.map((a) => a.agent_id));
  return agents.map((a, i) => ({
    ...a,
    availability: states[i].availability,
    availability_since: states[i].since,
    open: states[i].open,
    capacity: states[i].capacity,
  }));
}

/** The queue's contacts, longest-waiting first, each with its position and waiting seconds. */
export async function queueWithPlaces<T extends { contact_id: string }>(hub: Hub, contacts: T[]) {
  const places = new Map((await hub.assignment.queue()).map((p) => [p.contact_id, p]));
  return contacts
    .map((c) => ({
      ...c,
      queue_position: places.get(c.contact_id)?.position ?? 0,
      waiting_seconds: places.get(c.contact_id)?.waiting_seconds ?? 0,
    }))
    .sort((a, b) => a.queue_position - b.queue_position);
}
