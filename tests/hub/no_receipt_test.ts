/**
 * An agent without read receipts (the seed's protocol) reads what left kefu for its open socket; what had not left
 * when the socket closed, or reached no socket, comes with its next connect or live (issue 19: the rolling restart's
 * `F got every accepted message; missing: rr1211`). The peers read `bufferedAmount` as Deno's WebSocket does: 0 once
 * closing, whatever the socket still held.
 */

import assert from "node:assert/strict";
import type { Message } from "../../src/core/message.ts";
import { Close } from "../../src/envelope/protocol.ts";
import { type AgentBus, LocalBus } from "../../src/hub/bus.ts";
import type { Delivery } from "../../src/hub/delivery.ts";
import { Hub } from "../../src/hub/hub.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import type { InboundInput, InboundOutcome, MessageRef, Store } from "../../src/store/store.ts";
import { eventually } from "../helpers.ts";
import { Peer } from "./peer.ts";
import { userText } from "./fixtures.ts";

function msg(contact: string, content: string): Message {
  return userText(contact, { content });
}

// A real SQLite store (in memory), closed when the test ends.
function sqlite() {
  const store = new SqliteStore({ path: ":memory:" });
  return { store, [Symbol.asyncDispose]: () => store.close() };
}

function contents(p: Peer): string[] {
  return p.take().map((m) => m.content);
}

Deno.test("no receipts: a drain closing a socket with bytes left keeps them unread for the next connect", async () => {
  await using t = sqlite();
  const { store } = t;
  const hub = new Hub({ store });
  const f = new Peer(), g = new Peer();
  await hub.connect("f", f);
  await hub.connect("g", g);
  // f's socket is still writing when the drain begins; g's buffer is empty (what it got left kefu).
  f.bufferedAmount = 100;
  await hub.accept(msg("u1", "in flight"), { agent: "f" });
  await hub.accept(msg("u2", "gone out"), { agent: "g" });
  assert.deepEqual(contents(f), ["in flight"]);
  assert.deepEqual(contents(g), ["gone out"]);
  await hub.closeAll(Close.reconnect, "draining", 0);
  assert.equal(f.closed?.code, Close.reconnect);
  assert.equal(g.closed?.code, Close.reconnect);
  hub.disconnect("f", f);
  hub.disconnect("g", g);
  const f2 = new Peer(), g2 = new Peer();
  await hub.connect("f", f2);
  await hub.connect("g", g2);
  assert.deepEqual(contents(f2), ["in flight"], "what f's socket held comes with its next connect");
  assert.deepEqual(contents(g2), [], "what left for g's socket was read");
});

Deno.test("no receipts: a drain requeues only after the bus's reads under way are committed", async () => {
  await using t = sqlite();
  const { store } = t;
  // A bus (a cluster node's) whose batched "read on write" for the message is still under way as the drain begins.
  const order: string[] = [];
  let release!: () => void;
  const late = new Promise<void>((resolve) => release = resolve);
  class SlowBus extends LocalBus {
    async settled() {
      await late;
      order.push("settled");
    }
  }
  const bus = (local: Delivery): AgentBus => new SlowBus(local);
  const requeue = store.requeue.bind(store);
  store.requeue = (refs: readonly MessageRef[]) => {
    order.push("requeue");
    return requeue(refs);
  };
  const hub = new Hub({ store, bus });
  const f = new Peer();
  await hub.connect("f", f);
  f.bufferedAmount = 100;
  await hub.accept(msg("u1", "held"), { agent: "f" });
  const closing = hub.closeAll(Close.reconnect, "draining", 0);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(order, [], "nothing requeued while a read is under way");
  release();
  await closing;
  assert.deepEqual(order, ["settled", "requeue"]);
});

Deno.test("no receipts: a drain lets a socket finish its write before the close; what left was read", async () => {
  await using t = sqlite();
  const { store } = t;
  const hub = new Hub({ store });
  const f = new Peer();
  await hub.connect("f", f);
  f.bufferedAmount = 100;
  await hub.accept(msg("u1", "leaving"), { agent: "f" });
  assert.deepEqual(contents(f), ["leaving"]);
  const closing = hub.closeAll(Close.reconnect, "draining", 60_000);
  // Nothing new is written to it while it finishes; it is closed once its buffer is empty.
  await hub.accept(msg("u1", "after the drain began"), { agent: "f" });
  assert.deepEqual(contents(f), []);
  assert.equal(f.closed, undefined, "not closed while its write is under way");
  f.bufferedAmount = 0;
  await eventually("f is closed", () => f.closed?.code === Close.reconnect);
  hub.disconnect("f", f);
  await closing;
  const f2 = new Peer();
  await hub.connect("f", f2);
  assert.deepEqual(contents(f2), ["after the drain began"], "what left for f's socket was read; the rest comes now");
});

