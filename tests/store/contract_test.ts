/**
 * The store contract (src/store/store.ts, docs/store_semantics.md), one suite run against every engine: SQLite in
 * memory and PostgreSQL on a real server (`STORE_ENGINES` picks; see store_fixtures.ts). PostgreSQL's own concerns —
 * migrations under a lock, two processes at once, a dead connection — are in postgres_store_test.ts.
 */

import assert from "node:assert/strict";
import { KefuError } from "../../src/core/errors.ts";
import type { StoredMessage, WindowRefusal, WindowRule } from "../../src/store/store.ts";
import { HOUR, type StoreCase, storeTests, T0 } from "./store_fixtures.ts";

const MESSAGE: WindowRule = { name: "message", opens: ["*"], ms: 48 * HOUR, quota: 5 };
const EVENT: WindowRule = {
  name: "event",
  opens: ["event:subscribe", "event:SCAN", "event:CLICK"],
  ms: 60_000,
  quota: 3,
};
const RULES = [EVENT, MESSAGE];

const ids = (list: { id: string }[]) => list.map((x) => x.id);
const none = new Set<string>();

function refused(r: StoredMessage | WindowRefusal): WindowRefusal {
  assert.ok("refused" in r, `expected a refusal, got the stored reply ${JSON.stringify(r)}`);
  return r;
}

function stored(r: StoredMessage | WindowRefusal): StoredMessage {
  assert.ok(!("refused" in r), `expected the reply stored, got ${JSON.stringify(r)}`);
  return r;
}

/** `n` replies to `contact` under `rules`: how many were stored before the first refusal (which is returned). */
async function replies(c: StoreCase, contact: string, n: number, rules = RULES) {
  const kept: StoredMessage[] = [];
  for (let i = 0; i < n; i++) {
    const r = await c.store.saveReply(c.reply(contact, "a1"), rules);
    if ("refused" in r) return { kept, refusal: r };
    kept.push(r);
  }
  return { kept, refusal: undefined };
}

