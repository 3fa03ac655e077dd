/**
 * The store contract for issue 22's automatic messages, on every engine (SQLite in memory and a real PostgreSQL;
 * `STORE_ENGINES` picks, see store_fixtures.ts): what kefu sent by itself is recorded once per (contact, kind, key)
 * — whichever process asks first — and idle open conversations are found by their newest message's time, in a scope
 * of channels and accounts, and resolved only if no message came since the look (`expectNoMessageAfter`).
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

    "each names its newest message's seq; a resolve conditional on it loses to any message since": async (c) => {
      await c.accept("u1", { requested: "a1" });
      const [first] = await c.store.idleContacts(T0 + 1, 10);
      const [newest] = await c.store.history("u1", { limit: 1 });
      assert.equal(first.lastSeq, newest.seq);
      // The user writes again between the look and the update: the update loses, the conversation stays open.
      await c.accept("u1");
      const resolve = (seq: number) =>
        c.store.updateContact("u1", {
          expectAgent: "a1",
          expectStatus: "open",
          expectNoMessageAfter: seq,
          status: "resolved",
        });
      assert.equal(await resolve(first.lastSeq), undefined);
      assert.equal((await c.store.contact("u1"))?.status, "open");
      // So does an agent's reply (a message either way).
      const [second] = await c.store.idleContacts(T0 + 1, 10);
      assert.ok(second.lastSeq > first.lastSeq);
      assert.ok(!("refused" in await c.store.saveReply(c.reply("u1", "a1"))));
      assert.equal(await resolve(second.lastSeq), undefined);
      // Nothing since the look: resolved.
      const [third] = await c.store.idleContacts(T0 + 1, 10);
      assert.equal((await resolve(third.lastSeq))?.status, "resolved");
    },

    "a user's message racing the conditional resolve: never resolved with the message after the look": async (c) => {
      // PostgreSQL: the messages come through another process, as a second node's webhook would bring them.
      const other = c.engine === "postgres" ? await c.open() : c.store;
      for (let i = 0; i < 20; i++) {
        const user = `race${i}`;
        await c.accept(user, { requested: "a1" });
        const [idle] = await c.store.idleContacts(T0 + 1, 1, { account: "wx1" });
        assert.equal(idle.id, user);
        const [resolved] = await Promise.all([
          c.store.updateContact(user, {
            expectAgent: "a1",
            expectStatus: "open",
            expectNoMessageAfter: idle.lastSeq,
            status: "resolved",
          }),
          other.acceptInbound({ online: [], away: new Set(), message: c.inbound(user) }),
        ]);
        // Whichever came first, the user's message leaves the conversation open: it lost the resolve, or reopened it.
        assert.equal((await c.store.contact(user))?.status, "open", `${user}: resolved=${resolved !== undefined}`);
        // Done with: out of the next round's look.
        await c.store.updateContact(user, { status: "resolved" });
      }
    },

    "only the conversations in the scope: a channel and account pattern, less its exceptions": async (c) => {
      await c.accept("a", { requested: "a1" });
      await c.accept("b", { requested: "a1" }, { account: "wx2" });
      await c.accept("p", { requested: "a1" }, { channel: "http_push", account: "" });
      const ids = async (scope: Parameters<typeof c.store.idleContacts>[2]) =>
        (await c.store.idleContacts(T0 + 1, 10, scope)).map((i) => i.id).sort();
      assert.deepEqual(await ids(undefined), ["a", "b", "p"]);
      assert.deepEqual(await ids({}), ["a", "b", "p"]);
      assert.deepEqual(await ids({ channel: "wx_official_account" }), ["a", "b"]);
      assert.deepEqual(await ids({ account: "wx2" }), ["b"]);
      assert.deepEqual(await ids({ channel: "http_push", account: "" }), ["p"]);
      assert.deepEqual(await ids({ except: [{ account: "wx2" }] }), ["a", "p"]);
      assert.deepEqual(await ids({ except: [{ channel: "wx_official_account", account: "wx1" }, { account: "" }] }), [
        "b",
      ]);
      assert.deepEqual(await ids({ channel: "wx_official_account", except: [{ channel: "wx_official_account" }] }), []);
      // A value that is no pattern's: nothing, and nothing taken for SQL.
      assert.deepEqual(await ids({ account: "wx1' OR '1'='1" }), []);
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
