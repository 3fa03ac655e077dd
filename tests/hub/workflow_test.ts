/**
 * The workflow's actions are conditional updates in the store: one that fails changes nothing (the contact and its
 * conversation stay as they were), an action that raced it sees the contact as the store has it, and two actions on
 * one user at once never both win.
 */

import assert from "node:assert/strict";
import { KefuError } from "../../src/core/errors.ts";
import type { Message } from "../../src/core/message.ts";
import { Peer } from "./peer.ts";
import { testHub, userText } from "./fixtures.ts";

function text(contact: string, id: string, content: string): Message {
  return userText(contact, { id, content, sendTime: 1_700_000_000 });
}

Deno.test("workflow: a failed transfer changes nothing, and an action that raced it sees the contact as it is", async () => {
  await using t = testHub();
  const { hub, store } = t;
  await hub.connect("A", new Peer());
  await hub.connect("B", new Peer());
  await hub.accept(text("u1", "1", "hi"), { agent: "A" });

  // The transfer's commit fails once.
  const update = store.updateContact.bind(store);
  let failures = 1;
  store.updateContact = (...args) => failures-- > 0 ? Promise.reject(new Error("disk full")) : update(...args);
  const transfer = hub.workflow.transfer("A", "u1", "B", "VIP");
  // B acts while the transfer is under way: the contact is not B's.
  const resolve = hub.workflow.setStatus("B", "u1", "resolved");
  await assert.rejects(transfer, (e) => {
    assert.ok(e instanceof KefuError && e.kind === "store_failed" && e.status === 503);
    assert.match(e.message, /^cannot transfer contact "u1": .*disk full.*nothing changed/);
    return true;
  });
  await assert.rejects(resolve, (e) => e instanceof KefuError && e.kind === "not_your_contact");
  assert.deepEqual((await hub.contactsOf("A")).map((c) => [c.contact_id, c.agent_id, c.status]), [["u1", "A", "open"]]);
  assert.deepEqual(await hub.contactsOf("B"), []);
  const transferLines = async () =>
    (await store.history("u1", { limit: 50 })).filter((m) => m.extra?.action === "transferred");
  assert.deepEqual(await transferLines(), [], "no system line without its change");

  // Tried again, it works: the store has it, with one line.
  const view = await hub.workflow.transfer("A", "u1", "B", "VIP");
  assert.equal(view.agent_id, "B");
  const kept = await store.contact("u1");
  assert.deepEqual([kept?.agent, kept?.status], ["B", "open"]);
  assert.deepEqual((await transferLines()).map((m) => m.extra?.note), ["VIP"]);
});

Deno.test("workflow: a user's message that was not kept neither reopens the conversation nor moves its preview", async () => {
  await using t = testHub();
  const { hub, store } = t;
  await hub.connect("A", new Peer());
  await hub.accept(text("u1", "1", "first"), { agent: "A" });
  await hub.workflow.setStatus("A", "u1", "resolved");
  const [before] = await hub.contactsOf("A");

  const acceptInbound = store.acceptInbound.bind(store);
  let failures = 1;
  store.acceptInbound = (input) => failures-- > 0 ? Promise.reject(new Error("disk full")) : acceptInbound(input);
  await assert.rejects(
    hub.accept({ ...text("u1", "2", "NOT KEPT"), sendTime: 1_700_000_100 }),
    (e) => e instanceof KefuError && e.kind === "store_failed",
  );
  const [after] = await hub.contactsOf("A");
  assert.deepEqual(
    [after.status, after.last_message, after.last_message_time, after.last_inbound_time, after.unread],
    [before.status, before.last_message, before.last_message_time, before.last_inbound_time, before.unread],
  );
  assert.equal(after.status, "resolved");

  // Sent again, it is kept and reopens the conversation.
  const r = await hub.accept({ ...text("u1", "2", "kept now"), sendTime: 1_700_000_100 });
  assert.deepEqual([r.status, r.agent], ["delivered", "A"]);
  const [reopened] = await hub.contactsOf("A");
  assert.deepEqual([reopened.status, reopened.last_message?.content, reopened.last_inbound_time], [
    "open",
    "kept now",
    1_700_000_100,
  ]);
});

Deno.test("workflow: two transfers of one contact at once: one wins, the other is told it changed meanwhile", async () => {
  await using t = testHub();
  const { hub, store } = t;
  for (const a of ["A", "B", "C"]) await hub.connect(a, new Peer());
  await hub.accept(text("u1", "1", "hi"), { agent: "A" });
  const outcomes = await Promise.allSettled([
    hub.workflow.transfer("A", "u1", "B"),
    hub.workflow.transfer("A", "u1", "C"),
  ]);
  const won = outcomes.filter((o) => o.status === "fulfilled");
  const lost = outcomes.filter((o) => o.status === "rejected");
  assert.equal(won.length, 1);
  assert.equal(lost.length, 1);
  const e = lost[0].reason;
  assert.ok(e instanceof KefuError && e.status === 409 && e.kind === "conflict", String(e));
  const winner = won[0].value.agent_id;
  assert.equal((await store.contact("u1"))?.agent, winner);
  const lines = (await hub.history(winner, "u1", undefined, 50)).filter((m) => m.extra?.action === "transferred");
  assert.deepEqual(lines.map((m) => m.extra?.to_agent_id), [winner], "only the winner's line is kept");
});

Deno.test("workflow: contact, queue and agents are read from the store", async () => {
  await using t = testHub();
  const { hub } = t;
  await hub.connect("A", new Peer());
  await hub.accept(text("u1", "1", "hi"), { agent: "A" });
  await hub.accept(text("u2", "2", "hey"), { agent: "B" });
  assert.deepEqual(await hub.workflow.agents(), [
    { agent_id: "A", online: true, contacts: 1 },
    { agent_id: "B", online: false, contacts: 1 },
  ]);
  assert.equal((await hub.workflow.contact("A", "u1")).agent_id, "A");
  await assert.rejects(hub.workflow.contact("A", "u2"), (e) => e instanceof KefuError && e.status === 403);
  await assert.rejects(hub.workflow.contact("A", "nobody"), (e) => e instanceof KefuError && e.status === 404);
  // Put back in the queue: any agent may read it, and it is in the queue.
  await hub.workflow.transfer("A", "u1", "", "");
  assert.deepEqual((await hub.workflow.queue()).map((c) => [c.contact_id, c.status]), [["u1", "queued"]]);
  assert.equal((await hub.workflow.contact("B", "u1")).agent_id, "");
  assert.deepEqual((await hub.workflow.agents()).map((a) => [a.agent_id, a.contacts]), [["A", 0], ["B", 1]]);
});
