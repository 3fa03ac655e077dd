/**
 * The holder (src/cluster/holder.ts) on both store engines (SQLite in memory, a real PostgreSQL; `STORE_ENGINES`
 * picks): of the nodes holding one key, exactly one runs the work; a drain hands it over; a node cut off from the store
 * stops its work before another starts it; a renewal the store refuses stops the work at once. Short leases (hundreds
 * of ms) so that the cases run quickly; nothing asserts a duration.
 */

import assert from "node:assert/strict";
import { type HeldWork, Holder } from "../../src/cluster/holder.ts";
import { silentLogger } from "../../src/core/log.ts";
import { openPostgresStore } from "../../src/store/postgres_store.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import type { Store } from "../../src/store/store.ts";
import { startPostgres } from "../support/postgres.ts";
import { eventually } from "../helpers.ts";
import { selectedEngines } from "../store/store_fixtures.ts";

const KEY = "wxbot:test";
// Short for a test, yet with room for a slow, loaded machine: a renewal slower than renewMs counts as failed, and
// a stall of the test process past leaseMs − marginMs would stop the work as "lost".
const TIMING = { leaseMs: 3000, renewMs: 500, marginMs: 1000 };

/** Where the work runs: which nodes run it now, and every time two ran at once. */
class Ledger {
  readonly running = new Set<string>();
  readonly overlaps: string[] = [];
  readonly stops: Array<{ node: string; why: string }> = [];
  starts = 0;

  work(node: string): HeldWork {
    return {
      start: () => {
        if (this.running.size > 0) this.overlaps.push(`${node} started while ${[...this.running]} ran`);
        this.running.add(node);
        this.starts++;
      },
      stop: (why) => {
        this.running.delete(node);
        this.stops.push({ node, why });
      },
    };
  }
}

/** A store whose lease calls can be cut as a network partition would: rejected, or left unanswered. */
function cuttable(store: Store): { store: Store; cut: "no" | "reject" | "hang" } {
  const box = { cut: "no" as "no" | "reject" | "hang", store };
  const gate = <T>(f: () => Promise<T>): Promise<T> =>
    box.cut === "reject"
      ? Promise.reject(new Error("cannot take the lease: the database is unreachable"))
      : box.cut === "hang"
      ? new Promise<T>(() => {})
      : f();
  box.store = new Proxy(store, {
    get(target, name) {
      if (name === "lease") return (...a: [string, string, number]) => gate(() => target.lease(...a));
      if (name === "release") return (...a: [string, string]) => gate(() => target.release(...a));
      if (name === "leaseOf") return (k: string) => gate(() => target.leaseOf(k));
      const v = Reflect.get(target, name);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return box;
}

for (const engine of selectedEngines()) {
  Deno.test(`holder: one node runs the work (${engine})`, async (t) => {
    await using pg = engine === "postgres" ? await startPostgres() : undefined;
    // Each case: a store per node (PostgreSQL: three processes' pools over one database; SQLite: one store shared,
    // as the one process that owns the file).
    const setup = async () => {
      const db = pg ? await pg.createDatabase() : undefined;
      const shared = db ? undefined : new SqliteStore({ path: ":memory:" });
      const stores: Store[] = [];
      const open = async () => {
        const s = db ? await openPostgresStore({ url: db.url, max: 2 }) : shared!;
        stores.push(s);
        return s;
      };
      const holders: Holder[] = [];
      return {
        open,
        holders,
        [Symbol.asyncDispose]: async () => {
          await Promise.all(holders.map((h) => h.stop()));
          for (const s of new Set(stores)) await s.close();
          await db?.[Symbol.asyncDispose]();
        },
      };
    };

    await t.step("three nodes: exactly one runs it; a drain hands it over; health says who holds", async () => {
      await using c = await setup();
      const ledger = new Ledger();
      for (const node of ["n1", "n2", "n3"]) {
        const h = new Holder({
          store: await c.open(),
          key: KEY,
          node,
          work: ledger.work(node),
          log: silentLogger,
          ...TIMING,
        });
        c.holders.push(h);
        h.start();
      }
      await eventually("one node runs the work", () => ledger.running.size === 1);
      const first = [...ledger.running][0];
      const holder = c.holders.find((h) => h.holding)!;
      assert.deepEqual(holder.health(), { key: KEY, hold: "holding", holder: first, taken: 1 });
      // The standbys learn who holds it at their next try.
      await eventually(
        "the standbys name the holder",
        () => c.holders.every((h) => h === holder || (h.health().hold === "standby" && h.health().holder === first)),
      );
      // A while of renewals: still the same one, never two.
      await new Promise((r) => setTimeout(r, TIMING.leaseMs * 2));
      assert.deepEqual([...ledger.running], [first]);
      assert.equal(ledger.starts, 1, "renewals do not restart the work");

      await holder.stop();
      assert.deepEqual(ledger.stops, [{ node: first, why: "drain" }]);
      assert.equal(holder.health().hold, "stopped");
      await eventually("another node runs it after the drain", () => ledger.running.size === 1);
      assert.notEqual([...ledger.running][0], first);
      assert.deepEqual(ledger.overlaps, []);
    });

    for (const cut of ["reject", "hang"] as const) {
      await t.step(`a holder cut off from the store (${cut}) stops its work before another starts it`, async () => {
        await using c = await setup();
        const ledger = new Ledger();
        const a = cuttable(await c.open());
        const ha = new Holder({
          store: a.store,
          key: KEY,
          node: "a",
          work: ledger.work("a"),
          log: silentLogger,
          ...TIMING,
        });
        c.holders.push(ha);
        ha.start();
        await eventually("a runs the work", () => ha.holding);
        const hb = new Holder({
          store: await c.open(),
          key: KEY,
          node: "b",
          work: ledger.work("b"),
          log: silentLogger,
          ...TIMING,
        });
        c.holders.push(hb);
        hb.start();
        await eventually("b stands by, naming a", () => hb.health().holder === "a");
        a.cut = cut;
        await eventually("b runs the work once a's lease ended", () => ledger.running.has("b"), 10_000);
        assert.deepEqual(ledger.stops, [{ node: "a", why: "lost" }], "a stopped on its own deadline");
        assert.deepEqual(ledger.overlaps, [], "never both at once");
        assert.match(ha.health().lost ?? "", /could not be renewed/);
        a.cut = "no";
        // a's store is back: it stands by behind b, and does not take the work back.
        await eventually("a names b as the holder", () => ha.health().holder === "b", 10_000);
        assert.deepEqual([...ledger.running], ["b"]);
      });
    }

    await t.step("a renewal the store refuses stops the work at once", async () => {
      await using c = await setup();
      const ledger = new Ledger();
      const store = await c.open();
      const h = new Holder({ store, key: KEY, node: "a", work: ledger.work("a"), log: silentLogger, ...TIMING });
      c.holders.push(h);
      h.start();
      await eventually("a runs the work", () => h.holding);
      // What a lease that ran out and was taken by another node looks like to the store.
      await store.release(KEY, "a");
      assert.equal(await store.lease(KEY, "z", Date.now() + 60_000), true);
      await eventually("a stopped", () => !h.holding);
      assert.deepEqual(ledger.stops, [{ node: "a", why: "lost" }]);
      assert.equal(h.health().lost, "another node holds the lease");
      await eventually("a names z", () => h.health().holder === "z");
    });
  });
}
