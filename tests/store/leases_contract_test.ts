/**
 * The store contract for issue 19's holders on every engine (SQLite in memory and a real PostgreSQL; `STORE_ENGINES`
 * picks): `leaseOf` says who holds a lease while it has not ended by the store's clock (docs/store_semantics.md,
 * "Leases").
 */

import assert from "node:assert/strict";
import { storeTests, T0 } from "./store_fixtures.ts";

storeTests("store contract: reading a lease", {
  "leaseOf": {
    "who holds a lease until its end inclusive; nobody once it ended or was given back": async (c) => {
      assert.equal(await c.store.leaseOf("wxbot:k1"), undefined, "never taken");
      assert.equal(await c.store.lease("wxbot:k1", "n1", T0 + 1000), true);
      assert.deepEqual(await c.store.leaseOf("wxbot:k1"), { key: "wxbot:k1", holder: "n1", until: T0 + 1000 });
      assert.equal(await c.store.leaseOf("wxbot:k2"), undefined, "another key");
      c.clock.ms = T0 + 1000;
      assert.equal((await c.store.leaseOf("wxbot:k1"))?.holder, "n1", "held until its end inclusive");
      c.clock.ms = T0 + 1001;
      assert.equal(await c.store.leaseOf("wxbot:k1"), undefined, "ended");
      assert.equal(await c.store.lease("wxbot:k1", "n2", T0 + 5000), true);
      assert.deepEqual(await c.store.leaseOf("wxbot:k1"), { key: "wxbot:k1", holder: "n2", until: T0 + 5000 });
      await c.store.release("wxbot:k1", "n2");
      assert.equal(await c.store.leaseOf("wxbot:k1"), undefined, "given back");
    },

    "another process over the same database reads the same holder (PostgreSQL)": async (c) => {
      if (c.engine !== "postgres") return;
      const other = await c.open();
      assert.equal(await c.store.lease("pc_hook:main", "n1", T0 + 1000), true);
      assert.equal(await other.lease("pc_hook:main", "n2", T0 + 1000), false);
      assert.equal((await other.leaseOf("pc_hook:main"))?.holder, "n1");
    },
  },
});