Deno.test("no receipts: a backlog whose socket closes before it was written stays unread", async () => {
  await using t = sqlite();
  const { store } = t;
  const hub = new Hub({ store });
  const old = new Peer();
  await hub.connect("f", old);
  hub.disconnect("f", old);
  await hub.accept(msg("u1", "waited"), { agent: "f" });
  const f = new Peer();
  // The backlog goes out into a socket whose buffer does not empty before the drain closes it.
  f.bufferedAmount = 100;
  await hub.connect("f", f);
  assert.deepEqual(contents(f), ["waited"]);
  await hub.closeAll(Close.reconnect, "draining", 0);
  hub.disconnect("f", f);
  const f2 = new Peer();
  await hub.connect("f", f2);
  assert.deepEqual(contents(f2), ["waited"]);
});

// The real store, with two holds a test releases: the answer of acceptInbound (after its commit, and without the early
// `decided`, as PostgreSQL does), and the start of a requeue. Only the order of events is the test's.
function heldStore(store: SqliteStore) {
  const decided = Promise.withResolvers<void>();
  const accepted = Promise.withResolvers<void>();
  const requeueAsked = Promise.withResolvers<void>();
  const requeue = Promise.withResolvers<void>();
  const held = new Proxy(store, {
    get(target, prop) {
      if (prop === "acceptInbound") {
        return async (input: InboundInput): Promise<InboundOutcome> => {
          const o = await target.acceptInbound({ ...input, decided: undefined });
          decided.resolve();
          await accepted.promise;
          return o;
        };
      }
      if (prop === "requeue") {
        return async (refs: readonly MessageRef[]): Promise<number> => {
          requeueAsked.resolve();
          await requeue.promise;
          return target.requeue(refs);
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  }) as Store;
  return { held, decided, accepted, requeueAsked, requeue };
}

Deno.test("no receipts: a message stored read whose socket closed reaches the session opened before its requeue", async () => {
  await using t = sqlite();
  const { store } = t;
  const h = heldStore(store);
  const hub = new Hub({ store: h.held });
  const f1 = new Peer();
  await hub.connect("f", f1);
  // Stored read (f1 reads on write); before it is written, f1 is closed (a drain) and f reconnects.
  const accepting = hub.accept(msg("u1", "raced"), { agent: "f" });
  await h.decided.promise;
  assert.equal(await store.stats().then((s) => s.unread), 0, "stored as read");
  f1.close(Close.reconnect, "draining");
  hub.disconnect("f", f1);
  h.accepted.resolve();
  await h.requeueAsked.promise;
  // The new session reads its backlog while the requeue is still on its way: the message is not in it.
  const f2 = new Peer();
  await hub.connect("f", f2);
  assert.deepEqual(contents(f2), []);
  h.requeue.resolve();
  await accepting;
  assert.deepEqual(contents(f1), [], "the closed socket got nothing");
  const got: string[] = [];
  await eventually("f's open session got the message", () => (got.push(...contents(f2)), got.length > 0));
  assert.deepEqual(got, ["raced"]);
  await eventually("f read it (it sends no receipts)", async () => await hub.waiting() === 0);
});

Deno.test("no receipts: the requeued message reaches a session on another hub this one does not know of yet", async () => {
  await using t = sqlite();
  const h = heldStore(t.store);
  // Two hubs over one store; each delivers to every hub's sessions (as the broker does), but knows only its own
  // sessions to be online: the other's presence is not heard yet (a draining node, a moment after the reconnect).
  const all: Delivery[] = [];
  const bus = (local: Delivery): AgentBus => {
    all.push(local);
    return {
      deliver: (agent, m) => ({
        sockets: all.reduce((n, d) => n + d.message(agent, m).sockets, 0),
        needsAck: all.some((d) => d !== local && d.isOnline(agent)),
      }),
      send: (agent, event) => local.send(agent, event),
      readsOnWrite: (agent) => local.readsOnWrite(agent),
      isOnline: (agent) => local.isOnline(agent),
      online: () => local.agents(),
    };
  };
  const x = new Hub({ store: h.held, bus });
  const z = new Hub({ store: t.store, bus });
  const f1 = new Peer();
  await x.connect("f", f1);
  const accepting = x.accept(msg("u1", "raced"), { agent: "f" });
  await h.decided.promise;
  // x drains: f1 is closed before x writes the message, which reaches no session; f reconnects to z, whose backlog
  // is read before x's requeue.
  f1.close(Close.reconnect, "draining");
  x.disconnect("f", f1);
  h.accepted.resolve();
  await h.requeueAsked.promise;
  const f2 = new Peer();
  await z.connect("f", f2);
  assert.deepEqual(contents(f2), []);
  assert.equal(x.isOnline("f"), false, "x does not know of f2");
  h.requeue.resolve();
  await accepting;
  const got: string[] = [];
  await eventually("f's session on z got the message", () => (got.push(...contents(f2)), got.length > 0));
  assert.deepEqual(got, ["raced"]);
});
