/**
 * The store contract for issue 22's availability, capacity and the queue, on every engine (SQLite in memory and a
 * real PostgreSQL; `STORE_ENGINES` picks, see store_fixtures.ts): docs/store_semantics.md, "Availability, capacity
 * and the queue".
 */

import assert from "node:assert/strict";
import type { ContactRow } from "../../src/store/store.ts";
import { storeTests, T0 } from "./store_fixtures.ts";

const one = () => 1;
const ids = (rows: { id: string }[]) => rows.map((r) => r.id);

storeTests("store contract: availability, capacity and the queue", {
  "availability": {
    "an agent's availability is kept with its time; agents without a row are online": async (c) => {
      assert.deepEqual(await c.store.agentStates(), []);
      assert.deepEqual(await c.store.setAvailability("a2", "busy"), { agent: "a2", availability: "busy", since: T0 });
      c.clock.ms += 1000;
      await c.store.setAvailability("a1", "away");
      await c.store.setAvailability("a1", "online");
      assert.deepEqual(await c.store.agentStates(), [
        { agent: "a1", availability: "online", since: T0 + 1000 },
        { agent: "a2", availability: "busy", since: T0 },
      ]);
    },

    "busy and away agents get no new users; they keep their own": async (c) => {
      await c.accept("mine", { requested: "a1" });
      await c.store.setAvailability("a1", "busy");
      assert.equal((await c.accept("u1", { online: ["a1", "a2"] })).contact.agent, "a2");
      await c.store.setAvailability("a2", "away");
      const waiting = await c.accept("u2", { online: ["a1", "a2"] });
      assert.equal(waiting.contact.agent, "", "nobody available: the user waits");
      assert.equal((await c.accept("mine", { online: ["a1", "a2"] })).contact.agent, "a1", "a busy agent keeps theirs");
      await c.store.setAvailability("a1", "online");
      assert.equal((await c.accept("u3", { online: ["a1", "a2"] })).contact.agent, "a1");
    },
  },

  "capacity": {
    "a new user goes to an agent under capacity; when all are full they wait in arrival order": async (c) => {
      const online = ["a1", "a2"];
      assert.equal((await c.accept("u1", { online, capacity: one })).contact.agent, "a1");
      assert.equal((await c.accept("u2", { online, capacity: one })).contact.agent, "a2");
      c.clock.ms += 5000;
      const u3 = await c.accept("u3", { online, capacity: one });
      assert.equal(u3.contact.agent, "");
      assert.equal(u3.contact.status, "open");
      const u4 = await c.accept("u4", { online, capacity: one });
      assert.equal(u4.contact.agent, "");
      const queue = await c.store.queue();
      assert.deepEqual(ids(queue), ["u3", "u4"], "arrival order");
      assert.ok(queue[0].queuedAt >= T0 + 5000 && queue[0].queuedAt < queue[1].queuedAt);
      assert.equal((await c.accept("u3", { online, capacity: one })).contact.agent, "", "writing again: still waits");
      assert.deepEqual(ids(await c.store.queue()), ["u3", "u4"], "and keeps its place");
    },

    "resolved conversations do not count; a freed slot takes the longest-waiting user": async (c) => {
      const online = ["a1"];
      await c.accept("u1", { online, capacity: one });
      await c.accept("u2", { online, capacity: one });
      await c.accept("u3", { online, capacity: one });
      assert.deepEqual(await c.store.assignWaiting({ online, capacity: one }), [], "no slot free");
      await c.store.updateContact("u1", { expectAgent: "a1", status: "resolved" });
      const assigned = await c.store.assignWaiting({ online, capacity: one });
      assert.deepEqual(assigned.map((r) => [r.id, r.agent]), [["u2", "a1"]]);
      assert.deepEqual(ids(await c.store.queue()), ["u3"]);
      assert.deepEqual(await c.store.openCounts(["a1"]), new Map([["a1", 1]]));
      // Capacity raised: the next one goes too.
      const more = await c.store.assignWaiting({ online, capacity: () => 2 });
      assert.deepEqual(more.map((r) => [r.id, r.agent]), [["u3", "a1"]]);
      assert.deepEqual(await c.store.queue(), []);
    },

    "each assignment keeps its workflow line in the user's history, in the same write": async (c) => {
      const online = ["a1"];
      await c.accept("u1", { online, capacity: one });
      await c.accept("u2", { online, capacity: one });
      await c.store.updateContact("u1", { expectAgent: "a1", status: "resolved" });
      const line = (r: ContactRow) =>
        c.reply(r.id, "kefu", {
          id: `line-${r.id}`,
          type: "system",
          content: `assigned to ${r.agent}`,
          extra: { action: "assigned", to_agent_id: r.agent },
        });
      assert.deepEqual((await c.store.assignWaiting({ online, capacity: one, line })).map((r) => r.id), ["u2"]);
      const history = await c.store.history("u2", { limit: 10 });
      const kept = history.find((m) => m.id === "line-u2");
      assert.ok(kept, `the line is in u2's history: ${JSON.stringify(history.map((m) => m.id))}`);
      assert.equal(kept.content, "assigned to a1");
      assert.equal(kept.state, "sent");
      assert.deepEqual(kept.extra, { action: "assigned", to_agent_id: "a1" });
      assert.equal((await c.store.history("u1", { limit: 10 })).some((m) => m.id.startsWith("line-")), false);
    },

    "a user put back in the queue by an agent waits to be taken by hand, not assigned by itself": async (c) => {
      await c.accept("u1", { requested: "a1" });
      const back = await c.store.updateContact("u1", { expectAgent: "a1", agent: "", status: "queued" });
      assert.equal(back?.agent, "");
      const queue = await c.store.queue();
      assert.deepEqual(queue.map((q) => [q.id, q.status]), [["u1", "queued"]]);
      assert.deepEqual(await c.store.assignWaiting({ online: ["a2"] }), []);
    },

    "users put back within one millisecond wait in the order they were put back": async (c) => {
      await c.accept("zz", { requested: "a1" });
      await c.accept("aa", { requested: "a1" });
      // The tests' clock stands still: both releases happen at T0.
      await c.store.updateContact("zz", { expectAgent: "a1", agent: "", status: "queued" });
      await c.store.updateContact("aa", { expectAgent: "a1", agent: "", status: "queued" });
      const queue = await c.store.queue();
      assert.deepEqual(ids(queue), ["zz", "aa"]);
      assert.ok(queue[0].queuedAt >= T0 && queue[0].queuedAt < queue[1].queuedAt);
    },

    "two slots freeing at once: each waiting user is assigned once": async (c) => {
      const online = ["a1", "a2"];
      for (const u of ["u1", "u2", "w1", "w2", "w3"]) await c.accept(u, { online, capacity: one });
      assert.deepEqual(ids(await c.store.queue()), ["w1", "w2", "w3"]);
      await c.store.updateContact("u1", { expectAgent: "a1", status: "resolved" });
      await c.store.updateContact("u2", { expectAgent: "a2", status: "resolved" });
      // Two fills at once (PostgreSQL: on two stores, as two processes would).
      const other = c.engine === "postgres" ? await c.open() : c.store;
      const runs = await Promise.all([
        c.store.assignWaiting({ online, capacity: one }),
        other.assignWaiting({ online, capacity: one }),
        other.assignWaiting({ online, capacity: one }),
      ]);
      const all: ContactRow[] = runs.flat();
      assert.deepEqual(ids(all).sort(), ["w1", "w2"], "the two longest-waiting, each once");
      assert.deepEqual(all.map((r) => r.agent).sort(), ["a1", "a2"], "one each: capacity holds");
      assert.deepEqual(ids(await c.store.queue()), ["w3"]);
      assert.deepEqual(await c.store.openCounts(online), new Map([["a1", 1], ["a2", 1]]));
    },

    "new users arriving at once never exceed capacity": async (c) => {
      const online = ["a1", "a2"];
      const other = c.engine === "postgres" ? await c.open() : c.store;
      const outcomes = await Promise.all(
        ["n1", "n2", "n3", "n4", "n5", "n6"].map((u, i) =>
          (i % 2 === 0 ? c.store : other).acceptInbound({
            message: c.inbound(u),
            online,
            away: new Set(),
            capacity: () => 2,
          })
        ),
      );
      const agents = outcomes.map((o) => o.contact.agent);
      assert.equal(agents.filter((a) => a === "a1").length, 2);
      assert.equal(agents.filter((a) => a === "a2").length, 2);
      assert.equal(agents.filter((a) => a === "").length, 2);
      assert.equal((await c.store.queue()).length, 2);
    },
  },

  "policies": {
    "round-robin gives each available agent a turn in order, whatever their counts": async (c) => {
      const online = ["a1", "a2", "a3"];
      await c.accept("old", { requested: "a2" });
      const got = [];
      for (const u of ["u1", "u2", "u3", "u4", "u5"]) {
        got.push((await c.accept(u, { online, policy: "round_robin" })).contact.agent);
      }
      assert.deepEqual(got, ["a1", "a2", "a3", "a1", "a2"]);
      // Fewest open (the default) would have skipped a2, who had one more.
      await c.store.setAvailability("a3", "busy");
      assert.equal((await c.accept("u6", { online, policy: "round_robin" })).contact.agent, "a1", "a3's turn skipped");
    },

    "fewest open: ties go to the earlier agent online": async (c) => {
      await c.accept("x", { requested: "a1" });
      assert.equal((await c.accept("u1", { online: ["a1", "a2"] })).contact.agent, "a2");
      assert.equal((await c.accept("u2", { online: ["a1", "a2"] })).contact.agent, "a1");
    },
  },
});
