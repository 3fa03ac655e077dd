/**
 * What the hub tests share: a user's message as a channel hands it to the hub, and a hub on a real (in-memory)
 * SQLite store.
 *
 * @module
 */

import type { Message } from "../../src/core/message.ts";
import { Hub, type HubOptions } from "../../src/hub/hub.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";

let seq = 0;

/** A user's text message: a fresh id (and content, and send time) unless `fields` say otherwise. */
export function userText(contact: string, fields: Partial<Message> = {}): Message {
  const n = ++seq;
  return {
    id: `m${n}`,
    direction: "in",
    channel: "wx_official_account",
    contact,
    agent: "",
    company: "",
    type: "text",
    content: `m${n}`,
    media: "",
    sendTime: 1_700_000_000 + n,
    name: contact,
    avatar: "",
    ...fields,
  };
}

/** A hub on a real (in-memory) SQLite store, closed when the test ends. */
export function testHub(options: Omit<HubOptions, "store"> = {}) {
  const store = new SqliteStore({ path: ":memory:" });
  const hub = new Hub({ store, ...options });
  return { hub, store, [Symbol.asyncDispose]: () => store.close() };
}
