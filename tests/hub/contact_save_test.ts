/**
 * Contact rows and a clean stop: on the hot path a contact's row is rewritten with a message at most once a minute,
 * so its last message time and unread count can be behind; Hub.saveStaleContacts writes exactly those rows (main.ts
 * calls it before the store closes), and a hub rebuilt from the store lists the contacts as they were.
 */

import assert from "node:assert/strict";
import type { Message } from "../../src/core/message.ts";
import { Hub } from "../../src/hub/hub.ts";
import { SqliteStore, storePath } from "../../src/store/sqlite_store.ts";
import type { ContactRecord } from "../../src/store/store.ts";
import { Peer } from "./peer.ts";

let seq = 0;
function msg(contact: string, sendTime: number, content = `m${++seq}`): Message {
  return {
    id: `id-${++seq}`,
    direction: "in",
    channel: "wx_official_account",
    contact,
    agent: "",
    company: "",
    type: "text",
    content,
    media: "",
    sendTime,
    name: contact,
    avatar: "",
  };
}

function reply(contact: string, sendTime: number): Message {
  return { ...msg(contact, sendTime, "您好"), id: `r-${++seq}`, direction: "out" };
}

async function rows(store: SqliteStore): Promise<Record<string, Pick<ContactRecord, "lastMessageTime" | "unread">>> {
  const state = await store.load();
  return Object.fromEntries(
    state.contacts.map((c) => [c.id, { lastMessageTime: c.lastMessageTime, unread: c.unread }]),
  );
}

Deno.test("hub: saveStaleContacts writes the rows a message did not (times, unread), and only those", async () => {
  const store = new SqliteStore({ path: ":memory:" });
  try {
    const hub = new Hub({ store });
    const peer = new Peer();
    await hub.connect("a", peer, { acks: true });
    const t0 = 1_700_000_000;
    await hub.accept(msg("u1", t0), { agent: "a" });
    const second = await hub.accept(msg("u2", t0 + 10), { agent: "a" });
    // Within the minute: the message is kept, its contact's row is not rewritten.
    await hub.accept(msg("u1", t0 + 20), { agent: "a" });
    await hub.ack("a", [{ contact: "u2", id: second.id }]);
    assert.deepEqual(await rows(store), {
      u1: { lastMessageTime: t0, unread: 1 },
      u2: { lastMessageTime: t0 + 10, unread: 1 },
    });
    assert.deepEqual(hub.contactsOf("a").map((c) => [c.contact_id, c.last_message_time, c.unread]), [
      ["u1", t0 + 20, 2],
      ["u2", t0 + 10, 0],
    ]);

    assert.equal(await hub.saveStaleContacts(), 2);
    assert.deepEqual(await rows(store), {
      u1: { lastMessageTime: t0 + 20, unread: 2 },
      u2: { lastMessageTime: t0 + 10, unread: 0 },
    });
    assert.equal(await hub.saveStaleContacts(), 0, "nothing is behind any more");

    // A reply writes its contact's row itself: nothing left for the stop.
    const r = reply("u2", t0 + 30);
    hub.reply("a", r);
    await hub.keepReply(r);
    assert.equal(await hub.saveStaleContacts(), 0);
    assert.equal((await rows(store)).u2.lastMessageTime, t0 + 30);
  } finally {
    await store.close();
  }
});

Deno.test("hub: after a clean stop a rebuilt hub lists contacts in the right order with the right unread", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kefu-contact-save-" });
  try {
    const t0 = 1_700_000_000;
    {
      const store = new SqliteStore({ path: storePath(dir) });
      const hub = new Hub({ store });
      await hub.connect("a", new Peer(), { acks: true });
      await hub.accept(msg("old", t0), { agent: "a" });
      await hub.accept(msg("mid", t0 + 100), { agent: "a" });
      // "old" writes again, later than "mid": its row still says t0 until the stop saves it.
      await hub.accept(msg("old", t0 + 200), { agent: "a" });
      await hub.saveStaleContacts();
      await store.close();
    }
    const store = new SqliteStore({ path: storePath(dir) });
    try {
      const hub = new Hub({ store });
      hub.restore(await store.load());
      assert.deepEqual(hub.contactsOf("a").map((c) => [c.contact_id, c.last_message_time, c.unread]), [
        ["old", t0 + 200, 2],
        ["mid", t0 + 100, 1],
      ]);
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hub: after a crash (no clean stop) the recounted unread is written at the next stop", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kefu-contact-crash-" });
  try {
    const t0 = 1_700_000_000;
    {
      const store = new SqliteStore({ path: storePath(dir) });
      const hub = new Hub({ store });
      await hub.connect("a", new Peer(), { acks: true });
      await hub.accept(msg("u", t0), { agent: "a" });
      await hub.accept(msg("u", t0 + 1), { agent: "a" });
      // Closed without saveStaleContacts: the row still says 1 unread.
      await store.close();
    }
    const store = new SqliteStore({ path: storePath(dir) });
    try {
      assert.equal((await rows(store)).u.unread, 1);
      const hub = new Hub({ store });
      hub.restore(await store.load());
      assert.equal(hub.contactsOf("a")[0].unread, 2, "recounted from the unacknowledged messages");
      assert.equal(await hub.saveStaleContacts(), 1);
      assert.equal((await rows(store)).u.unread, 2);
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
