/**
 * Seeding a store directly, as kefu would have left it: one inbound message through the store's own accept path
 * (`acceptInbound`), the contact created or found by the store, owned by the agent asked for. Used by the store's
 * tests, the crash-test writer, the benchmark, the screenshots and the browser tests that start kefu on a store.
 *
 * @module
 */

import type { Message } from "../../src/core/message.ts";
import type { InboundOutcome, Store } from "../../src/store/store.ts";

/** How a seeded message is kept. */
export interface SeedOptions {
  /** The agent who takes the contact ("" leaves a new user waiting in the queue). */
  agent: string;
  /** `accepted` (unread, default), `acked` (read by the agent), `media` (waiting for its file). */
  state?: "accepted" | "acked" | "media";
  /** The message's send time (epoch seconds), instead of its own. */
  at?: number;
}

const NOBODY_AWAY = { has: () => false };

/**
 * Keep one inbound message: `message.contact` is the USER id (the store gives the contact id, the user id itself
 * for a user no other contact has). Resolves to the store's outcome (`duplicate` for a repeated key).
 */
export function seedInbound(store: Store, message: Message, options: SeedOptions): Promise<InboundOutcome> {
  const state = options.state ?? "accepted";
  return store.acceptInbound({
    message: options.at === undefined ? message : { ...message, sendTime: options.at },
    state: state === "media" ? "media" : "accepted",
    requested: options.agent,
    online: [],
    away: NOBODY_AWAY,
    readsOnWrite: () => state === "acked",
  });
}