storeTests("store contract", {
  "contacts by identity": {
    "a new user's message makes a contact with the user id as its id, owned by the requested agent": async (c) => {
      const o = await c.accept("u1", { requested: "a1" }, { name: "Ann", avatar: "http://a/1.png", company: "co" });
      assert.equal(o.status, "stored");
      assert.equal(o.created, true);
      assert.equal(o.reopened, false);
      assert.equal(o.movedFrom, undefined);
      assert.equal(o.state, "accepted");
      assert.ok(Number.isSafeInteger(o.seq) && o.seq > 0);
      const row = {
        id: "u1",
        user: "u1",
        agent: "a1",
        name: "Ann",
        avatar: "http://a/1.png",
        company: "co",
        account: "wx1",
        channel: "wx_official_account",
        status: "open",
        displayName: "",
        note: "",
        version: 1,
      };
      assert.deepEqual(o.contact, row);
      const again = await c.accept("u1");
      assert.equal(again.created, false);
      assert.deepEqual(again.contact, row, "a message with nothing new leaves the row and its version");
      assert.ok(again.seq > o.seq);
      const read = await c.store.contact("u1");
      assert.ok(read);
      for (const [k, v] of Object.entries(row)) assert.deepEqual(read[k as keyof typeof read], v, k);
    },

    "ids: the user id, then user@account (user@channel without one), then numbered; one contact per identity": async (
      c,
    ) => {
      const id = async (channel: string, account: string) => (await c.accept("u", {}, { channel, account })).contact.id;
      assert.equal(await id("wx", "A"), "u");
      assert.equal(await id("wx", "B"), "u@B");
      assert.equal(await id("http_push", ""), "u@http_push");
      assert.equal(await id("other", "B"), "u@B#2");
      assert.equal(await id("third", "B"), "u@B#3");
      assert.equal(await id("wx", "B"), "u@B", "the same identity finds its contact");
      const b = await c.store.contact("u@B#2");
      assert.equal(b?.user, "u");
      assert.equal(b?.channel, "other");
      assert.equal(b?.account, "B");
      assert.equal((await c.store.stats()).contacts, 5);
    },

    "the same message key twice is a duplicate that changes nothing": async (c) => {
      const m = c.inbound("u1", { id: "dup", name: "First", content: "one" });
      const one = await c.store.acceptInbound({ message: m, requested: "a1", online: [], away: none });
      const two = await c.store.acceptInbound({
        message: { ...m, name: "Renamed", content: "two", avatar: "x" },
        requested: "a2",
        online: ["a2"],
        away: none,
      });
      assert.equal(two.status, "duplicate");
      assert.equal(two.seq, one.seq);
      assert.equal(two.state, "accepted");
      assert.equal(two.created, false);
      assert.equal(two.reopened, false);
      assert.equal(two.movedFrom, undefined);
      assert.deepEqual(two.contact, one.contact);
      assert.deepEqual(await c.store.contact("u1").then((s) => [s?.agent, s?.name, s?.version]), ["a1", "First", 1]);
      const history = await c.store.history("u1", { limit: 10 });
      assert.deepEqual(history.map((h) => h.content), ["one"]);
      assert.equal((await c.store.stats()).messages, 1);
      // Read since: the duplicate says so.
      await c.store.ack("a1", [{ contact: "u1", id: "dup" }]);
      assert.equal((await c.store.acceptInbound({ message: m, online: [], away: none })).state, "acked");
      // The key is (id, contact, account): another user's "dup", or the user of another account, is another message.
      assert.equal((await c.accept("u2", {}, { id: "dup" })).status, "stored");
      assert.equal((await c.accept("u1", {}, { id: "dup", account: "wx2" })).status, "stored");
      await c.store.saveOutbound(c.reply("u1", "a1", { id: "dup" }), "sent");
      assert.equal((await c.store.stats()).messages, 4);
    },
  },

  "who owns a user's message": {
    "nobody online: a new user waits with no agent, and goes to the first agent online": async (c) => {
      const o = await c.accept("u1");
      assert.equal(o.contact.agent, "");
      assert.deepEqual(ids(await c.store.contactsOf("")), ["u1"]);
      const p = await c.accept("u1", { online: ["a1"] });
      assert.equal(p.contact.agent, "a1");
      assert.equal(p.movedFrom, "");
      assert.equal(p.contact.version, 2);
      assert.equal((await c.store.unacked("a1")).length, 2, "the waiting message follows the user");
      assert.deepEqual(await c.store.contactsOf(""), []);
    },

    "a new user goes to the online agent with the fewest open contacts (resolved ones not counted, ties to the earlier)":
      async (c) => {
        for (const u of ["p1", "p2"]) await c.accept(u, { requested: "a1" });
        for (const u of ["q1", "q2", "q3"]) await c.accept(u, { requested: "a2" });
        for (const u of ["q2", "q3"]) assert.ok(await c.store.updateContact(u, { status: "resolved" }));
        const agentOf = async (u: string, online: string[]) => (await c.accept(u, { online })).contact.agent;
        assert.equal(await agentOf("n1", ["a1", "a2"]), "a2"); // a1: 2 open, a2: 1
        assert.equal(await agentOf("n2", ["a1", "a2"]), "a1"); // 2 and 2: the earlier
        assert.equal(await agentOf("n3", ["a2", "a1"]), "a2"); // 3 and 2
        assert.equal(await agentOf("n4", ["a2", "a1"]), "a2"); // 3 and 3: the earlier
        assert.equal(await agentOf("n5", ["a1", "a3"]), "a3"); // none at all
        assert.deepEqual(
          await c.store.openCounts(["a1", "a2", "a3", "a9"]),
          new Map([["a1", 3], ["a2", 4], ["a3", 1], ["a9", 0]]),
        );
      },

    "a known user stays with the owner though others online have fewer; a requested agent takes the user": async (
      c,
    ) => {
      await c.accept("u1", { requested: "a1" });
      const stay = await c.accept("u1", { online: ["a2", "a3"] });
      assert.equal(stay.contact.agent, "a1");
      assert.equal(stay.movedFrom, undefined);
      const taken = await c.accept("u1", { requested: "a2" });
      assert.equal(taken.contact.agent, "a2");
      assert.equal(taken.movedFrom, "a1");
      assert.equal(taken.contact.version, 2);
    },

    "an owner away past the grace period loses the user to an online agent; with nobody online the user stays": async (
      c,
    ) => {
      await c.accept("u1", { requested: "a1" });
      const stay = await c.accept("u1", { away: new Set(["a1"]) });
      assert.equal(stay.contact.agent, "a1");
      assert.equal(stay.movedFrom, undefined);
      const moved = await c.accept("u1", { away: new Set(["a1"]), online: ["a2"] });
      assert.equal(moved.contact.agent, "a2");
      assert.equal(moved.movedFrom, "a1");
      assert.equal((await c.store.unacked("a2")).length, 3, "the user's unread messages move with them");
      assert.deepEqual(await c.store.unacked("a1"), []);
    },

    "a user put back in the queue waits there whoever is online; a requested agent takes them": async (c) => {
      await c.accept("u1", { requested: "a1" });
      assert.ok(await c.store.updateContact("u1", { expectAgent: "a1", agent: "", status: "queued" }));
      const q = await c.accept("u1", { online: ["a1", "a2"] });
      assert.equal(q.contact.agent, "");
      assert.equal(q.contact.status, "queued");
      assert.equal(q.movedFrom, undefined);
      const t = await c.accept("u1", { requested: "a2" });
      assert.equal(t.contact.agent, "a2");
      assert.equal(t.movedFrom, "");
    },

    "the user's message reopens a resolved conversation": async (c) => {
      await c.accept("u1", { requested: "a1" });
      assert.equal((await c.store.updateContact("u1", { status: "resolved" }))?.version, 2);
      const o = await c.accept("u1");
      assert.equal(o.reopened, true);
      assert.equal(o.contact.status, "open");
      assert.equal(o.contact.agent, "a1");
      assert.equal(o.contact.version, 3);
      const p = await c.accept("u1");
      assert.equal(p.reopened, false);
      assert.equal(p.contact.version, 3);
    },

    "name, avatar and company follow the user's messages; a message with nothing new leaves the row alone": async (
      c,
    ) => {
      await c.accept("u1", { requested: "a1" }, { name: "Ann", avatar: "av1", company: "co1" });
      const same = await c.accept("u1", {}, { name: "u1", avatar: "", company: "" });
      assert.deepEqual(
        [same.contact.name, same.contact.avatar, same.contact.company, same.contact.version],
        ["Ann", "av1", "co1", 1],
      );
      const changed = await c.accept("u1", {}, { name: "Anna", avatar: "av2", company: "co2" });
      assert.deepEqual(
        [changed.contact.name, changed.contact.avatar, changed.contact.company, changed.contact.version],
        ["Anna", "av2", "co2", 2],
      );
      assert.equal((await c.accept("u1", {}, { name: "Anna", avatar: "av2", company: "co2" })).contact.version, 2);
      assert.equal((await c.accept("u1", {}, { name: "" })).contact.name, "Anna", "no name is not a new name");
      assert.equal((await c.store.contact("u1"))?.name, "Anna");
    },

    "a message for an agent whose sessions send no read receipts is stored read; not one for nobody, nor media": async (
      c,
    ) => {
      const asked: string[] = [];
      const readsOnWrite = (agent: string) => (asked.push(agent), true);
      const o = await c.store.acceptInbound({
        message: c.inbound("u1"),
        requested: "a1",
        online: [],
        away: none,
        readsOnWrite,
      });
      assert.equal(o.state, "acked");
      assert.deepEqual(asked, ["a1"]);
      assert.deepEqual(await c.store.unacked("a1"), []);
      assert.equal((await c.store.contact("u1"))?.unread, 0);
      const nobody = await c.store.acceptInbound({ message: c.inbound("u2"), online: [], away: none, readsOnWrite });
      assert.equal(nobody.state, "accepted");
      const media = await c.store.acceptInbound({
        message: c.inbound("u1", { type: "image", media: "MEDIA_1" }),
        state: "media",
        online: [],
        away: none,
        readsOnWrite,
      });
      assert.equal(media.state, "media");
    },
  },

  "what a contact shows": {
    "unread, times, the last message, the last workflow line and whether the user waits are read from messages": async (
      c,
    ) => {
      const first = c.inbound("u1", { sendTime: 1000 });
      await c.store.acceptInbound({ message: first, requested: "a1", online: [], away: none });
      let s = await c.store.contact("u1");
      assert.ok(s);
      assert.deepEqual([s.unread, s.lastMessageTime, s.lastInboundTime, s.awaiting], [1, 1000, 1000, true]);
      assert.deepEqual([s.last?.id, s.last?.contact, s.last?.direction], [first.id, "u1", "in"]);
      assert.equal(s.lastEvent, undefined);
      // A reply: the user no longer waits; the newest message either way, not the newest inbound.
      const reply = c.reply("u1", "a1", { sendTime: 1010, content: "hi there" });
      await c.store.saveOutbound(reply, "sent");
      s = await c.store.contact("u1");
      assert.deepEqual([s?.unread, s?.lastMessageTime, s?.lastInboundTime, s?.awaiting], [1, 1010, 1000, false]);
      assert.equal(s?.last?.id, reply.id);
      assert.equal(s?.last?.content, "hi there");
      // An event is the user's (inbound, unread, the last message) but does not make them wait.
      await c.accept("u1", {}, {
        type: "event",
        content: "",
        extra: { Event: "CLICK", EventKey: "k" },
        sendTime: 1020,
      });
      s = await c.store.contact("u1");
      assert.deepEqual([s?.unread, s?.lastMessageTime, s?.lastInboundTime, s?.awaiting], [2, 1020, 1020, false]);
      assert.equal(s?.last?.type, "event");
      assert.deepEqual(s?.last?.extra, { Event: "CLICK", EventKey: "k" });
      // A workflow line: the last event and the time, not the last message.
      const line = c.reply("u1", "a1", { type: "system", content: "a1 noted", sendTime: 1030 });
      await c.store.updateContact("u1", { note: "vip", line });
      s = await c.store.contact("u1");
      assert.equal(s?.lastEvent?.id, line.id);
      assert.equal(s?.lastEvent?.state, "sent");
      assert.equal(s?.last?.type, "event");
      assert.equal(s?.lastMessageTime, 1030);
      assert.equal(s?.note, "vip");
      // The user writes: waits again; read, nothing is unread.
      await c.accept("u1", {}, { sendTime: 1040 });
      s = await c.store.contact("u1");
      assert.deepEqual([s?.unread, s?.awaiting, s?.lastInboundTime], [3, true, 1040]);
      const unread = await c.store.unackedOf("u1");
      await c.store.ack("a1", unread.map((m) => ({ contact: m.contact, id: m.id })));
      assert.equal((await c.store.contact("u1"))?.unread, 0);
      assert.equal(await c.store.contact("nobody"), undefined);
    },

    "an agent's contacts, most recent first then by id; '' lists the users nobody has": async (c) => {
      await c.accept("b", { requested: "a1" }, { sendTime: 2000 });
      await c.accept("a", { requested: "a1" }, { sendTime: 2000 });
      await c.accept("c", { requested: "a1" }, { sendTime: 3000 });
      await c.accept("w", {}, { sendTime: 1500 });
      await c.accept("x", { requested: "a2" });
      assert.deepEqual(ids(await c.store.contactsOf("a1")), ["c", "a", "b"]);
      assert.deepEqual(ids(await c.store.contactsOf("")), ["w"]);
      assert.deepEqual(await c.store.contactsOf("a9"), []);
      // A reply moves a contact up.
      await c.store.saveOutbound(c.reply("b", "a1", { sendTime: 4000 }), "sent");
      assert.deepEqual(ids(await c.store.contactsOf("a1")), ["b", "c", "a"]);
    },

    "findContacts: name, display name, note or ids, case-insensitive for ASCII, literally, most recent first": async (
      c,
    ) => {
      await c.accept("wx_ann", { requested: "a1" }, { name: "Ann Lee", sendTime: 1000 });
      await c.accept("wx_bob", { requested: "a1" }, { name: "Bob", sendTime: 2000 });
      await c.store.updateContact("wx_bob", { displayName: "Robert 100%", note: "VIP" });
      await c.accept("wx_cat", { requested: "a2" }, { name: "Ann Cat" });
      await c.accept("Zoë", { requested: "a1" }, { name: "Zoë", sendTime: 500 });
      const find = async (text: string, limit = 10) => ids(await c.store.findContacts("a1", text, limit));
      assert.deepEqual(await find("ann"), ["wx_ann"]);
      assert.deepEqual(await find("ROBERT"), ["wx_bob"]);
      assert.deepEqual(await find("vip"), ["wx_bob"]);
      assert.deepEqual(await find("%"), ["wx_bob"]);
      assert.deepEqual(await find("x_"), ["wx_bob", "wx_ann"]);
      assert.deepEqual(await find("x_", 1), ["wx_bob"]);
      assert.deepEqual(await find("zoë"), ["Zoë"]);
      assert.deepEqual(await find("ZOË"), [], "only ASCII letters match in any case");
      assert.equal((await c.store.findContacts("a1", "bob", 1))[0].unread, 1, "a summary, with derived fields");
    },

    "openCounts: contacts not resolved per agent, every agent asked for; all owners when none asked": async (c) => {
      for (const u of ["p1", "p2", "p3"]) await c.accept(u, { requested: "a1" });
      await c.accept("q1", { requested: "a2" });
      await c.accept("w1");
      await c.store.updateContact("p2", { status: "resolved" });
      await c.store.updateContact("q1", { status: "resolved" });
      assert.deepEqual(await c.store.openCounts(["a1", "a2", "a3"]), new Map([["a1", 2], ["a2", 0], ["a3", 0]]));
      assert.deepEqual(await c.store.openCounts(), new Map([["a1", 2]]));
    },
  },

  "updateContact": {
    "a contact changes only if it is still as the caller saw it, and its workflow line is kept with the change": async (
      c,
    ) => {
      await c.accept("u1", { requested: "a1" });
      const line = c.reply("u1", "a1", { type: "system", content: "a1 transferred to a2" });
      assert.equal(await c.store.updateContact("u1", { expectAgent: "a2", agent: "a3", line }), undefined);
      assert.deepEqual(await c.store.contact("u1").then((s) => [s?.agent, s?.version]), ["a1", 1]);
      assert.equal((await c.store.history("u1", { limit: 10 })).length, 1, "the line of a refused change is not kept");
      const after = await c.store.updateContact("u1", {
        expectAgent: "a1",
        agent: "a2",
        displayName: "Ann",
        note: "n",
        line,
      });
      assert.deepEqual(
        after && [after.agent, after.displayName, after.note, after.status, after.version],
        ["a2", "Ann", "n", "open", 2],
      );
      const [newest] = await c.store.history("u1", { limit: 1 });
      assert.deepEqual([newest.id, newest.direction, newest.type, newest.state], [line.id, "out", "system", "sent"]);
      assert.equal(await c.store.updateContact("u1", { expectStatus: "resolved", status: "open" }), undefined);
      assert.equal((await c.store.updateContact("u1", { expectStatus: "open", status: "resolved" }))?.version, 3);
      const noted = await c.store.updateContact("u1", { note: "m" });
      assert.deepEqual(
        noted && [noted.agent, noted.displayName, noted.note, noted.status],
        ["a2", "Ann", "m", "resolved"],
        "only what is given changes",
      );
      assert.equal(await c.store.updateContact("nobody", { agent: "a1" }), undefined);
    },
  },

  "replies and WeChat's windows": {
    "without rules a reply is kept queued": async (c) => {
      await c.accept("u1", { requested: "a1" });
      const r = c.reply("u1", "a1");
      const s = stored(await c.store.saveReply(r));
      assert.deepEqual([s.id, s.state, s.detail, s.account, s.storedAt], [r.id, "queued", "", "wx1", T0]);
      assert.ok(Number.isSafeInteger(s.seq));
      assert.deepEqual(ids(await c.store.outbox()), [r.id]);
      assert.equal((await c.store.history("u1", { limit: 1 }))[0].seq, s.seq);
    },

    "five replies within 48 h of the user's message; the sixth is refused; the user's next message opens it again":
      async (c) => {
        await c.accept("u1", { requested: "a1" });
        c.clock.ms += 1000;
        const { kept, refusal } = await replies(c, "u1", 6, [MESSAGE]);
        assert.equal(kept.length, 5);
        assert.deepEqual(refusal, {
          refused: true,
          windows: [{ name: "message", openedAt: T0, used: 5, quota: 5, ms: 48 * HOUR }],
        });
        c.clock.ms += HOUR;
        await c.accept("u1");
        assert.equal((await replies(c, "u1", 6, [MESSAGE])).kept.length, 5);
      },

    "the message window closes 48 h after the user's message, counted from when it was sent if earlier": async (c) => {
      await c.accept("u1", { requested: "a1" });
      c.clock.ms = T0 + 48 * HOUR - 1;
      stored(await c.store.saveReply(c.reply("u1", "a1"), [MESSAGE]));
      c.clock.ms = T0 + 48 * HOUR;
      assert.deepEqual(refused(await c.store.saveReply(c.reply("u1", "a1"), [MESSAGE])).windows, [
        { name: "message", openedAt: T0, used: 1, quota: 5, ms: 48 * HOUR },
      ]);
      // Delivered late (a retry): the window opened when the user wrote.
      await c.accept("u2", { requested: "a1" }, { sendTime: (c.clock.ms - 48 * HOUR - 1000) / 1000 });
      const late = refused(await c.store.saveReply(c.reply("u2", "a1"), [MESSAGE]));
      assert.equal(late.windows[0].openedAt, c.clock.ms - 48 * HOUR - 1000);
    },

    "three replies in the minute after a follow; an unfollow closes every window; a failed reply does not count":
      async (
        c,
      ) => {
        const subscribe = { type: "event", content: "", extra: { Event: "subscribe" } };
        await c.accept("u1", { requested: "a1" }, subscribe);
        const first = await replies(c, "u1", 4);
        assert.equal(first.kept.length, 3);
        assert.deepEqual(first.refusal?.windows, [
          { name: "event", openedAt: T0, used: 3, quota: 3, ms: 60_000 },
          { name: "message", openedAt: -Infinity, used: 0, quota: 5, ms: 48 * HOUR },
        ]);
        // A failed reply gives its place back.
        assert.equal(await c.store.setOutboundState({ contact: "u1", id: first.kept[0].id }, "failed", "45047"), true);
        assert.equal((await replies(c, "u1", 2)).kept.length, 1);
        // The user writes: the message window opens.
        c.clock.ms += 1000;
        await c.accept("u1");
        stored(await c.store.saveReply(c.reply("u1", "a1"), RULES));
        // An unfollow closes both.
        await c.accept("u1", {}, { type: "event", content: "", extra: { Event: "unsubscribe" } });
        assert.deepEqual(refused(await c.store.saveReply(c.reply("u1", "a1"), RULES)).windows.map((w) => w.openedAt), [
          -Infinity,
          -Infinity,
        ]);
        // Following again opens the event window, not the message window from before the unfollow.
        c.clock.ms += 1000;
        await c.accept("u1", {}, subscribe);
        stored(await c.store.saveReply(c.reply("u1", "a1"), RULES));
        c.clock.ms += 60_000;
        assert.deepEqual(refused(await c.store.saveReply(c.reply("u1", "a1"), RULES)).windows, [
          { name: "event", openedAt: c.clock.ms - 60_000, used: 1, quota: 3, ms: 60_000 },
          { name: "message", openedAt: -Infinity, used: 0, quota: 5, ms: 48 * HOUR },
        ]);
      },

    "workflow lines do not count; a user who never opened a window is refused": async (c) => {
      await c.accept("u1", { requested: "a1" });
      assert.equal((await replies(c, "u1", 4, [MESSAGE])).kept.length, 4);
      await c.store.updateContact("u1", { note: "x", line: c.reply("u1", "a1", { type: "system", content: "noted" }) });
      await c.store.saveOutbound(c.reply("u1", "a1", { type: "system", content: "moved" }), "sent");
      assert.equal((await replies(c, "u1", 2, [MESSAGE])).kept.length, 1);
      // A VIEW event opens no window.
      await c.accept("u2", { requested: "a1" }, { type: "event", content: "", extra: { Event: "VIEW" } });
      assert.deepEqual(refused(await c.store.saveReply(c.reply("u2", "a1"), RULES)).windows.map((w) => w.used), [0, 0]);
    },

    "setOutboundState sets the newest reply with that id": async (c) => {
      await c.accept("u1", { requested: "a1" });
      const r = c.reply("u1", "a1");
      await c.store.saveOutbound(r, "queued");
      await c.store.saveOutbound({ ...r, content: "again" }, "queued");
      assert.equal(await c.store.setOutboundState({ contact: "u1", id: r.id }, "failed", "errcode 45015"), true);
      const [newest, older] = await c.store.history("u1", { limit: 2 });
      assert.deepEqual([newest.content, newest.state, newest.detail], ["again", "failed", "errcode 45015"]);
      assert.deepEqual([older.state, older.detail], ["queued", ""]);
      assert.equal(await c.store.setOutboundState({ contact: "u1", id: "nope" }, "sent"), false);
      const inbound = (await c.store.unackedOf("u1"))[0];
      assert.equal(await c.store.setOutboundState({ contact: "u1", id: inbound.id }, "sent"), false);
    },

    "outbox: replies still queued, oldest first": async (c) => {
      await c.accept("u1", { requested: "a1" });
      const r1 = stored(await c.store.saveReply(c.reply("u1", "a1")));
      const r2 = stored(await c.store.saveReply(c.reply("u1", "a1")));
      await c.store.saveOutbound(c.reply("u1", "a1"), "sent");
      assert.deepEqual(ids(await c.store.outbox()), [r1.id, r2.id]);
      await c.store.setOutboundState({ contact: "u1", id: r1.id }, "sent");
      assert.deepEqual(ids(await c.store.outbox()), [r2.id]);
    },
  },

  "unread messages": {
    "unacked pages through an agent's unread messages by cursor, in store order, and follows the contact": async (
      c,
    ) => {
      const a = await c.accept("u1", { requested: "a1" });
      const b = await c.accept("u1");
      const d = await c.accept("u2", { requested: "a1" });
      await c.accept("u3", { requested: "a2" });
      await c.accept("u1", { state: "media" }, { type: "image", media: "M" });
      await c.store.acceptInbound({ message: c.inbound("u2"), online: [], away: none, readsOnWrite: () => true });
      const all = await c.store.unacked("a1", 100);
      assert.deepEqual(all.map((m) => m.seq), [a.seq, b.seq, d.seq]);
      assert.ok(all.every((m) => m.state === "accepted" && m.direction === "in" && m.agent === "a1"));
      const page1 = await c.store.unacked("a1", 2);
      assert.deepEqual(page1.map((m) => m.seq), [a.seq, b.seq]);
      const page2 = await c.store.unacked("a1", 2, b.seq);
      assert.deepEqual(page2.map((m) => m.seq), [d.seq]);
      assert.deepEqual(await c.store.unacked("a1", 2, d.seq), []);
      const later = await c.accept("u1");
      assert.deepEqual((await c.store.unacked("a1", 2, d.seq)).map((m) => m.seq), [later.seq]);
      assert.equal((await c.store.unacked("a2")).length, 1);
      await c.store.updateContact("u2", { agent: "a2" });
      assert.deepEqual((await c.store.unacked("a2")).map((m) => m.contact).sort(), ["u2", "u3"]);
    },

    "unackedOf and waitingContacts: one contact's unread oldest first; the waiting users by their oldest": async (
      c,
    ) => {
      const m1 = await c.accept("u1", { requested: "a1" });
      const m2 = await c.accept("u2", { requested: "a1" });
      const m3 = await c.accept("u1");
      await c.accept("u3", { requested: "a2" });
      await c.accept("u4", { requested: "a1", state: "media" }, { type: "image", media: "M" });
      assert.deepEqual((await c.store.unackedOf("u1")).map((m) => m.seq), [m1.seq, m3.seq]);
      assert.deepEqual((await c.store.unackedOf("u1", 1)).map((m) => m.seq), [m1.seq]);
      assert.deepEqual(ids(await c.store.waitingContacts("a1", 10)), ["u1", "u2"]);
      await c.store.ack("a1", [{ contact: "u1", id: (await c.store.unackedOf("u1"))[0].id }]);
      assert.deepEqual(ids(await c.store.waitingContacts("a1", 10)), ["u2", "u1"]);
      assert.deepEqual(ids(await c.store.waitingContacts("a1", 1)), ["u2"]);
      const [row] = await c.store.waitingContacts("a1", 1);
      assert.deepEqual([row.user, row.agent, row.status, row.version], ["u2", "a1", "open", m2.contact.version]);
    },

    "ack: the agent's own contacts only, by ref or by id alone; what it changed": async (c) => {
      const m1 = c.inbound("u1");
      const m2 = c.inbound("u1");
      for (const m of [m1, m2]) await c.store.acceptInbound({ message: m, requested: "a1", online: [], away: none });
      const m3 = c.inbound("u2");
      await c.store.acceptInbound({ message: m3, requested: "a2", online: [], away: none });
      assert.deepEqual(await c.store.ack("a2", [{ contact: "u1", id: m1.id }]), []);
      assert.equal((await c.store.contact("u1"))?.unread, 2, "another agent's ack changes nothing");
      assert.deepEqual(
        await c.store.ack("a1", [{ contact: "u1", id: m1.id }, { contact: "u1", id: m1.id }]),
        [{ contact: "u1", id: m1.id }],
        "named twice, changed once",
      );
      assert.deepEqual(await c.store.ack("a1", [{ contact: "u1", id: m1.id }]), [], "read already");
      assert.deepEqual(
        await c.store.ack("a1", [{ contact: "", id: m3.id }, { contact: "", id: m2.id }]),
        [{ contact: "u1", id: m2.id }],
      );
      assert.deepEqual(await c.store.unacked("a1"), []);
      assert.equal((await c.store.unacked("a2")).length, 1);
    },

    "requeue: messages written to a socket that stalled are unread again (not media, not the unknown)": async (c) => {
      const read = c.inbound("u1");
      await c.store.acceptInbound({ message: read, requested: "a1", online: [], away: none, readsOnWrite: () => true });
      const media = c.inbound("u1", { type: "image", media: "M" });
      await c.store.acceptInbound({ message: media, state: "media", online: [], away: none });
      const waiting = c.inbound("u1");
      await c.store.acceptInbound({ message: waiting, online: [], away: none });
      const n = await c.store.requeue([
        { contact: "u1", id: read.id },
        { contact: "u1", id: media.id },
        { contact: "u1", id: waiting.id },
        { contact: "u1", id: "nope" },
      ]);
      assert.equal(n, 1);
      assert.deepEqual(ids(await c.store.unacked("a1")), [read.id, waiting.id]);
      assert.deepEqual(ids(await c.store.waitingMedia()), [media.id]);
    },
  },

  "media": {
    "a message waiting for its media is not delivered until finished, then once": async (c) => {
      const m = c.inbound("u1", { type: "image", media: "MEDIA_ID_1" });
      const o = await c.store.acceptInbound({ message: m, state: "media", requested: "a1", online: [], away: none });
      assert.equal(o.state, "media");
      assert.deepEqual(await c.store.unacked("a1"), []);
      assert.deepEqual(await c.store.unackedOf("u1"), []);
      assert.deepEqual(await c.store.waitingContacts("a1", 10), []);
      assert.equal((await c.store.contact("u1"))?.unread, 1, "waiting for its media is unread");
      assert.deepEqual(ids(await c.store.waitingMedia()), [m.id]);
      const ref = { contact: "u1", id: m.id };
      assert.equal(await c.store.finishMedia(ref, "/media/abc.jpg", { MediaId: "MEDIA_ID_1" }, "accepted"), true);
      assert.equal(await c.store.finishMedia(ref, "/media/other.jpg", undefined, "accepted"), false);
      const [ready] = await c.store.unacked("a1");
      assert.deepEqual([ready.id, ready.media, ready.extra, ready.state], [
        m.id,
        "/media/abc.jpg",
        { MediaId: "MEDIA_ID_1" },
        "accepted",
      ]);
      assert.deepEqual(await c.store.waitingMedia(), []);
    },

    "who may open a media file, which files are in use, and a failed file tried again by its owner": async (c) => {
      await c.accept("u1", { requested: "a1" }, { type: "image", media: "/media/a.jpg" });
      await c.accept("u2", { requested: "a2" }, {
        type: "voice",
        media: "https://kefu.example/media/b.mp3",
        extra: { media_original: "/media/b.amr" },
      });
      await c.accept("u2", {}, { type: "image", media: "MEDIA_ID_NOT_FETCHED" });
      assert.equal(await c.store.mediaOwnedBy(["/media/a.jpg", "https://kefu.example/media/a.jpg"], "a1"), true);
      assert.equal(await c.store.mediaOwnedBy(["/media/a.jpg", "https://kefu.example/media/a.jpg"], "a2"), false);
      assert.equal(await c.store.mediaOwnedBy(["/media/b.mp3", "https://kefu.example/media/b.mp3"], "a2"), true);
      assert.deepEqual([...await c.store.mediaInUse()].sort(), ["a.jpg", "b.amr", "b.mp3"]);
      const m = c.inbound("u1", { type: "image", media: "MEDIA_2" });
      await c.store.acceptInbound({ message: m, state: "media", online: [], away: none });
      const ref = { contact: "u1", id: m.id };
      assert.equal(await c.store.reopenMedia(ref, "a1"), undefined, "not failed");
      await c.store.finishMedia(ref, "", { media_error: "download failed" }, "accepted");
      assert.equal(await c.store.reopenMedia(ref, "a2"), undefined, "another agent's");
      const again = await c.store.reopenMedia(ref, "a1");
      assert.deepEqual([again?.id, again?.state, again?.extra], [m.id, "media", { media_error: "download failed" }]);
      assert.deepEqual(ids(await c.store.waitingMedia()), [m.id]);
      assert.equal(await c.store.reopenMedia(ref, "a1"), undefined, "waiting already");
    },
  },

  "history and search": {
    "history pages newest first by message id; a bad `before` is a 404": async (c) => {
      await c.accept("u1", { requested: "a1" });
      const sent: string[] = [(await c.store.unackedOf("u1"))[0].id];
      for (let i = 0; i < 4; i++) {
        const m = i % 2 === 0 ? c.reply("u1", "a1") : c.inbound("u1");
        if (m.direction === "out") await c.store.saveOutbound(m, "sent");
        else await c.store.acceptInbound({ message: m, online: [], away: none });
        sent.push(m.id);
      }
      const newest = sent.toReversed();
      const page1 = await c.store.history("u1", { limit: 2 });
      assert.deepEqual(ids(page1), newest.slice(0, 2));
      const page2 = await c.store.history("u1", { before: page1[1].id, limit: 2 });
      assert.deepEqual(ids(page2), newest.slice(2, 4));
      const page3 = await c.store.history("u1", { before: page2[1].id, limit: 2 });
      assert.deepEqual(ids(page3), newest.slice(4));
      assert.deepEqual(await c.store.history("u1", { before: page3[0].id, limit: 2 }), []);
      await c.accept("u2", { requested: "a1" }, { id: "elsewhere" });
      for (const before of ["nope", "elsewhere"]) {
        await assert.rejects(c.store.history("u1", { before, limit: 2 }), (e: unknown) => {
          assert.ok(e instanceof KefuError);
          assert.equal(e.kind, "not_found");
          assert.equal(e.status, 404);
          assert.match(e.message, new RegExp(`cannot page the history of contact "u1": no message "${before}" in it`));
          return true;
        });
      }
      await assert.rejects(c.store.history("u1", { limit: 0 }), /limit "0" is not a positive integer/);
      assert.deepEqual(await c.store.history("nobody", { limit: 5 }), []);
    },

    "search: the agent's conversations, case-insensitive for ASCII, LIKE's characters taken literally, newest first":
      async (c) => {
        for (const content of ["Hello World", "100% sure", "snake_case", "back\\slash", "Élan"]) {
          await c.accept("u1", { requested: "a1" }, { content });
        }
        await c.accept("u2", { requested: "a2" }, { content: "hello there" });
        const find = async (text: string, limit = 10) =>
          (await c.store.search("a1", text, limit)).map((m) => m.content);
        assert.deepEqual(await find("hello"), ["Hello World"]);
        assert.deepEqual(await find("WORLD"), ["Hello World"]);
        assert.deepEqual(await find("%"), ["100% sure"]);
        assert.deepEqual(await find("_"), ["snake_case"]);
        assert.deepEqual(await find("\\"), ["back\\slash"]);
        assert.deepEqual(await find("Élan"), ["Élan"]);
        assert.deepEqual(await find("élan"), [], "only ASCII letters match in any case");
        assert.deepEqual(await find("e", 2), ["snake_case", "100% sure"]);
        await c.store.saveOutbound(c.reply("u1", "a1", { content: "World peace" }), "sent");
        assert.deepEqual(await find("world"), ["World peace", "Hello World"]);
        const [hit] = await c.store.search("a1", "peace", 1);
        assert.deepEqual([hit.direction, hit.contact, hit.state], ["out", "u1", "sent"]);
      },
  },

  "leases, windows, revocations, retention, counters": {
    "leases: taken when free, renewed by the holder, another's refused until it ends, given back by the holder": async (
      c,
    ) => {
      assert.equal(await c.store.lease("job:retention", "p1", T0 + 1000), true);
      assert.equal(await c.store.lease("job:retention", "p2", T0 + 2000), false);
      assert.equal(await c.store.lease("job:retention", "p1", T0 + 5000), true, "renewed");
      assert.equal(await c.store.lease("outbox:u1", "p2", T0 + 5000), true, "another key is another lease");
      c.clock.ms = T0 + 5000;
      assert.equal(await c.store.lease("job:retention", "p2", T0 + 9000), false, "held until its end inclusive");
      c.clock.ms = T0 + 5001;
      assert.equal(await c.store.lease("job:retention", "p2", T0 + 9000), true, "an expired lease is taken");
      await c.store.release("job:retention", "p1");
      assert.equal(await c.store.lease("job:retention", "p1", T0 + 9000), false, "only the holder gives it back");
      await c.store.release("job:retention", "p2");
      assert.equal(await c.store.lease("job:retention", "p1", T0 + 9000), true);
    },

    "reply windows as the channel keeps them: replaced by user, never opened kept as -Infinity, swept when old": async (
      c,
    ) => {
      const w1 = {
        account: "wx1",
        openid: "u1",
        lastMessageAt: T0,
        messageUsed: 2,
        lastEventAt: -Infinity,
        eventUsed: 0,
      };
      const w2 = {
        account: "wx1",
        openid: "u2",
        lastMessageAt: -Infinity,
        messageUsed: 0,
        lastEventAt: T0 - HOUR,
        eventUsed: 1,
      };
      await c.store.saveWindow(w1);
      await c.store.saveWindow(w2);
      await c.store.saveWindow({ ...w1, messageUsed: 3 });
      const sorted = async () => (await c.store.windows()).sort((a, b) => a.openid.localeCompare(b.openid));
      assert.deepEqual(await sorted(), [{ ...w1, messageUsed: 3 }, w2]);
      assert.equal(await c.store.sweep(T0 - 1), 1);
      assert.deepEqual(await sorted(), [{ ...w1, messageUsed: 3 }]);
    },

    "revocations: kept until they end, oldest first, one token or every token of an agent": async (c) => {
      // The wall clock: an engine may read it rather than the test's clock for what is past.
      const t = c.clock.ms = Date.now();
      await c.store.revoke({ agent: "a1", at: t - 2000, until: t + HOUR });
      await c.store.revoke({ agent: "a2", tokenId: "tok-1", at: t - 1000, until: t + HOUR });
      await c.store.revoke({ agent: "a3", at: t - 3000, until: t - 1000 });
      assert.deepEqual(await c.store.revocations(), [
        { agent: "a1", at: t - 2000, until: t + HOUR },
        { agent: "a2", tokenId: "tok-1", at: t - 1000, until: t + HOUR },
      ]);
    },

    "sweep deletes what is old and done, keeps unread messages and queued replies whatever their age": async (c) => {
      const read = c.inbound("u1", { sendTime: 5000 });
      await c.store.acceptInbound({ message: read, requested: "a1", online: [], away: none, readsOnWrite: () => true });
      const unread = c.inbound("u1", { sendTime: 6000 });
      await c.store.acceptInbound({ message: unread, online: [], away: none });
      const media = c.inbound("u1", { type: "image", media: "M" });
      await c.store.acceptInbound({ message: media, state: "media", online: [], away: none });
      const queued = stored(await c.store.saveReply(c.reply("u1", "a1")));
      await c.store.saveOutbound(c.reply("u1", "a1"), "sent");
      await c.store.updateContact("u1", { note: "x", line: c.reply("u1", "a1", { type: "system", content: "noted" }) });
      c.clock.ms = T0 + 10 * HOUR;
      const recent = c.inbound("u1");
      await c.store.acceptInbound({ message: recent, online: [], away: none, readsOnWrite: () => true });
      assert.equal(await c.store.sweep(T0 + HOUR), 3);
      assert.deepEqual(ids(await c.store.history("u1", { limit: 10 })), [recent.id, queued.id, media.id, unread.id]);
      assert.equal((await c.store.stats()).messages, 4);
      assert.equal(await c.store.sweep(T0 + HOUR), 0, "nothing more");
      // A contact whose messages are all gone shows when it was made.
      await c.store.acceptInbound({
        message: c.inbound("u9", { sendTime: 5000 }),
        requested: "a1",
        online: [],
        away: none,
        readsOnWrite: () => true,
      });
      await c.store.acceptInbound({
        message: c.inbound("u9", { sendTime: 7000 }),
        online: [],
        away: none,
        readsOnWrite: () => true,
      });
      c.clock.ms += HOUR;
      assert.equal(await c.store.sweep(c.clock.ms), 3, "u9's two and the recent one, read since");
      const s = await c.store.contact("u9");
      assert.deepEqual(
        [s?.lastMessageTime, s?.lastInboundTime, s?.unread, s?.awaiting, s?.last, s?.lastEvent],
        [5000, 0, 0, false, undefined, undefined],
      );
    },

    "stats: the same counters on every engine": async (c) => {
      const empty = await c.store.stats();
      assert.equal(empty.kind, c.engine);
      assert.deepEqual([empty.messages, empty.contacts, empty.unread, empty.queued], [0, 0, 0, 0]);
      if (c.postgres) {
        assert.match(empty.path, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/t_[0-9a-f]+$/);
      } else assert.equal(empty.path, ":memory:");
      await c.accept("u1", { requested: "a1" });
      await c.store.acceptInbound({ message: c.inbound("u2"), online: [], away: none, readsOnWrite: () => true });
      await c.store.acceptInbound({
        message: c.inbound("u2"),
        requested: "a1",
        online: [],
        away: none,
        readsOnWrite: () => true,
      });
      stored(await c.store.saveReply(c.reply("u1", "a1")));
      const s = await c.store.stats();
      assert.deepEqual([s.messages, s.contacts, s.unread, s.queued], [4, 2, 2, 0]);
      // Every figure is counted here on both engines. PostgreSQL estimates messages and contacts once a table's heap
      // reaches 16 MiB, and says so in `estimates` (tests/store/postgres_stats_test.ts); SQLite always counts.
      assert.deepEqual(s.estimates ?? [], []);
      assert.ok(s.commits >= 1 && s.writes >= s.commits && s.maxBatch >= 1, JSON.stringify(s));
      assert.ok(Number.isSafeInteger(s.fileBytes) && s.fileBytes >= 0);
    },

    "close: later calls reject, saying the store is closed; closing twice is fine": async (c) => {
      await c.accept("u1", { requested: "a1" });
      await c.store.close();
      await c.store.close();
      await assert.rejects(c.store.contact("u1"), /cannot read contact "u1": the store ".*" is closed/);
      await assert.rejects(c.accept("u1"), /cannot save inbound message "m\d+": the store ".*" is closed/);
    },
  },
});
