/**
 * The store contract for issue 22's canned replies and contacts' tags, on every engine (SQLite in memory and a real
 * PostgreSQL; `STORE_ENGINES` picks, see store_fixtures.ts): the `Store` methods of src/store/store.ts's issue 22 block.
 */

import assert from "node:assert/strict";
import type { CannedReply } from "../../src/store/store.ts";
import { storeTests, T0 } from "./store_fixtures.ts";

const team = { scope: "team", owner: "" } as const;
const of = (agent: string) => ({ scope: "personal", owner: agent }) as const;

function kept(r: CannedReply | "taken" | undefined): CannedReply {
  assert.ok(typeof r === "object", `expected the reply kept, got ${JSON.stringify(r)}`);
  return r;
}

storeTests("store contract: canned replies and tags", {
  "canned replies": {
    "a reply is kept with an id, its scope, owner, writer and time; read back by id": async (c) => {
      const r = kept(await c.store.addCanned({ ...team, shortcut: "/hi", text: "您好 {name}", by: "sup" }));
      assert.ok(Number.isSafeInteger(r.id) && r.id > 0);
      assert.deepEqual(r, {
        id: r.id,
        scope: "team",
        owner: "",
        shortcut: "/hi",
        text: "您好 {name}",
        updatedBy: "sup",
        updatedAt: T0,
      });
      assert.deepEqual(await c.store.cannedReply(r.id), r);
      assert.equal(await c.store.cannedReply(r.id + 1000), undefined);
    },

    "an agent lists the team's replies and its own, by shortcut, the team's first on a tie": async (c) => {
      const t1 = kept(await c.store.addCanned({ ...team, shortcut: "/bye", text: "Bye", by: "sup" }));
      const mine = kept(await c.store.addCanned({ ...of("a1"), shortcut: "/bye", text: "Bye from me", by: "a1" }));
      const a1 = kept(await c.store.addCanned({ ...of("a1"), shortcut: "/addr", text: "Our address", by: "a1" }));
      const a2 = kept(await c.store.addCanned({ ...of("a2"), shortcut: "/zz", text: "a2's own", by: "a2" }));
      assert.deepEqual((await c.store.cannedReplies("a1")).map((r) => r.id), [a1.id, t1.id, mine.id]);
      assert.deepEqual((await c.store.cannedReplies("a2")).map((r) => r.id), [t1.id, a2.id]);
      assert.deepEqual((await c.store.cannedReplies("nobody")).map((r) => r.id), [t1.id], "another's are not listed");
    },

    "a shortcut is unique per owner (the team is one owner): a second is 'taken' and writes nothing": async (c) => {
      kept(await c.store.addCanned({ ...team, shortcut: "/hi", text: "one", by: "sup" }));
      assert.equal(await c.store.addCanned({ ...team, shortcut: "/hi", text: "two", by: "adm" }), "taken");
      kept(await c.store.addCanned({ ...of("a1"), shortcut: "/hi", text: "mine", by: "a1" }));
      assert.equal(await c.store.addCanned({ ...of("a1"), shortcut: "/hi", text: "again", by: "a1" }), "taken");
      kept(await c.store.addCanned({ ...of("a2"), shortcut: "/hi", text: "a2's", by: "a2" }));
      assert.deepEqual((await c.store.cannedReplies("a1")).map((r) => r.text), ["one", "mine"]);
    },

    "a change holds only for the reply's scope and owner; its shortcut stays unique": async (c) => {
      const hi = kept(await c.store.addCanned({ ...of("a1"), shortcut: "/hi", text: "Hi", by: "a1" }));
      kept(await c.store.addCanned({ ...of("a1"), shortcut: "/yo", text: "Yo", by: "a1" }));
      c.clock.ms = T0 + 5000;
      assert.equal(await c.store.updateCanned(hi.id, of("a2"), { text: "stolen", by: "a2" }), undefined);
      assert.equal(await c.store.updateCanned(hi.id, team, { text: "stolen", by: "sup" }), undefined);
      assert.equal(await c.store.updateCanned(hi.id + 1000, of("a1"), { text: "x", by: "a1" }), undefined);
      assert.equal(await c.store.updateCanned(hi.id, of("a1"), { shortcut: "/yo", text: "x", by: "a1" }), "taken");
      assert.equal((await c.store.cannedReply(hi.id))?.text, "Hi", "a refused change changes nothing");
      const after = kept(await c.store.updateCanned(hi.id, of("a1"), { text: "Hello {name}", by: "a1" }));
      assert.deepEqual([after.shortcut, after.text, after.updatedAt], ["/hi", "Hello {name}", T0 + 5000]);
      const renamed = kept(await c.store.updateCanned(hi.id, of("a1"), { shortcut: "/hello", by: "a1" }));
      assert.deepEqual([renamed.shortcut, renamed.text], ["/hello", "Hello {name}"]);
      // Its own shortcut again is no conflict.
      kept(await c.store.updateCanned(hi.id, of("a1"), { shortcut: "/hello", text: "Hello", by: "a1" }));
    },

    "a delete holds only for the reply's scope and owner": async (c) => {
      const t = kept(await c.store.addCanned({ ...team, shortcut: "/t", text: "team", by: "sup" }));
      assert.equal(await c.store.deleteCanned(t.id, of("a1")), false);
      assert.ok(await c.store.cannedReply(t.id));
      assert.equal(await c.store.deleteCanned(t.id, team), true);
      assert.equal(await c.store.cannedReply(t.id), undefined);
      assert.equal(await c.store.deleteCanned(t.id, team), false, "gone already");
      // The shortcut is free again, and a new reply has a new id.
      const again = kept(await c.store.addCanned({ ...team, shortcut: "/t", text: "team 2", by: "sup" }));
      assert.ok(again.id > t.id);
    },
  },

  "tags": {
    "tags are set with a contact's change, replace the old ones, and are read with it sorted": async (c) => {
      await c.accept("u1", { requested: "a1" });
      assert.equal((await c.store.contact("u1"))?.tags, undefined, "no tags: absent");
      const after = await c.store.updateContact("u1", { expectAgent: "a1", tags: ["vip", "北京", "refund", "vip"] });
      assert.equal(after?.version, 2, "a change of the contact: its version grows");
      assert.deepEqual((await c.store.contact("u1"))?.tags, ["refund", "vip", "北京"]);
      await c.store.updateContact("u1", { expectAgent: "a1", tags: ["new"] });
      assert.deepEqual((await c.store.contact("u1"))?.tags, ["new"]);
      assert.deepEqual((await c.store.contactsOf("a1")).map((s) => s.tags), [["new"]]);
      await c.store.updateContact("u1", { tags: [] });
      assert.equal((await c.store.contact("u1"))?.tags, undefined, "all taken off");
    },

    "a change that does not hold sets no tags; a change without tags keeps them": async (c) => {
      await c.accept("u1", { requested: "a1" });
      await c.store.updateContact("u1", { expectAgent: "a1", tags: ["vip"] });
      assert.equal(await c.store.updateContact("u1", { expectAgent: "a2", tags: ["x"] }), undefined);
      await c.store.updateContact("u1", { expectAgent: "a1", note: "likes tea" });
      const s = await c.store.contact("u1");
      assert.deepEqual([s?.tags, s?.note], [["vip"], "likes tea"]);
    },

    "an agent's contact search finds contacts by a tag (ASCII case folded), only its own": async (c) => {
      await c.accept("u1", { requested: "a1" }, { name: "Ann" });
      await c.accept("u2", { requested: "a1" }, { name: "Bob" });
      await c.accept("u3", { requested: "a2" }, { name: "Cy" });
      await c.store.updateContact("u1", { tags: ["VIP客户"] });
      await c.store.updateContact("u3", { tags: ["VIP客户"] });
      assert.deepEqual((await c.store.findContacts("a1", "vip", 10)).map((s) => [s.id, s.tags]), [["u1", ["VIP客户"]]]);
      assert.deepEqual((await c.store.findContacts("a1", "客户", 10)).map((s) => s.id), ["u1"]);
      assert.deepEqual((await c.store.findContacts("a2", "vip", 10)).map((s) => s.id), ["u3"]);
      assert.deepEqual(await c.store.findContacts("a1", "%", 10), [], "LIKE's characters are taken literally");
    },
  },
});
