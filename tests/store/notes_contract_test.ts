/**
 * The store contract for issue 22's internal notes (内部备注), on every engine (SQLite in memory and a real PostgreSQL;
 * `STORE_ENGINES` picks, see store_fixtures.ts): a note is an outbound message of type `note`, kept in history and
 * left out of everything derived — unread, awaiting, the preview and the reply windows.
 */

import assert from "node:assert/strict";
import { NOTE_TYPE, type StoredMessage, type WindowRule } from "../../src/store/store.ts";
import { HOUR, storeTests } from "./store_fixtures.ts";

const MESSAGE: WindowRule = { name: "message", opens: ["*"], ms: 48 * HOUR, quota: 2 };

storeTests("store contract: internal notes", {
  "internal notes": {
    "a note is kept in history, with its author, and changes no derived field": async (c) => {
      await c.accept("u1", { requested: "a1" }, { content: "where is my parcel?" });
      const before = await c.store.contact("u1");
      assert.ok(before);
      assert.equal(before.awaiting, true);
      assert.equal(before.unread, 1);
      c.clock.ms += 5000;
      await c.store.saveOutbound(
        c.reply("u1", "sup", { id: "note-1", type: NOTE_TYPE, content: "VIP, be quick" }),
        "sent",
      );
      const after = await c.store.contact("u1");
      assert.ok(after);
      assert.equal(after.awaiting, true, "a note is no answer: the user still waits");
      assert.equal(after.unread, 1);
      assert.equal(after.last?.content, "where is my parcel?", "the preview is the user's message, not the note");
      assert.equal(after.lastInboundTime, before.lastInboundTime);
      const page = await c.store.history("u1", { limit: 10 });
      assert.deepEqual(page.map((m) => [m.type, m.direction, m.agent, m.state]), [
        ["note", "out", "sup", "sent"],
        ["text", "in", "a1", "accepted"],
      ]);
      assert.equal(page[0].content, "VIP, be quick");
      assert.deepEqual(await c.store.outbox(), [], "a note is never waiting to be sent");
    },

    "a note is not a reply: the user still waits, and a reply after it still answers": async (c) => {
      await c.accept("u1", { requested: "a1" });
      await c.store.saveOutbound(c.reply("u1", "a1", { id: "note-1", type: NOTE_TYPE, content: "checking" }), "sent");
      assert.equal((await c.store.contactsOf("a1"))[0].awaiting, true);
      await c.store.saveOutbound(c.reply("u1", "a1", { content: "done" }), "sent");
      await c.store.saveOutbound(c.reply("u1", "a1", { id: "note-2", type: NOTE_TYPE, content: "told him" }), "sent");
      const [u1] = await c.store.contactsOf("a1");
      assert.equal(u1.awaiting, false);
      assert.equal(u1.last?.content, "done", "the preview stays the reply, not the later note");
    },

    "notes never count against a reply window": async (c) => {
      await c.accept("u1", { requested: "a1" });
      for (let i = 0; i < 5; i++) {
        await c.store.saveOutbound(c.reply("u1", "a1", { id: `note-${i}`, type: NOTE_TYPE, content: `n${i}` }), "sent");
      }
      const kept: StoredMessage[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await c.store.saveReply(c.reply("u1", "a1"), [MESSAGE]);
        if ("refused" in r) {
          assert.equal(r.windows[0].used, 2, "only the two replies are counted");
          break;
        }
        kept.push(r);
      }
      assert.equal(kept.length, 2, "the window's two replies are all still there after five notes");
    },
  },
});
