/**
 * The hub's side of the supervisor's view (issue 22), on a real in-memory SQLite store with recording peers: only a
 * supervisor's or admin's session that asks to watch is a watcher; a transfer told to several agents and a hand-over
 * of its unread messages reach the watchers once; a watcher that stops reading is closed (4001), the agents' own
 * sessions untouched; a closed watcher is forgotten.
 */

import assert from "node:assert/strict";
import { Hub } from "../../src/hub/hub.ts";
import type { Message } from "../../src/core/message.ts";
import { Close } from "../../src/envelope/protocol.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import { Peer } from "./peer.ts";
import { userText } from "./fixtures.ts";

function testHub(maxBufferedBytes?: number) {
  const store = new SqliteStore({ path: ":memory:" });
  const hub = new Hub({ store, roles: { sup: "supervisor", adm: "admin" }, agents: ["a1", "a2"], maxBufferedBytes });
  return { hub, store, [Symbol.asyncDispose]: () => store.close() };
}

function msg(contact: string): Message {
  return userText(contact, { channel: "http_push" });
}

/** The watch frames (code 109) a peer got, as [owner, what] pairs, and forgets them. */
function watched(p: Peer): [string, string][] {
  return p.sent.splice(0).map((s) => JSON.parse(s)).filter((e) => e.result.code === 109).map((e) => [
    e.data.agent_id,
    e.data.type === "message" ? e.data.item.id : e.data.action,
  ]);
}

Deno.test("team (hub): only a supervisor's or admin's session that asks is a watcher", async () => {
  await using t = testHub();
  const sup = new Peer(), adm = new Peer(), supQuiet = new Peer(), a2 = new Peer();
  await t.hub.connect("sup", sup, { acks: true, watch: true });
  await t.hub.connect("adm", adm, { acks: true, watch: true });
  await t.hub.connect("sup", supQuiet, { acks: true });
  await t.hub.connect("a2", a2, { acks: true, watch: true });
  for (const p of [sup, adm, supQuiet, a2]) p.sent.length = 0;
  const m = msg("u1");
  await t.hub.accept(m, { agent: "a1" });
  assert.deepEqual(watched(sup), [["a1", m.id]]);
  assert.deepEqual(watched(adm), [["a1", m.id]]);
  assert.deepEqual(watched(supQuiet), [], "a supervisor's session that did not ask");
  assert.deepEqual(watched(a2), [], "an agent's, though it asked");
});

Deno.test("team (hub): a transfer and the hand-over of its unread messages reach the watchers once", async () => {
  await using t = testHub();
  const sup = new Peer(), a1 = new Peer(), a2 = new Peer();
  await t.hub.connect("sup", sup, { acks: true, watch: true });
  await t.hub.connect("a1", a1, { acks: true });
  await t.hub.connect("a2", a2, { acks: true });
  const m = msg("u1");
  await t.hub.accept(m, { agent: "a1" });
  assert.deepEqual(watched(sup), [["a1", m.id]]);
  // a1 transfers (told to a1 and a2); a2 gets the unread message handed over; the watcher sees the transfer once.
  await t.hub.workflow.transfer("a1", "u1", "a2");
  assert.deepEqual(watched(sup), [["a2", "transferred"]]);
  assert.ok(a2.sent.some((s) => JSON.parse(s).data.id === m.id), "a2 got the message handed over");
  // A supervisor assigns it back: once again.
  await t.hub.team.assign("sup", "u1", "a1", "a2");
  assert.deepEqual(watched(sup), [["a1", "transferred"]]);
  // A note: the owner's sessions (108) and the watchers (109), once.
  a1.sent.length = 0;
  const note = await t.hub.team.note("sup", "u1", "跟进");
  assert.deepEqual(watched(sup), [["a1", note.id]]);
  assert.deepEqual(a1.sent.map((s) => JSON.parse(s).result.code), [108]);
});

Deno.test("team (hub): a watcher that stops reading is closed; the agents' sessions go on; closed ones are forgotten", async () => {
  await using t = testHub(1000);
  const slow = new Peer(), fine = new Peer(), a1 = new Peer();
  await t.hub.connect("sup", slow, { acks: true, watch: true });
  await t.hub.connect("adm", fine, { acks: true, watch: true });
  await t.hub.connect("a1", a1, { acks: true });
  slow.bufferedAmount = 5000;
  const m = msg("u1");
  await t.hub.accept(m, { agent: "a1" });
  assert.equal(slow.closed?.code, Close.tooSlow);
  assert.match(slow.closed?.reason ?? "", /while watching/);
  assert.deepEqual(watched(fine), [["a1", m.id]]);
  assert.equal(a1.closed, undefined);
  assert.ok(a1.sent.some((s) => JSON.parse(s).data.id === m.id));
  // The closed session goes (as its socket's close would say); the next message is not written to it.
  t.hub.disconnect("sup", slow);
  slow.sent.length = 0;
  await t.hub.accept(msg("u1"), { agent: "a1" });
  assert.deepEqual(slow.sent, []);
  assert.equal(watched(fine).length, 1);
});
