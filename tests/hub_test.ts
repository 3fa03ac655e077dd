import assert from "node:assert/strict";
import { KefuError } from "../src/errors.ts";
import { type AgentPeer, Hub } from "../src/hub.ts";
import type { Message } from "../src/message.ts";

// The hub is transport-free; a peer here records what a socket would be sent.
class Peer implements AgentPeer {
  readyState = 1;
  sent: string[] = [];
  closed?: { code?: number; reason?: string };
  send(data: string) {
    this.sent.push(data);
  }
  close(code?: number, reason?: string) {
    this.readyState = 3;
    this.closed = { code, reason };
  }
  take(): { id: string; contact: string; content: string }[] {
    return this.sent.splice(0).map((s) => {
      const e = JSON.parse(s);
      return { id: e.data.id, contact: e.data.contact_id, content: e.data.msg.content };
    });
  }
}

let seq = 0;
function msg(contact: string, agent = "", content = `m${++seq}`): Message {
  return {
    id: String(++seq),
    direction: "in",
    channel: "wx_official_account",
    contact,
    agent,
    company: "",
    type: "text",
    content,
    media: "",
    sendTime: 1700000000 + seq,
    name: contact,
    avatar: "",
  };
}

Deno.test("hub: a new user goes to the online agent with the fewest contacts, then sticks", () => {
  const hub = new Hub();
  const a = new Peer(), b = new Peer();
  hub.connect("a", a);
  hub.connect("b", b);
  const owners = ["u1", "u2", "u3", "u4"].map((u) => hub.inbound(msg(u)).agent);
  assert.deepEqual(owners, ["a", "b", "a", "b"]);
  assert.equal(hub.inbound(msg("u1")).agent, "a");
  assert.equal(hub.inbound(msg("u2")).agent, "b");
  assert.deepEqual(a.take().map((m) => m.contact), ["u1", "u3", "u1"]);
  assert.deepEqual(b.take().map((m) => m.contact), ["u2", "u4", "u2"]);
  assert.deepEqual(hub.contactsOf("a").map((c) => c.contact_id).sort(), ["u1", "u3"]);
});

Deno.test("hub: an explicit agent takes the contact, even from another agent", () => {
  const hub = new Hub();
  const a = new Peer(), b = new Peer();
  hub.connect("a", a);
  hub.connect("b", b);
  hub.inbound(msg("u1"));
  assert.equal(hub.inbound(msg("u1", "b")).agent, "b");
  assert.deepEqual(hub.contactsOf("a"), []);
  assert.deepEqual(hub.contactsOf("b").map((c) => c.contact_id), ["u1"]);
  assert.equal(hub.inbound(msg("u1")).agent, "b");
});

Deno.test("hub: messages for an offline agent are held and delivered in order on connect", () => {
  const hub = new Hub();
  const results = [msg("u1", "a", "one"), msg("u2", "a", "two"), msg("u1", "a", "three")].map((m) => hub.inbound(m));
  assert.deepEqual(results.map((r) => r.status), ["queued", "queued", "queued"]);
  assert.equal(hub.heldFor("a"), 3);
  const a = new Peer();
  hub.connect("a", a);
  assert.deepEqual(a.take().map((m) => m.content), ["one", "two", "three"]);
  assert.equal(hub.heldFor("a"), 0);
  assert.equal(hub.inbound(msg("u1")).status, "delivered");
});

Deno.test("hub: with no agent online, new users wait and go to the first agent that connects", () => {
  const hub = new Hub();
  hub.inbound(msg("u1", "", "x"));
  hub.inbound(msg("u2", "", "y"));
  hub.inbound(msg("u1", "", "z"));
  assert.equal(hub.heldFor(""), 3);
  const a = new Peer();
  hub.connect("a", a);
  assert.deepEqual(a.take().map((m) => m.content), ["x", "y", "z"]);
  assert.deepEqual(hub.contactsOf("a").map((c) => c.contact_id).sort(), ["u1", "u2"]);
});

