/**
 * The store contract for issue 22's automatic messages, on every engine (SQLite in memory and a real PostgreSQL;
 * `STORE_ENGINES` picks, see store_fixtures.ts): what kefu sent by itself is recorded once per (contact, kind, key)
 * — whichever process asks first — and idle open conversations are found by their newest message's time.
 */

import assert from "node:assert/strict";
import { AUTOMATIC_AGENT } from "../../src/store/store.ts";
import { HOUR, storeTests, T0 } from "./store_fixtures.ts";

storeTests("store contract: automatic messages", {
  "records of what kefu sent": {
    "the first claim of a (contact, kind, key) wins; a repeat, or another process's, does not": async (c) => {
      assert.equal(await c.store.claimAutomatic("u1", "closed", "2026-12-04T18:00"), true);
      assert.equal(await c.store.claimAutomatic("u1", "closed", "2026-12-04T18:00"), false);
      // Another kind, key or contact is another occasion.
      assert.equal(await c.store.claimAutomatic("u1", "closed", "2026-12-05T18:00"), true);
      assert.equal(await c.store.claimAutomatic("u1", "welcome", "2026-12-04T18:00"), true);
      assert.equal(await c.store.claimAutomatic("u2", "closed", "2026-12-04T18:00"), true);
      if (c.engine === "postgres") {
        const other = await c.open();
        assert.equal(await other.claimAutomatic("u1", "closed", "2026-12-04T18:00"), false);
        // Two processes at once: exactly one wins.
        const both = await Promise.all([
          c.store.claimAutomatic("u3", "please_wait", "1"),
          other.claimAutomatic("u3", "please_wait", "1"),
        ]);
        assert.deepEqual(both.filter(Boolean).length, 1);
      }
    },

    "old records are forgotten by their time; a forgotten one can be claimed again": async (c) => {
      await c.store.claimAutomatic("u1", "please_wait", "a");
      c.clock.ms = T0 + HOUR;
      await c.store.claimAutomatic("u1", "please_wait", "b");
      assert.equal(await c.store.forgetAutomatic(T0 + 1), 1);
      assert.equal(await c.store.claimAutomatic("u1", "please_wait", "a"), true);
      assert.equal(await c.store.claimAutomatic("u1", "please_wait", "b"), false);
      assert.equal(await c.store.forgetAutomatic(T0), 0);
    },
  },

  "awaiting": {
    "kefu's automatic message counts against the window but leaves the user waiting for an agent": async (c) => {
      await c.accept("u1", { requested: "a1" });
      const rules = [{ name: "message", opens: ["*"], ms: 48 * HOUR, quota: 2 }];
      const auto = await c.store.saveReply(c.reply("u1", AUTOMATIC_AGENT, { extra: { automatic: "closed" } }), rules);
      assert.ok(!("refused" in auto));
      assert.equal((await c.store.contact("u1"))?.awaiting, true, "an automatic message answers nobody");
      assert.equal((await c.store.contactsOf("a1"))[0].awaiting, true);
      const agent = await c.store.saveReply(c.reply("u1", "a1"), rules);
      assert.ok(!("refused" in agent));
      assert.equal((await c.store.contact("u1"))?.awaiting, false, "the agent's reply does");
      // Both used the window: a third is refused.
      assert.ok("refused" in await c.store.saveReply(c.reply("u1", "a1"), rules));
    },
  },

  "idle conversations": {
    "open conversations with an owner whose newest message either way is older than the cutoff, oldest first": async (
      c,
    ) => {
      await c.accept("old", { requested: "a1" });
      c.clock.ms = T0 + 10_000;
      await c.accept("older_reply", { requested: "a2" });
      c.clock.ms = T0 + 20_000;
      await c.accept("fresh", { requested: "a1" });
      // An agent's reply counts as a message: "older_reply" is fresh again.
      c.clock.ms = T0 + 30_000;
      const saved = await c.store.saveReply(c.reply("older_reply", "a2"));
      assert.ok(!("refused" in saved));
      const idle = await c.store.idleContacts(T0 + 25_000, 10);
      assert.deepEqual(idle.map((i) => [i.id, i.agent, i.channel, i.account, i.lastAt]), [
        ["old", "a1", "wx_official_account", "wx1", T0],
        ["fresh", "a1", "wx_official_account", "wx1", T0 + 20_000],
      ]);
      assert.deepEqual((await c.store.idleContacts(T0 + 25_000, 1)).map((i) => i.id), ["old"], "at most limit");
      assert.deepEqual(await c.store.idleContacts(T0, 10), [], "nothing older than the oldest message");
    },

    "resolved conversations and users waiting for an agent are not idle conversations": async (c) => {
      await c.accept("resolved", { requested: "a1" });
      await c.accept("waiting");
      const r = await c.store.updateContact("resolved", { expectAgent: "a1", status: "resolved" });
      assert.equal(r?.status, "resolved");
      c.clock.ms = T0 + HOUR;
      assert.deepEqual(await c.store.idleContacts(T0 + HOUR, 10), []);
    },
  },
});
