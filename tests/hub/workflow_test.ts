/**
 * The workflow's actions on one contact run one at a time, and a failed commit undoes exactly its own change: what
 * the hub keeps in memory and what the store keeps agree afterwards.
 */

import assert from "node:assert/strict";
import { KefuError } from "../../src/core/errors.ts";
import type { Message } from "../../src/core/message.ts";
import { Hub } from "../../src/hub/hub.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import { Peer } from "./peer.ts";

function text(contact: string, id: string, content: string): Message {
  return {
    id,
    direction: "in",
    channel: "wx_official_account",
    contact,
    agent: "",
    company: "",
    type: "text",
    content,
    media: "",
    sendTime: 1_700_000_000,
    name: contact,
    avatar: "",
  };
}

Deno.test("workflow: a failed transfer is undone, and an action that waited for it sees the contact as it is", async () => {
  const store = new SqliteStore({ path: ":memory:" });
  try {
    const hub = new Hub({ store });
    await hub.connect("A", new Peer());
    await hub.connect("B", new Peer());
    await hub.accept(text("u1", "1", "hi"), { agent: "A" });

    // The transfer's commit fails once.
    const save = store.saveOutbound.bind(store);
    let failures = 1;
    store.saveOutbound = (...args) => failures-- > 0 ? Promise.reject(new Error("disk full")) : save(...args);
    const transfer = hub.workflow.transfer("A", "u1", "B", "VIP");
    // B acts while the transfer is under way: it waits its turn, then finds the contact is not B's after all.
    const resolve = hub.workflow.setStatus("B", "u1", "resolved");
    await assert.rejects(transfer, (e) => {
      assert.ok(e instanceof KefuError && e.kind === "store_failed");
      assert.match(e.message, /^cannot transfer contact "u1": /);
      return true;
    });
    await assert.rejects(resolve, (e) => e instanceof KefuError && e.kind === "not_your_contact");
    assert.deepEqual(hub.contactsOf("A").map((c) => [c.contact_id, c.agent_id, c.status]), [["u1", "A", "open"]]);
    assert.deepEqual(hub.contactsOf("B"), []);

    // Tried again, it works; memory and store agree.
    const view = await hub.workflow.transfer("A", "u1", "B", "VIP");
    assert.equal(view.agent_id, "B");
    const kept = (await store.load()).contacts.find((c) => c.id === "u1")!;
    assert.deepEqual([kept.agent, kept.status], ["B", "open"]);
  } finally {
    await store.close();
  }
});

Deno.test("workflow: a user's message that was not kept neither reopens the conversation nor moves its preview", async () => {
  const store = new SqliteStore({ path: ":memory:" });
  try {
    const hub = new Hub({ store });
    await hub.connect("A", new Peer());
    await hub.accept(text("u1", "1", "first"), { agent: "A" });
    await hub.workflow.setStatus("A", "u1", "resolved");
    const [before] = hub.contactsOf("A");

    const save = store.saveInbound.bind(store);
    let failures = 1;
    store.saveInbound = (...args) => failures-- > 0 ? Promise.reject(new Error("disk full")) : save(...args);
    await assert.rejects(
      hub.accept({ ...text("u1", "2", "NOT KEPT"), sendTime: 1_700_000_100 }),
      (e) => e instanceof KefuError && e.kind === "store_failed",
    );
    const [after] = hub.contactsOf("A");
    assert.deepEqual(
      [after.status, after.last_message, after.last_message_time, after.last_inbound_time, after.unread],
      [before.status, before.last_message, before.last_message_time, before.last_inbound_time, before.unread],
    );
    assert.equal(after.status, "resolved");
  } finally {
    await store.close();
  }
});