Deno.test("hub: a sticky user's messages wait for their own agent, not another one", () => {
  const hub = new Hub();
  const a = new Peer(), b = new Peer();
  hub.connect("a", a);
  hub.inbound(msg("u1"));
  hub.disconnect("a", a);
  hub.connect("b", b);
  assert.equal(hub.inbound(msg("u1", "", "later")).status, "queued");
  assert.deepEqual(b.take(), []);
  const a2 = new Peer();
  hub.connect("a", a2);
  assert.deepEqual(a2.take().map((m) => m.content), ["later"]);
});

Deno.test("hub: held queues are bounded; a full queue refuses with 503 and drops nothing", () => {
  const hub = new Hub({ maxHeldPerAgent: 2, maxHeldTotal: 3 });
  hub.inbound(msg("u1", "a"));
  hub.inbound(msg("u1", "a"));
  assert.throws(
    () => hub.inbound(msg("u1", "a")),
    (e) => e instanceof KefuError && e.status === 503 && e.kind === "queue_full",
  );
  hub.inbound(msg("u2", "b"));
  assert.throws(() => hub.inbound(msg("u2", "b")), /3 in all/);
  const retry = msg("u3", "c");
  assert.throws(() => hub.inbound({ ...retry }), /queue_full|3 in all/);
  const a = new Peer();
  hub.connect("a", a);
  assert.equal(a.take().length, 2);
  // The refused message was not remembered as seen: its retry is accepted.
  assert.equal(hub.inbound({ ...retry }).status, "queued");
});

Deno.test("hub: a repeated id from the same user is a duplicate and is not delivered again", () => {
  const hub = new Hub();
  const a = new Peer();
  hub.connect("a", a);
  const m = msg("u1");
  assert.equal(hub.inbound({ ...m }).status, "delivered");
  assert.equal(hub.inbound({ ...m }).status, "duplicate");
  assert.equal(hub.inbound({ ...m, contact: "u2" }).status, "delivered");
  assert.equal(a.take().length, 2);
});

Deno.test("hub: every socket of an agent gets its messages; past the limit the oldest is closed", () => {
  const hub = new Hub({ maxSocketsPerAgent: 2 });
  const t1 = new Peer(), t2 = new Peer(), t3 = new Peer();
  hub.connect("a", t1);
  hub.connect("a", t2);
  assert.equal(hub.inbound(msg("u1")).sockets, 2);
  assert.equal(t1.take().length, 1);
  assert.equal(t2.take().length, 1);
  hub.connect("a", t3);
  assert.equal(t1.closed?.code, 4000);
  assert.match(t1.closed?.reason ?? "", /more than 2 sockets/);
  assert.equal(hub.inbound(msg("u1")).sockets, 2);
  assert.equal(t1.take().length, 0);
});

Deno.test("hub: replies are accepted only for the agent's own contacts", () => {
  const replies: Message[] = [];
  const hub = new Hub({ onReply: (m) => replies.push(m) });
  hub.connect("a", new Peer());
  hub.connect("b", new Peer());
  hub.inbound(msg("u1", "a"));
  const reply = { ...msg("u1"), direction: "out" as const };
  hub.reply("a", reply);
  assert.equal(replies.length, 1);
  assert.equal(replies[0].agent, "a");
  for (const [agent, contact, why] of [["b", "u1", /another agent/], ["a", "nobody", /no such contact/]] as const) {
    assert.throws(
      () => hub.reply(agent, { ...reply, contact }),
      (e) => e instanceof KefuError && e.status === 403 && e.kind === "not_your_contact" && why.test(e.message),
    );
  }
  assert.equal(replies.length, 1);
});

Deno.test("hub: heartbeat reaches every open socket; closeAll closes them", () => {
  const hub = new Hub();
  const a = new Peer(), b = new Peer();
  hub.connect("a", a);
  hub.connect("b", b);
  hub.heartbeat();
  assert.deepEqual(JSON.parse(a.sent[0]).result, { code: 101, message: "heartbeat" });
  assert.equal(b.sent.length, 1);
  hub.closeAll(1001, "bye");
  assert.deepEqual([a.closed, b.closed], [{ code: 1001, reason: "bye" }, { code: 1001, reason: "bye" }]);
  assert.equal(hub.stats().sockets, 0);
});
